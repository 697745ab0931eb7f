import type { EventStore } from '../../eventstore/event-store';
import { InMemoryEventStore } from '../../eventstore/memory/in-memory-event-store';
import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { createTestDatabase } from './test-database';

/** Which event store a test file that runs in both tiers gets: in memory in the fast tier, PostgreSQL in `npm test`. */
export type TestStoreKind = 'in-memory' | 'PostgreSQL';

export function testStoreKind(): TestStoreKind {
  return process.env.TEST_TIER === 'unit' ? 'in-memory' : 'PostgreSQL';
}

export interface TestStore {
  store: EventStore;
  kind: TestStoreKind;
  /** Closes the store (and drops its database). */
  close(): Promise<void>;
}

/**
 * For tests that use the event store only through the port: the in-memory store in the fast tier (`npm run test:unit`,
 * no servers), a fresh PostgreSQL database in `npm test` (its global setup starts the server). So the same file checks
 * the application logic in seconds and, in the full run, against the real adapter.
 */
export async function unitOrPostgresStore(label: string, options: { poolSize?: number } = {}): Promise<TestStore> {
  if (testStoreKind() === 'in-memory') {
    const store = new InMemoryEventStore();
    return { store, kind: 'in-memory', close: () => store.close() };
  }
  const db = await createTestDatabase(label);
  try {
    const store = await PostgresEventStore.connect({ connectionString: db.url, pollIntervalMs: 200, poolSize: options.poolSize });
    return {
      store,
      kind: 'PostgreSQL',
      close: async () => {
        await store.close();
        await db.drop();
      },
    };
  } catch (error) {
    await db.drop();
    throw error;
  }
}
