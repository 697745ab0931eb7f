import { InMemoryEventStore } from '../../eventstore/memory/in-memory-event-store';
import { describeEventStoreContract } from './event-store-contract';

// The whole contract, as the PostgreSQL adapter runs it (test/eventstore/postgres-event-store.test.ts); no server.
describeEventStoreContract('in memory', async () => {
  const store = new InMemoryEventStore();
  return {
    store,
    orderedDelivery: true,
    cleanup: () => store.close(),
  };
});
