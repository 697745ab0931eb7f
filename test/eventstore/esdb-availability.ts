/**
 * Where the EventStoreDB contract suite finds a server: ESDB_URL, e.g. "esdb://localhost:2113?tls=false".
 * Without it the suite is skipped, and says so loudly.
 */
export function esdbUrlOrSkipReason(): { url?: string; reason?: string } {
  const url = process.env.ESDB_URL?.trim();
  if (url) return { url };
  return {
    reason:
      'EventStoreDB contract tests SKIPPED: ESDB_URL is not set (e.g. ESDB_URL="esdb://localhost:2113?tls=false"). ' +
      'The EventStoreDB adapter is NOT tested in this run.',
  };
}
