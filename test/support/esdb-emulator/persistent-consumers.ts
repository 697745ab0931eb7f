import { hashString } from './persistent-hash';
import type { Message, Resolved } from './persistent-model';
import { originalRecord } from './persistent-model';

/** What a consumer's gRPC call does for its group: send one event, or end the call because the server dropped it. */
export interface ConsumerConnection {
  /** ReadResp.ReadEvent with the message's retry count. */
  send(message: Message): void;
  /** The group dropped this consumer (ClientMessage.SubscriptionDropped with reason Unsubscribed). */
  dropped(): void;
}

/**
 * One connected consumer (src/EventStore.Core/Services/PersistentSubscription/PersistentSubscriptionClient.cs): it may
 * hold `maxInFlight` (the Read call's buffer_size) unacknowledged messages; a slot comes back when one of its messages
 * is acked, nacked, timed out or given to another consumer.
 */
export class PersistentClient {
  private allowed: number;
  totalItems = 0;
  lastTotalItems = 0;
  readonly unconfirmed = new Map<string, Message>();
  /** PersistentSubscriptionClient.EventConfirmed, which the Pinned strategies listen to. */
  onConfirmed: ((client: PersistentClient, message: Message) => void) | undefined;

  constructor(
    readonly correlationId: string,
    readonly consumerId: string,
    readonly connectionName: string,
    readonly from: string,
    readonly username: string,
    readonly maxInFlight: number,
    private readonly connection: ConsumerConnection,
  ) {
    this.allowed = maxInFlight;
  }

  get availableSlots(): number {
    return this.allowed;
  }

  get inFlight(): number {
    return this.unconfirmed.size;
  }

  /**
   * PersistentSubscriptionClient.Push: refuses when no slot is free. Like the server, a message already in flight to
   * this consumer is sent again and takes a slot again, but is counted once in the unconfirmed set.
   */
  push(message: Message): boolean {
    if (this.allowed <= 0) return false;
    this.allowed -= 1;
    this.totalItems += 1;
    this.connection.send(message);
    if (!this.unconfirmed.has(message.eventId)) this.unconfirmed.set(message.eventId, message);
    return true;
  }

  /** PersistentSubscriptionClient.RemoveFromProcessing. */
  removeFromProcessing(ids: readonly string[]): void {
    for (const id of ids) {
      const message = this.unconfirmed.get(id);
      if (!message) continue;
      this.unconfirmed.delete(id);
      this.allowed += 1;
      this.onConfirmed?.(this, message);
    }
  }

  sendDropNotification(): void {
    this.connection.dropped();
  }
}

/** ConsumerStrategy/ConsumerPushResult.cs. */
export type PushResult = 'sent' | 'skipped' | 'no-more-capacity';

/** ConsumerStrategy/IPersistentSubscriptionConsumerStrategy.cs. */
export interface ConsumerStrategy {
  readonly name: string;
  clientAdded(client: PersistentClient): void;
  clientRemoved(client: PersistentClient): void;
  push(message: Message): PushResult;
}

/** The strategies a server knows (ConsumerStrategy/PersistentSubscriptionConsumerStrategyRegistry.cs). */
export const CONSUMER_STRATEGIES = ['RoundRobin', 'DispatchToSingle', 'Pinned', 'PinnedByCorrelation'] as const;

export function isKnownStrategy(name: string): boolean {
  return (CONSUMER_STRATEGIES as readonly string[]).includes(name);
}

export function createStrategy(name: string): ConsumerStrategy {
  switch (name) {
    case 'RoundRobin':
      return new RoundRobinStrategy();
    case 'DispatchToSingle':
      return new DispatchToSingleStrategy();
    case 'Pinned':
      return new PinnedStrategy('Pinned', streamSourceId);
    case 'PinnedByCorrelation':
      return new PinnedStrategy('PinnedByCorrelation', correlationSourceId);
    default:
      throw new Error(`The named consumer strategy '${name}' is unknown.`);
  }
}

/**
 * RoundRobin (ConsumerStrategy/RoundRobinPersistentSubscriptionConsumerStrategy.cs): the consumers form a queue; each
 * message goes to the first one, in queue order, with a free slot, and every consumer tried moves to the back.
 */
