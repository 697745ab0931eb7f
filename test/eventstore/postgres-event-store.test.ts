import { PostgresEventStore } from '../../eventstore/postgres/postgres-event-store';
import { createTestDatabase } from '../support/test-database';
import { describeEventStoreContract } from './event-store-contract';

describeEventStoreContract('PostgreSQL', async () => {
  const db = await createTestDatabase('es_contract');
  const store = await PostgresEventStore.connect({ connectionString: db.url, pollIntervalMs: 200 });
  return {
    store,
    orderedDelivery: true,
    cleanup: async () => {
      await store.close();
      await db.drop();
    },
  };
});
