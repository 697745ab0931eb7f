/**
 * Loaded first in every test file of the fast tier (jest.unit.config.mjs: `npm run test:unit`). No server runs in that
 * tier: the server addresses a global setup would publish are removed, so a file that reaches for PostgreSQL or
 * Temporal fails loudly ("TEST_POSTGRES_ADMIN_URL is not set") instead of finding a stray server, and files that
 * run in both tiers pick the in-memory event store (test/support/unit-or-postgres-store.ts).
 */
process.env.TEST_TIER = 'unit';
delete process.env.TEST_POSTGRES_ADMIN_URL;
delete process.env.TEST_TEMPORAL_ADDRESS;
