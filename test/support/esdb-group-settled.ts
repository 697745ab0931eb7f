import { EventStoreDBClient } from '@eventstore/db-client';

/**
 * The ContractSubject.groupSettled hook for EventStoreDB (a server or the emulator): asks the server, through the
 * client's own GetInfo call, whether the consumer group still counts a message as in flight. A message acked by the
 * consumer leaves that count only when the server has read the ack off the subscription's call.
 */
export function esdbGroupSettled(url: string): { groupSettled(group: string): Promise<boolean>; close(): Promise<void> } {
  const client = EventStoreDBClient.connectionString(url);
  return {
    async groupSettled(group: string): Promise<boolean> {
      const info = await client.getPersistentSubscriptionToAllInfo(group);
      return info.stats.totalInFlightMessages === 0;
    },
    close: () => client.dispose(),
  };
}