class RoundRobinStrategy implements ConsumerStrategy {
  readonly name: string = 'RoundRobin';
  protected clients: PersistentClient[] = [];

  clientAdded(client: PersistentClient): void {
    this.clients.push(client);
  }

  clientRemoved(client: PersistentClient): void {
    const index = this.clients.indexOf(client);
    if (index < 0) throw new Error('Only added clients can be removed.');
    this.clients.splice(index, 1);
  }

  push(message: Message): PushResult {
    for (let i = 0; i < this.clients.length; i++) {
      const client = this.clients.shift();
      if (!client) break;
      const pushed = client.push(message);
      this.clients.push(client);
      if (pushed) return 'sent';
    }
    return 'no-more-capacity';
  }
}

/**
 * DispatchToSingle (ConsumerStrategy/DispatchToSinglePersistentSubscriptionConsumerStrategy.cs): the consumer at the
 * head of the queue gets every message while it has a free slot; only when it is full does the next one get messages
 * (and the full one moves to the back).
 */
class DispatchToSingleStrategy extends RoundRobinStrategy {
  override readonly name = 'DispatchToSingle';

  override push(message: Message): PushResult {
    for (let i = 0; i < this.clients.length; i++) {
      const head = this.clients[0];
      if (!head) break;
      if (head.push(message)) return 'sent';
      this.clients.push(this.clients.shift() as PersistentClient);
    }
    return 'no-more-capacity';
  }
}

/** The stream a message is pinned by: the event's stream, or an unresolved link's target stream (PinnablePersistentSubscriptionConsumerStrategy.GetSourceStreamId). */
function streamSourceId(resolved: Resolved): string {
  const record = resolved.event ?? originalRecord(resolved);
  if (record.type === '$>') {
    const text = Buffer.from(record.data).toString('utf8');
    const at = text.indexOf('@');
    return at === -1 ? text : text.slice(at + 1);
  }
  return record.stream;
}

/**
 * PinnedByCorrelation (ConsumerStrategy/PinnedByCorrelationPersistentSubscriptionConsumerStrategy.cs): the
 * "$correlationId" string of the event's JSON metadata, else the stream as Pinned does. (The server scans the JSON
 * tokens up to the first end of an object; this reads the top-level property.)
 */
function correlationSourceId(resolved: Resolved): string {
  const record = resolved.event ?? originalRecord(resolved);
  try {
    const metadata: unknown = JSON.parse(Buffer.from(record.metadata).toString('utf8'));
    if (typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata)) {
      const value = (metadata as Record<string, unknown>)['$correlationId'];
      if (typeof value === 'string') return value;
    }
  } catch {
    // not JSON: fall back to the stream
  }
  return streamSourceId(resolved);
}

const BUCKET_COUNT = 1024;

type BucketState = 'unassigned' | 'assigned' | 'disconnected';

interface Node {
  client: PersistentClient;
  connected: boolean;
  assignmentCount: number;
}

interface Bucket {
  state: BucketState;
  node?: Node;
  inFlight: number;
}

/**
 * Pinned and PinnedByCorrelation (ConsumerStrategy/PinnablePersistentSubscriptionConsumerStrategy.cs and
 * PinnedState/PinnedConsumerState.cs): the source id hashes to one of 1024 buckets; a bucket not assigned yet goes to
 * the connected consumer with the fewest buckets (the first such in join order); an assigned bucket's messages go to
 * its consumer only: if that consumer is full the message is skipped (left in the buffer) and later messages may pass
 * it. A new consumer takes buckets from consumers over the balanced share (those with the fewest in-flight messages
 * first); a consumer that leaves marks its buckets disconnected, and they go to whoever has the fewest buckets next.
 */
class PinnedStrategy implements ConsumerStrategy {
  private readonly buckets: Bucket[] = Array.from({ length: BUCKET_COUNT }, () => ({ state: 'unassigned' as BucketState, inFlight: 0 }));
  private nodes: Node[] = [];
  private assignmentCount = 0;

  constructor(
    readonly name: string,
    private readonly sourceId: (resolved: Resolved) => string,
  ) {}

  private bucketOf(resolved: Resolved): number {
    return hashString(this.sourceId(resolved)) % BUCKET_COUNT;
  }

