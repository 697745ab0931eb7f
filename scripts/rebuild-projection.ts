/**
 * `npm run projections:rebuild -- <name>`: recomputes a read model from the whole event log and
 * swaps it in while the API keeps answering. Against the local stack (npm start running), the
 * embedded PostgreSQL is found on POSTGRES_PORT; elsewhere set DATABASE_URL (and ESDB_URL with EVENT_STORE=esdb).
 */
import { loadConfigOrExit } from '../config/config';
import { localStackDatabaseUrl } from '../infra/embedded-postgres';
import { createServicePool } from '../infra/pg-pool';
import { connectEventStore } from '../main/services';
import { ALL_PROJECTIONS, projectionByName } from '../projections/all-projections';
import { rebuildProjection } from '../projections/rebuild-projection';

async function main(): Promise<void> {
  const name = process.argv[2];
  const projection = name ? projectionByName(name) : undefined;
  if (!projection) {
    process.stderr.write(`Usage: npm run projections:rebuild -- <name>\nProjections: ${ALL_PROJECTIONS.map((p) => p.name).join(', ')}\n`);
    process.exit(2);
  }
  const config = loadConfigOrExit();
  const databaseUrl = config.DATABASE_URL ?? localStackDatabaseUrl(config.DATA_DIR, config.POSTGRES_PORT);
  const { store } = await connectEventStore(config, databaseUrl);
  // No statement timeout: the swap waits for its table lock behind the API's reads.
  const pool = createServicePool({ connectionString: databaseUrl, max: 4, applicationName: 'transfer-rebuild', statementTimeoutMs: 0 });
  try {
    const report = await rebuildProjection(store, pool, projection, (line) => console.log(line));
    console.log(JSON.stringify({ ...report, position: report.position ? `${report.position.commit}.${report.position.prepare}` : null }));
  } finally {
    await pool.end();
    await store.close();
  }
}

void main().catch((error: unknown) => {
  process.stderr.write(`Rebuild failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
