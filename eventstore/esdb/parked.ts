import type { RecordedEvent as EsdbRecordedEvent } from '@eventstore/db-client';

/**
 * The stream where EventStoreDB parks the messages of a persistent subscription group:
 * "$persistentsubscription-" + eventSource + "::" + group + "-parked", the event source of a subscription to $all
 * being "$all" (the server's filters for $all subscriptions match the prefix "$persistentsubscription-$all::" and
 * the suffix "-parked"). Reading it needs admin rights.
 */
export function parkedStreamName(group: string): string {
  return `$persistentsubscription-$all::${group}-parked`;
}

const CLIENT_NAK_PREFIX = "Client explicitly NAK'ed message.\n";

/**
 * The server writes each parked message as a link event ("$>", data "revision@stream") whose metadata is its
 * ParkedMessageMetadata { Added, Reason, SubscriptionEventNumber } as JSON. The casing of the keys depends on the
 * server's JSON settings, so both are accepted. A client's nack(PARK, reason) is recorded as
 * "Client explicitly NAK'ed message.\n" + reason (that prefix is dropped here); the server's own parking after too many
 * retries or timeouts reads "Reached retry count of N".
 */
export function parkedReason(link: EsdbRecordedEvent | undefined): string | undefined {
  const metadata: unknown = link?.metadata;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata) || metadata instanceof Uint8Array) {
    return undefined;
  }
  const record = metadata as Record<string, unknown>;
  const reason = record.reason ?? record.Reason;
  if (typeof reason !== 'string') return undefined;
  const text = reason.startsWith(CLIENT_NAK_PREFIX) ? reason.slice(CLIENT_NAK_PREFIX.length) : reason;
  return text.trim() !== '' ? text.trim() : undefined;
}

/**
 * The event a parking link names: the server writes the link's data as "<revision>@<stream>" (the `$>` link format,
 * src/EventStore.Core/Services/PersistentSubscription/PersistentSubscriptionMessageParker.cs), not as JSON, so the
 * client hands it over as bytes.
 */
export function parkedLinkTarget(data: unknown): { stream: string; revision: bigint } | undefined {
  const text = typeof data === 'string' ? data : data instanceof Uint8Array ? Buffer.from(data).toString('utf8') : undefined;
  const match = text === undefined ? null : /^(\d{1,19})@(.+)$/s.exec(text);
  return match ? { revision: BigInt(match[1]!), stream: match[2]! } : undefined;
}

/** The reason this adapter parks with: the attempts of this delivery, and of all deliveries when there were earlier ones. */
export function parkReason(attempt: number, maxAttempts: number, total: number, error: string): string {
  return `attempt ${attempt} of ${maxAttempts}${total > attempt ? `, ${total} in all` : ''}: ${error}`;
}

/** The handler attempts a reason written by parkReason counts in all. */
export function attemptsInReason(reason: string): number | undefined {
  const match = /^attempt (\d+) of \d+(?:, (\d+) in all)?:/.exec(reason);
  return match ? Number(match[2] ?? match[1]) : undefined;
}