  private get availableCapacity(): number {
    return this.nodes.filter((n) => n.connected).reduce((sum, n) => sum + (n.client.maxInFlight - n.client.inFlight), 0);
  }

  clientAdded(client: PersistentClient): void {
    const node: Node = { client, connected: true, assignmentCount: 0 };
    this.nodes.push(node);
    client.onConfirmed = (c, message) => {
      const bucket = this.buckets[this.bucketOf(message.resolved)];
      if (bucket && bucket.node?.client === c) bucket.inFlight -= 1;
    };
    // PinnedConsumerState.AddNode: rebalance towards the new node.
    const connected = this.nodes.filter((n) => n.connected).length;
    const share = Math.ceil(this.assignmentCount / connected);
    const moves: number[] = [];
    for (const existing of this.nodes) {
      if (existing === node || !existing.connected) continue;
      if (existing.assignmentCount > share) {
        const owned = this.buckets
          .map((bucket, index) => ({ bucket, index }))
          .filter(({ bucket }) => bucket.node === existing && bucket.state === 'assigned')
          .sort((a, b) => a.bucket.inFlight - b.bucket.inFlight); // stable, as LINQ's OrderBy
        for (const { index } of owned.slice(0, existing.assignmentCount - share)) moves.push(index);
      }
    }
    for (const index of moves) this.assign(index, node);
    this.nodes = this.nodes.filter((n) => n.connected || n.assignmentCount > 0);
  }

  clientRemoved(client: PersistentClient): void {
    client.onConfirmed = undefined;
    const node = this.nodes.find((n) => n.client === client);
    if (!node) throw new Error("ClientRemoved was called for a client the consumer strategy didn't have.");
    node.connected = false;
    this.assignmentCount -= node.assignmentCount;
    for (const bucket of this.buckets) {
      if (bucket.node === node) {
        bucket.state = 'disconnected';
        bucket.inFlight = 0;
      }
    }
  }

  private assign(index: number, node: Node): void {
    const bucket = this.buckets[index];
    if (!bucket) return;
    if (bucket.state !== 'assigned') this.assignmentCount += 1;
    if (bucket.state !== 'unassigned' && bucket.node) bucket.node.assignmentCount -= 1;
    bucket.state = 'assigned';
    bucket.node = node;
    node.assignmentCount += 1;
  }

  push(message: Message): PushResult {
    if (this.availableCapacity === 0) return 'no-more-capacity';
    const index = this.bucketOf(message.resolved);
    const bucket = this.buckets[index];
    if (!bucket) return 'no-more-capacity';
    if (bucket.state !== 'assigned') {
      let chosen: Node | undefined;
      for (const node of this.nodes) {
        if (node.connected && (!chosen || node.assignmentCount < chosen.assignmentCount)) chosen = node;
      }
      if (!chosen) return 'no-more-capacity';
      this.assign(index, chosen);
    }
    if (!bucket.node?.client.push(message)) return 'skipped';
    bucket.inFlight += 1;
    return 'sent';
  }
}

/** PersistentSubscriptionClientCollection.cs: the group's consumers, by correlation id, and its strategy. */
export class ClientCollection {
  private readonly clients = new Map<string, PersistentClient>();

  constructor(readonly strategy: ConsumerStrategy) {}

  get count(): number {
    return this.clients.size;
  }

  all(): PersistentClient[] {
    return [...this.clients.values()];
  }

  add(client: PersistentClient): void {
    this.clients.set(client.correlationId, client);
    this.strategy.clientAdded(client);
  }

  push(message: Message): PushResult {
    return this.strategy.push(message);
  }

  /** RemoveClientByCorrelationId: the consumer's unconfirmed messages come back to the caller. */
  remove(correlationId: string, sendDropNotification: boolean): Message[] {
    const client = this.clients.get(correlationId);
    if (!client) return [];
    this.clients.delete(correlationId);
    this.strategy.clientRemoved(client);
    if (sendDropNotification) client.sendDropNotification();
    return [...client.unconfirmed.values()];
  }

  removeProcessing(ids: readonly string[]): void {
    for (const client of this.clients.values()) client.removeFromProcessing(ids);
  }
}
