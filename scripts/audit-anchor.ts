/**
 * `npm run audit:anchor [-- --json]`: records an anchor over every stream head of the PostgreSQL event store
 * (eventstore/postgres/hash-chain-audit.ts), so a later audit:verify names a stream that was deleted or cut short.
 * The projections process also anchors on a timer (eventstore/audit-anchoring.ts); this is the manual one.
 */
import { ANCHOR_USAGE, auditAnchor, runCommand } from './audit-cli';

const argv = process.argv.slice(2);
if (argv.some((a) => a !== '--json')) {
  process.stderr.write(ANCHOR_USAGE);
  process.exit(2);
}
void runCommand('audit:anchor', (store) => auditAnchor(store, argv.includes('--json'), (line) => console.log(line)));
