import { EsdbEventStore } from '../../eventstore/esdb/esdb-event-store';
import { startEsdbEmulator } from '../support/esdb-emulator/server';
import { describeEventStoreContract } from './event-store-contract';
import { esdbGroupSettled } from '../support/esdb-group-settled';

/**
 * The whole EventStore contract, run by the EventStoreDB adapter over a real gRPC connection against the test-only
 * EMULATOR of EventStoreDB 24.10 (test/support/esdb-emulator: the server's rules as we read them in its source, cited
 * rule by rule). It proves the adapter against our reading of the server, not against the server: the run against a
 * real one is test/eventstore/esdb-event-store.test.ts, whenever ESDB_URL is set.
 */
describeEventStoreContract('EventStoreDB adapter against the gRPC emulator of EventStoreDB 24.10 (an emulator, not a server)', async () => {
  const emulator = await startEsdbEmulator();
  // The server's clock is its own: a test that fakes this process's Date (withClockOffset) must not move it.
  emulator.log.now = () => new Date(performance.timeOrigin + performance.now());
  const store = await EsdbEventStore.connect(emulator.url, { onSubscriptionError: () => undefined });
  const settled = esdbGroupSettled(emulator.url);
  return {
    store,
    groupSettled: settled.groupSettled,
    // One consumer per group here: the adapter hands each stream's events over in order (persistent-subscription.ts).
    orderedDelivery: true,
    batchedDelivery: false,
    cleanup: async () => {
      await store.close();
      await settled.close();
      await emulator.stop();
    },
  };
});
