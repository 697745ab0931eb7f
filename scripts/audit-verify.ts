/**
 * `npm run audit:verify -- [--stream <name>] [--anchor-hash <hex>] [--max <n>] [--json]`
 * Walks the event store's hash chains (eventstore/hash-chain.ts) and prints the first broken link (stream, revision,
 * expected and found), or "verified N events in M streams in T ms". Exit status 1 when a link is broken.
 * Against the local stack (npm start running) the embedded PostgreSQL is found on POSTGRES_PORT; elsewhere set
 * DATABASE_URL (and ESDB_URL with EVENT_STORE=esdb).
 */
import { auditVerify, parseVerifyArgs, runCommand, VERIFY_USAGE } from './audit-cli';

const parsed = parseVerifyArgs(process.argv.slice(2));
if (!parsed.ok) {
  process.stderr.write(`${parsed.message}\n${VERIFY_USAGE}`);
  process.exit(2);
}
void runCommand('audit:verify', (store) => auditVerify(store, parsed.args, (line) => console.log(line)));
