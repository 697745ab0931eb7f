-- Run once by the postgres image (docker-entrypoint-initdb.d) when the data volume is empty.
-- Temporal's own databases (temporal, temporal_visibility) are created by temporalio/auto-setup;
-- this creates the service's read-model database. Idempotent, so it also works if POSTGRES_DB
-- is ever set to 'transfers'.
SELECT 'CREATE DATABASE transfers'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'transfers')\gexec
