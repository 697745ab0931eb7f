import * as grpc from '@grpc/grpc-js';
import { PersistentSubscriptionsService } from '@eventstore/db-client/generated/persistent_grpc_pb';
import * as pb from '@eventstore/db-client/generated/persistent_pb';
import { Empty } from '@eventstore/db-client/generated/shared_pb';
import type { EmulatedLog, LogRecord } from './log';
import type { ConsumerConnection } from './persistent-consumers';
import { createStrategy, isKnownStrategy, PersistentClient } from './persistent-consumers';
import type { GroupSettings, GroupStatistics, NakAction } from './persistent-group';
import { PersistentGroup, ServerFault } from './persistent-group';
import type { GroupFilter } from './persistent-io';
import { defaultAllFilterAllows, newtonsoftDate, PersistentIo } from './persistent-io';
import type { AllPosition, Message } from './persistent-model';
import { formatPosition, parsePosition } from './persistent-model';
import type { RpcStatus } from './persistent-wire';
import {
  accessDenied,
  confirmationResponse,
  connectionDropped,
  maximumSubscribersReached,
  notEmulated,
  persistentSubscriptionDoesNotExist,
  persistentSubscriptionDropped,
  persistentSubscriptionExists,
  persistentSubscriptionFailed,
  readEventResponse,
  unhandledException,
  uuidToString,
} from './persistent-wire';

/**
 * The persistent subscriptions service of the EventStoreDB 24.10 emulator, for groups on $all (TEST-ONLY).
 *
 * It follows the server's rules, not what our adapter expects; paths are at tag v24.10.0 of EventStore/EventStore:
 * - the gRPC surface: src/EventStore.Core/Services/Transport/Grpc/PersistentSubscriptions.{Create,Update,Delete,Read,
 *   Info,ReplayParked,RestartSubsystem}.cs;
 * - the service: src/EventStore.Core/Services/PersistentSubscription/PersistentSubscriptionService.cs (groups by
 *   "$all::<group>", the configuration in $persistentSubscriptionConfig, the live feed, the 1 s clock tick);
 * - a group: persistent-group.ts (PersistentSubscription.cs and its parts), consumers: persistent-consumers.ts.
 * The server handles everything on one queue; so does this emulator (`run`), so a write a group makes (a checkpoint,
 * a parked message) reaches the live feed after the operation that made it.
 * Not emulated: persistent subscriptions to a single stream (UNIMPLEMENTED), authentication (every caller may do
 * everything, as an --insecure node; `denyAccess` makes operations answer AccessDenied), extra statistics'
 * measurements, the "oldest parked message" statistic, cluster roles.
 */

export type PersistentOperation = 'create' | 'update' | 'delete' | 'read' | 'getInfo' | 'list' | 'replayParked' | 'restartSubsystem';

/** One message sent to one consumer, in the order they were sent. */
export interface Delivery {
  /** "consumer-<n>", numbered in the order consumers joined (across groups). */
  consumerId: string;
  /** The "connection-name" header of the consumer's call (the client's connectionName). */
  connectionName: string;
  /** The id the consumer acks (the original event's: the link's when there is one). */
  messageId: string;
  /** The event (the resolved one, for a link); absent for a link that did not resolve. */
  event?: { stream: string; revision: bigint; eventId: string; type: string };
  link?: { stream: string; revision: bigint; eventId: string };
  retryCount: number;
  /** ReadEvent.commit_position (the original event's: the link's for a link, e.g. a replayed parked event's). */
  commitPosition?: bigint;
  /** A replayed parked message. */
  replayed: boolean;
}

export interface ConsumerInfo {
  consumerId: string;
  connectionName: string;
  maxInFlight: number;
  inFlight: number;
  availableSlots: number;
}

export interface GroupInfo {
  group: string;
  settings: GroupSettings;
  /** PersistentSubscriptionState as the server prints it, e.g. "Live" or "Behind". */
  status: string;
  consumers: ConsumerInfo[];
  /** Messages in flight (sent, not acked/nacked/timed out), with their retry count and the consumers holding them. */
  inFlight: { eventId: string; stream: string; revision: bigint; retryCount: number; replayed: boolean; consumers: string[] }[];
  /** Messages waiting in the retry queue (served before new events), in order. */
  retryQueue: { eventId: string; retryCount: number; replayed: boolean }[];
  /** The last checkpoint this group instance wrote or loaded ("C:<commit>/P:<prepare>"). */
  lastCheckpoint?: string;
  parkedMessageCount: bigint;
  /** Server rules that failed as the server's would (a handler that throws part-way), see ServerFault. */
  anomalies: string[];
}

export interface PersistentSubscriptionsControl {
  /** Breaks every consumer's call (of one group, or all) like a network failure: the consumer sees UNAVAILABLE; its in-flight messages are retried (retry count + 1). Returns how many were dropped. */
  dropConsumers(group?: string): number;
  /**
   * Restarts the service: in-memory state (in-flight messages, the retry queue, consumers) is lost; groups are reloaded
   * from the configuration in the log and resume after their last written checkpoint. `server` (default): consumers see
   * UNAVAILABLE, as when the node restarts; `subsystem`: as the RestartSubsystem call, they see PersistentSubscriptionDropped.
   */
  restart(options?: { as?: 'server' | 'subsystem' }): void;
  /** As if messageTimeout had passed for every in-flight message of the group (then one clock tick). */
  expireInFlight(group: string): void;
  /** One clock tick now (what the server does every second: time-outs, checkpoints by time, pushes). */
  tick(): void;
  /**
   * Whether the server's 1 s clock tick runs on its own (default: yes, while consumers are connected). A test that
   * asserts what happens between ticks turns it off and calls `tick()` / `expireInFlight()` itself.
   */
  autoTick(enabled: boolean): void;
  groupInfo(group: string): GroupInfo | undefined;
  deliveries(group: string): readonly Delivery[];
  /** Operations answered with AccessDenied from now on (an empty list allows all again). */
  denyAccess(operations: readonly PersistentOperation[]): void;
  /** Emulator errors (bugs of the emulator, not server rules); a test may assert there are none. */
  errors(): readonly string[];
  /** Stops the clock tick and the log listener; ends consumer calls (UNAVAILABLE). */
  close(): void;
}

const ALL = '$all';
const CONFIG_STREAM = '$persistentSubscriptionConfig';
const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** The proto enum CreateReq.ConsumerStrategy printed by C# (`NamedConsumerStrategy.ToString()`). */
const NAMED_STRATEGIES = new Map<number, string>([
  [0, 'DispatchToSingle'],
  [1, 'RoundRobin'],
  [2, 'Pinned'],
]);

/** A PersistentSubscriptionEntry of the configuration (PersistentSubscriptionConfig.cs). */
interface ConfigEntry {
  settings: GroupSettings;
}

interface ConsumerCall {
  correlationId: string;
  group: string;
  consumerId: string;
  end(status: RpcStatus): void;
  ended(): boolean;
}

type Settings = pb.CreateReq.Settings | pb.UpdateReq.Settings;

function ticksToMs(ticks: string): number {
  return Math.trunc(Number(BigInt(ticks)) / 10_000);
}

/** The message time-out and checkpoint-after of a Create/Update request (ms, or ticks converted; 0 when unset). */
function timings(settings: Settings): { messageTimeoutMs: number; checkPointAfterMs: number } {
  const messageTimeoutMs =
    settings.getMessageTimeoutCase() === pb.CreateReq.Settings.MessageTimeoutCase.MESSAGE_TIMEOUT_MS
      ? settings.getMessageTimeoutMs()
      : settings.getMessageTimeoutCase() === pb.CreateReq.Settings.MessageTimeoutCase.MESSAGE_TIMEOUT_TICKS
        ? ticksToMs(settings.getMessageTimeoutTicks())
        : 0;
  const checkPointAfterMs =
    settings.getCheckpointAfterCase() === pb.CreateReq.Settings.CheckpointAfterCase.CHECKPOINT_AFTER_MS
      ? settings.getCheckpointAfterMs()
      : settings.getCheckpointAfterCase() === pb.CreateReq.Settings.CheckpointAfterCase.CHECKPOINT_AFTER_TICKS
        ? ticksToMs(settings.getCheckpointAfterTicks())
        : 0;
  return { messageTimeoutMs, checkPointAfterMs };
}

/**
 * The start of a group on $all: START = Position.Start (C:0/P:0), END = Position.End (C:-1/P:-1), or a position
 * (Position's constructor refuses commit < prepare, and values beyond long.MaxValue other than ulong.MaxValue).
 */
function startPosition(all: pb.CreateReq.AllOptions | pb.UpdateReq.AllOptions): AllPosition | 'invalid' {
  switch (all.getAllOptionCase()) {
    case pb.CreateReq.AllOptions.AllOptionCase.START:
      return { commit: 0n, prepare: 0n };
    case pb.CreateReq.AllOptions.AllOptionCase.END:
      return { commit: -1n, prepare: -1n };
    case pb.CreateReq.AllOptions.AllOptionCase.POSITION: {
      const position = all.getPosition() as pb.CreateReq.Position;
      const commit = BigInt(position.getCommitPosition());
      const prepare = BigInt(position.getPreparePosition());
      const max = 0xffffffffffffffffn;
      const longMax = 0x7fffffffffffffffn;
      if (commit < prepare || (commit > longMax && commit !== max) || (prepare > longMax && prepare !== max)) return 'invalid';
      return { commit: BigInt.asIntN(64, commit), prepare: BigInt.asIntN(64, prepare) };
    }
    default:
      return 'invalid';
  }
}

/** CreateReq's filter (PersistentSubscriptions.Create.cs ConvertToEventFilter): a regex when one is given, else the prefixes. */
function filterFrom(all: pb.CreateReq.AllOptions): GroupFilter | undefined | 'invalid' {
  if (all.getFilterOptionCase() !== pb.CreateReq.AllOptions.FilterOptionCase.FILTER) return undefined;
  const options = all.getFilter() as pb.CreateReq.AllOptions.FilterOptions;
  const context =
    options.getFilterCase() === pb.CreateReq.AllOptions.FilterOptions.FilterCase.EVENT_TYPE
      ? 'eventtype'
      : options.getFilterCase() === pb.CreateReq.AllOptions.FilterOptions.FilterCase.STREAM_IDENTIFIER
        ? 'streamid'
        : undefined;
  if (!context) return 'invalid';
  const expression = (
    context === 'eventtype' ? options.getEventType() : options.getStreamIdentifier()
  ) as pb.CreateReq.AllOptions.FilterOptions.Expression;
  const regex = expression.getRegex();
  if (regex) {
    try {
      new RegExp(regex);
    } catch {
      return 'invalid'; // .NET's Regex constructor throws in the handler
    }
    return { context, type: 'regex', data: [regex] };
  }
  return { context, type: 'prefix', data: expression.getPrefixList() };
}

/** PersistentSubscriptionService.ValidateStartFrom for $all. */
function validateStartFrom(start: AllPosition, lastIndexedPosition: bigint): string | undefined {
  if (start.prepare > start.commit)
    return 'Invalid Start From position: prepare position must be less than or equal to the commit position.';
  if (start.commit > lastIndexedPosition) {
    return 'Invalid Start From position: commit position must be less than or equal to the last commit position in the transaction file.';
  }
  if ((start.prepare <= -1n || start.commit <= -1n) && !(start.prepare === -1n && start.commit === -1n)) {
    return 'Invalid Start From position: prepare and commit positions must be greater than or equal to 0 or both equal to -1.';
  }
  return undefined;
}

/** The username of a Basic authorization header, else "anonymous" (PersistentSubscriptionService: `user ?? "anonymous"`). */
function username(metadata: grpc.Metadata): string {
  const header = metadata.get('authorization')[0];
  if (typeof header === 'string' && header.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return decoded.slice(0, colon);
  }
  return 'anonymous';
}

function headerValue(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === 'string' ? value : value ? Buffer.from(value).toString('utf8') : undefined;
}

/** JSON as Newtonsoft writes it with the server's settings (indented, 2 spaces); `bigint`s are written exactly. */
function newtonsoftJson(value: unknown): string {
  const marker = '__bigint__';
  const json = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${marker}${v}` : v), 2);
  return json.replace(new RegExp(`"${marker}(-?\\d+)"`, 'g'), '$1');
}

class PersistentSubscriptionService {
  private readonly io: PersistentIo;
  private readonly groups = new Map<string, PersistentGroup>();
  private allTopic = false;
  private config: ConfigEntry[] = [];
  private started = false;
  private readonly queue: (() => void)[] = [];
  private running = false;
  private readonly calls = new Map<string, ConsumerCall>();
  private readonly deliveryLog = new Map<string, Delivery[]>();
  private readonly emulatorErrors: string[] = [];
  private readonly serviceAnomalies: string[] = [];
  private denied = new Set<PersistentOperation>();
  private timer: NodeJS.Timeout | undefined;
  private autoTick = true;
  private consumerCounter = 0;
  private readonly stopListening: () => void;

  constructor(readonly log: EmulatedLog) {
    this.io = new PersistentIo(log);
    this.stopListening = log.onAppend((records) => this.run(() => this.eventsCommitted(records)));
    this.run(() => this.startSubscriptions());
  }

  // ------------------------------------------------------------------------------------------------------------------
  // The queue

  /** Everything runs on one queue, one item at a time (the server's queued handler). */
  run(work: () => void): void {
    this.queue.push(work);
    if (this.running) return;
    this.running = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) {
        try {
          next();
        } catch (err) {
          this.fault(undefined, err);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private guard(group: PersistentGroup | undefined, work: () => void): void {
    try {
      work();
    } catch (err) {
      this.fault(group, err);
    }
  }

  private fault(group: PersistentGroup | undefined, err: unknown): void {
    const text = err instanceof Error ? err.message : String(err);
    if (err instanceof ServerFault) {
      (group?.anomalies ?? this.serviceAnomalies).push(text);
      return;
    }
    this.emulatorErrors.push(err instanceof Error && err.stack ? err.stack : text);
    console.error('esdb emulator (persistent subscriptions) error:', err);
  }

  isDenied(operation: PersistentOperation): boolean {
    return this.denied.has(operation);
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Start, stop, configuration

  /** StartSubscriptions: empty state, then the configuration read back from the log. */
  private startSubscriptions(): void {
    this.groups.clear();
    this.allTopic = false;
    this.config = [];
    this.loadConfiguration();
    this.started = true;
  }

  /** HandleLoadCompleted: the last $PersistentConfig event; entries with an unknown strategy or a bad filter are ignored. */
  private loadConfiguration(): void {
    const events = this.log.readStream(CONFIG_STREAM);
    const last = events[events.length - 1];
    if (!last) return;
    let parsed: { entries?: Record<string, unknown>[] };
    try {
      parsed = JSON.parse(Buffer.from(last.data).toString('utf8')) as { entries?: Record<string, unknown>[] };
    } catch {
      this.serviceAnomalies.push('There was an error loading configuration from storage.');
      return;
    }
    for (const entry of parsed.entries ?? []) {
      if (entry.stream !== ALL) continue; // groups on single streams are not emulated
      const strategy = String(entry.namedConsumerStrategy ?? '');
      if (!isKnownStrategy(strategy)) continue;
      const start = parsePosition(String(entry.startPosition ?? ''));
      if (!start) continue;
      let filter: GroupFilter | undefined;
      const dto = entry.filter as { context?: string; type?: string; data?: string } | undefined;
      if (dto) {
        if ((dto.context !== 'streamid' && dto.context !== 'eventtype') || (dto.type !== 'prefix' && dto.type !== 'regex') || !dto.data)
          continue;
        filter = {
          context: dto.context,
          type: dto.type,
          data: dto.type === 'regex' ? [dto.data] : dto.data.split(',').filter((p) => p !== ''),
        };
      }
      const num = (key: string) => (typeof entry[key] === 'number' ? (entry[key] as number) : 0);
      const settings: GroupSettings = {
        group: String(entry.group),
        filter,
        startFrom: start,
        resolveLinkTos: entry.resolveLinkTos === true,
        extraStatistics: entry.extraStatistics === true,
        messageTimeoutMs: num('messageTimeout'),
        maxRetryCount: num('maxRetryCount'),
        liveBufferSize: num('liveBufferSize'),
        historyBufferSize: num('historyBufferSize'),
        readBatchSize: num('readBatchSize'),
        checkPointAfterMs: num('checkPointAfter'),
        minCheckPointCount: num('minCheckPointCount'),
        maxCheckPointCount: num('maxCheckPointCount'),
        maxSubscriberCount: num('maxSubscriberCount'),
        consumerStrategy: strategy,
      };
      if (this.groups.has(settings.group)) continue; // "A duplicate persistent subscription ... Ignoring it."
      try {
        this.installGroup(settings);
        this.config.push({ settings });
      } catch (err) {
        this.serviceAnomalies.push(
          `There was an error loading configuration from storage: ${err instanceof Error ? err.message : String(err)}`,
        );
        return;
      }
    }
  }

  /**
   * SaveConfiguration: the whole configuration as one $PersistentConfig event (JSON, camelCase, default values left
   * out) in $persistentSubscriptionConfig, whose metadata ($maxCount 2) is written first when the stream is empty
   * (IODispatcher.ConfigureStreamAndWriteEvents).
   */
  private saveConfiguration(username: string): void {
    const entries = this.config.map(({ settings: s }) => {
      const entry: Record<string, unknown> = { stream: ALL, group: s.group };
      if (s.filter) entry.filter = { context: s.filter.context, type: s.filter.type, data: s.filter.data.join(','), isAllStream: true };
      if (s.resolveLinkTos) entry.resolveLinkTos = true;
      if (s.extraStatistics) entry.extraStatistics = true;
      if (s.messageTimeoutMs) entry.messageTimeout = s.messageTimeoutMs;
      entry.startFrom = -0x8000000000000000n; // long.MinValue for $all (the obsolete field)
      entry.startPosition = formatPosition(s.startFrom);
      if (s.liveBufferSize) entry.liveBufferSize = s.liveBufferSize;
      if (s.historyBufferSize) entry.historyBufferSize = s.historyBufferSize;
      if (s.maxRetryCount) entry.maxRetryCount = s.maxRetryCount;
      if (s.readBatchSize) entry.readBatchSize = s.readBatchSize;
      if (s.checkPointAfterMs) entry.checkPointAfter = s.checkPointAfterMs;
      if (s.minCheckPointCount) entry.minCheckPointCount = s.minCheckPointCount;
      if (s.maxCheckPointCount) entry.maxCheckPointCount = s.maxCheckPointCount;
      if (s.maxSubscriberCount) entry.maxSubscriberCount = s.maxSubscriberCount;
      entry.namedConsumerStrategy = s.consumerStrategy;
      return entry;
    });
    const config: Record<string, unknown> = { version: '2', updated: newtonsoftDate(this.log.now()) };
    if (username !== 'anonymous') config.updatedBy = username;
    config.entries = entries;
    if (this.log.readStream(CONFIG_STREAM).length === 0) this.log.setStreamMetadata(CONFIG_STREAM, { $maxCount: 2 });
    this.io.appendOne(CONFIG_STREAM, '$PersistentConfig', 'application/json', utf8.encode(newtonsoftJson(config)), EMPTY);
  }

  private installGroup(settings: GroupSettings): PersistentGroup {
    const group = new PersistentGroup(settings, createStrategy(settings.consumerStrategy), this.io, (work) =>
      this.run(() => this.guard(group, work)),
    );
    const old = this.groups.get(settings.group);
    if (old) this.guard(old, () => old.shutdown()); // UpdateSubscription: the old instance's consumers are dropped
    this.groups.set(settings.group, group);
    this.allTopic = true;
    return group;
  }

  /** Restart: state lost, groups reloaded from the configuration in the log, each resuming after its checkpoint. */
  restart(as: 'server' | 'subsystem'): void {
    this.run(() => {
      this.started = false;
      for (const group of this.groups.values()) {
        if (as === 'server') {
          for (const call of [...this.calls.values()]) if (call.group === group.settings.group) call.end(connectionDropped());
        }
        this.guard(group, () => group.shutdown());
      }
      this.startSubscriptions();
      this.updateTimer();
    });
  }

  close(): void {
    this.stopListening();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const call of [...this.calls.values()]) call.end(connectionDropped());
    this.calls.clear();
  }

  // ------------------------------------------------------------------------------------------------------------------
  // The live feed and the clock

  /**
   * ProcessEventCommited: each committed event the default $all filter lets through goes to every $all group, with
   * its link resolved for the groups that resolve links (ResolveLinkToEvent: a link that does not resolve comes alone).
   */
  private eventsCommitted(records: readonly LogRecord[]): void {
    if (!this.started || !this.allTopic) return;
    for (const record of records) {
      if (!defaultAllFilterAllows(record)) continue;
      for (const group of this.groups.values()) {
        const resolved = this.io.resolve(record, group.settings.resolveLinkTos, { ...record.position });
        this.guard(group, () => group.notifyLiveSubscriptionMessage(resolved));
      }
    }
  }

  /** The server's timer: every second, NotifyClockTick on every group. It runs here while consumers are connected. */
  private updateTimer(): void {
    const anyConsumer = this.autoTick && [...this.groups.values()].some((g) => g.clientCount > 0);
    if (anyConsumer && !this.timer) {
      this.timer = setInterval(() => this.tick(false, undefined), 1000);
      this.timer.unref();
    } else if (!anyConsumer && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  tick(expireAll: boolean, only: string | undefined): void {
    this.run(() => {
      for (const group of this.groups.values()) {
        if (only !== undefined && group.settings.group !== only) continue;
        this.guard(group, () => group.notifyClockTick(this.io.nowMs(), expireAll));
      }
    });
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Create, update, delete

  create(request: pb.CreateReq, user: string): RpcStatus | undefined {
    const options = request.getOptions();
    const settings = options?.getSettings();
    if (!options || !settings) return unhandledException();
    if (options.getStreamOptionCase() !== pb.CreateReq.Options.StreamOptionCase.ALL)
      return notEmulated('a persistent subscription to a stream');
    const all = options.getAll() as pb.CreateReq.AllOptions;
    const group = options.getGroupName();
    const start = startPosition(all);
    if (start === 'invalid') return unhandledException();
    const filter = filterFrom(all);
    if (filter === 'invalid') return unhandledException();
    // Create.cs: the consumer_strategy string when given, else the (deprecated) enum's name.
    const strategy =
      settings.getConsumerStrategy() ||
      (NAMED_STRATEGIES.get(settings.getNamedConsumerStrategy()) ?? String(settings.getNamedConsumerStrategy()));
    const groupSettings: GroupSettings = {
      group,
      filter,
      startFrom: start,
      resolveLinkTos: settings.getResolveLinks(),
      extraStatistics: settings.getExtraStatistics(),
      ...timings(settings),
      maxRetryCount: settings.getMaxRetryCount(),
      liveBufferSize: settings.getLiveBufferSize(),
      historyBufferSize: settings.getHistoryBufferSize(),
      readBatchSize: settings.getReadBatchSize(),
      minCheckPointCount: settings.getMinCheckpointCount(),
      maxCheckPointCount: settings.getMaxCheckpointCount(),
      maxSubscriberCount: settings.getMaxSubscriberCount(),
      consumerStrategy: strategy,
    };
    let result: RpcStatus | undefined;
    this.run(() => {
      // PersistentSubscriptionService.CreatePersistentSubscription
      if (!isKnownStrategy(strategy)) {
        result = persistentSubscriptionFailed(ALL, group, `Consumer strategy ${strategy} does not exist.`);
        return;
      }
      const invalid = validateStartFrom(start, this.io.lastIndexedPosition());
      if (invalid) {
        result = persistentSubscriptionFailed(ALL, group, invalid);
        return;
      }
      if (this.groups.has(group)) {
        result = persistentSubscriptionExists(ALL, group);
        return;
      }
      try {
        this.installGroup(groupSettings);
      } catch (err) {
        result = persistentSubscriptionFailed(ALL, group, err instanceof Error ? err.message : String(err));
        return;
      }
      this.config.push({ settings: groupSettings });
      this.saveConfiguration(user);
    });
    return result;
  }

  /**
   * UpdatePersistentSubscription: a NEW group instance with the new settings (the filter is kept; 6.2.1's UpdateReq
   * cannot carry one, and the enum names the strategy) replaces the old one, whose consumers are dropped
   * (PersistentSubscriptionDropped) and whose in-memory state is lost: the new one resumes after the last checkpoint.
   */
  update(request: pb.UpdateReq, user: string): RpcStatus | undefined {
    const options = request.getOptions();
    const settings = options?.getSettings();
    if (!options || !settings) return unhandledException();
    if (options.getStreamOptionCase() !== pb.UpdateReq.Options.StreamOptionCase.ALL)
      return notEmulated('a persistent subscription to a stream');
    const group = options.getGroupName();
    const start = startPosition(options.getAll() as pb.UpdateReq.AllOptions);
    if (start === 'invalid') return unhandledException();
    const strategy = NAMED_STRATEGIES.get(settings.getNamedConsumerStrategy()) ?? String(settings.getNamedConsumerStrategy());
    let result: RpcStatus | undefined;
    this.run(() => {
      const old = this.groups.get(group);
      if (!old) {
        result = persistentSubscriptionDoesNotExist(ALL, group);
        return;
      }
      if (!isKnownStrategy(strategy)) {
        result = persistentSubscriptionFailed(ALL, group, `Consumer strategy ${strategy} does not exist.`);
        return;
      }
      const invalid = validateStartFrom(start, this.io.lastIndexedPosition());
      if (invalid) {
        result = persistentSubscriptionFailed(ALL, group, invalid);
        return;
      }
      const groupSettings: GroupSettings = {
        group,
        filter: old.settings.filter,
        startFrom: start,
        resolveLinkTos: settings.getResolveLinks(),
        extraStatistics: settings.getExtraStatistics(),
        ...timings(settings),
        maxRetryCount: settings.getMaxRetryCount(),
        liveBufferSize: settings.getLiveBufferSize(),
        historyBufferSize: settings.getHistoryBufferSize(),
        readBatchSize: settings.getReadBatchSize(),
        minCheckPointCount: settings.getMinCheckpointCount(),
        maxCheckPointCount: settings.getMaxCheckpointCount(),
        maxSubscriberCount: settings.getMaxSubscriberCount(),
        consumerStrategy: strategy,
      };
      try {
        this.installGroup(groupSettings);
      } catch (err) {
        result = persistentSubscriptionFailed(ALL, group, err instanceof Error ? err.message : String(err));
        return;
      }
      this.config = this.config.map((entry) => (entry.settings.group === group ? { settings: groupSettings } : entry));
      this.saveConfiguration(user);
      this.updateTimer();
    });
    return result;
  }

  /** DeletePersistentSubscription: consumers dropped, configuration entry removed, checkpoint and parked streams soft-deleted. */
  delete(group: string, user: string): RpcStatus | undefined {
    let result: RpcStatus | undefined;
    this.run(() => {
      const existing = this.groups.get(group);
      if (!existing) {
        result = persistentSubscriptionDoesNotExist(ALL, group);
        return;
      }
      this.guard(existing, () => existing.shutdown());
      this.groups.delete(group);
      this.config = this.config.filter((entry) => entry.settings.group !== group);
      existing.delete();
      this.saveConfiguration(user);
      this.updateTimer();
    });
    return result;
  }

  replayParked(group: string, stopAt: bigint | undefined): RpcStatus | undefined {
    let result: RpcStatus | undefined;
    this.run(() => {
      if (stopAt !== undefined && stopAt < 0n) {
        result = persistentSubscriptionFailed(ALL, group, 'Cannot stop replaying parked message at a negative version.');
        return;
      }
      const existing = this.groups.get(group);
      if (!existing) {
        result = persistentSubscriptionDoesNotExist(ALL, group);
        return;
      }
      this.guard(existing, () => existing.retryParkedMessages(stopAt));
    });
    return result;
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Statistics

  info(group: string): pb.SubscriptionInfo | RpcStatus {
    let result: pb.SubscriptionInfo | RpcStatus = persistentSubscriptionDoesNotExist(ALL, group);
    this.run(() => {
      const existing = this.groups.get(group);
      if (existing) result = subscriptionInfo(existing.settings, existing.statistics());
    });
    return result;
  }

  list(): pb.SubscriptionInfo[] | undefined {
    let result: pb.SubscriptionInfo[] | undefined;
    this.run(() => {
      if (!this.allTopic) return;
      result = [...this.groups.values()].map((g) => subscriptionInfo(g.settings, g.statistics()));
    });
    return result;
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Consumers

  /** ConnectToPersistentSubscription: NotFound, SubscriberMaxCountReached, or the confirmation then the consumer joins. */
  connect(
    group: string,
    bufferSize: number,
    call: { correlationId: string; connectionName: string; username: string; structuredIds: boolean },
    io: { confirm(subscriptionId: string): void; write(response: pb.ReadResp): void; end(status: RpcStatus): void; ended(): boolean },
  ): void {
    this.run(() => {
      const existing = this.groups.get(group);
      if (!this.allTopic || !existing) {
        io.end(persistentSubscriptionDoesNotExist(ALL, group));
        return;
      }
      if (existing.hasReachedMaxClientCount) {
        io.end(maximumSubscribersReached(ALL, group));
        return;
      }
      io.confirm(existing.subscriptionId);
      this.consumerCounter += 1;
      const consumerId = `consumer-${this.consumerCounter}`;
      const deliveries = this.deliveryLog.get(group) ?? [];
      this.deliveryLog.set(group, deliveries);
      // Once its call has ended a consumer is no longer this service's to drop or end.
      const end = (status: RpcStatus) => {
        this.calls.delete(call.correlationId);
        io.end(status);
      };
      const connection: ConsumerConnection = {
        send: (message: Message) => {
          deliveries.push(delivery(consumerId, call.connectionName, message));
          if (!io.ended()) io.write(readEventResponse(message, call.structuredIds));
        },
        dropped: () => end(persistentSubscriptionDropped(ALL, group)),
      };
      this.calls.set(call.correlationId, { correlationId: call.correlationId, group, consumerId, end, ended: io.ended });
      const client = new PersistentClient(call.correlationId, consumerId, call.connectionName, '', call.username, bufferSize, connection);
      this.guard(existing, () => existing.addClient(client));
      this.updateTimer();
    });
  }

  /** The call ended (cancelled by the client, or the connection broke): UnsubscribeFromStream -> RemoveClientByCorrelationId on every group. */
  disconnected(correlationId: string): void {
    this.run(() => {
      this.calls.delete(correlationId);
      for (const group of this.groups.values()) this.guard(group, () => group.removeClientByCorrelationId(correlationId, true));
      this.updateTimer();
    });
  }

  ack(group: string, ids: string[]): void {
    this.run(() => {
      const existing = this.groups.get(group);
      if (existing) this.guard(existing, () => existing.acknowledgeMessagesProcessed(ids));
    });
  }

  nack(group: string, ids: string[], action: NakAction, reason: string): void {
    this.run(() => {
      const existing = this.groups.get(group);
      if (existing) this.guard(existing, () => existing.notAcknowledgeMessagesProcessed(ids, action, reason));
    });
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Control

  control(): PersistentSubscriptionsControl {
    return {
      dropConsumers: (group) => {
        const dropped = [...this.calls.values()].filter((c) => (group === undefined || c.group === group) && !c.ended());
        for (const call of dropped) {
          call.end(connectionDropped());
          this.disconnected(call.correlationId);
        }
        return dropped.length;
      },
      restart: (options) => this.restart(options?.as ?? 'server'),
      expireInFlight: (group) => this.tick(true, group),
      tick: () => this.tick(false, undefined),
      autoTick: (enabled) => {
        this.autoTick = enabled;
        this.updateTimer();
      },
      groupInfo: (group) => {
        const existing = this.groups.get(group);
        if (!existing) return undefined;
        const snapshot = existing.snapshot();
        return {
          group,
          settings: existing.settings,
          status: snapshot.status,
          consumers: existing.clients.all().map((c) => ({
            consumerId: c.consumerId,
            connectionName: c.connectionName,
            maxInFlight: c.maxInFlight,
            inFlight: c.inFlight,
            availableSlots: c.availableSlots,
          })),
          inFlight: snapshot.inFlight,
          retryQueue: snapshot.retryQueue,
          lastCheckpoint: snapshot.lastCheckpoint,
          parkedMessageCount: existing.parkedMessageCount,
          anomalies: [...existing.anomalies, ...this.serviceAnomalies],
        };
      },
      deliveries: (group) => [...(this.deliveryLog.get(group) ?? [])],
      denyAccess: (operations) => {
        this.denied = new Set(operations);
      },
      errors: () => [...this.emulatorErrors],
      close: () => this.close(),
    };
  }
}

function delivery(consumerId: string, connectionName: string, message: Message): Delivery {
  const { event, link, position } = message.resolved;
  return {
    consumerId,
    connectionName,
    messageId: message.eventId,
    ...(event ? { event: { stream: event.stream, revision: event.revision, eventId: event.eventId, type: event.type } } : {}),
    ...(link ? { link: { stream: link.stream, revision: link.revision, eventId: link.eventId } } : {}),
    retryCount: message.retryCount,
    ...(position ? { commitPosition: position.commit } : {}),
    replayed: message.isReplayedEvent,
  };
}

/**
 * PersistentSubscriptions.Info.cs ParseSubscriptionInfo over PersistentSubscriptionStats.GetStatistics. CheckPointAfter
 * of 0 is TimeSpan.MaxValue, whose milliseconds cast to int give int.MinValue on .NET 8 x64.
 */
function subscriptionInfo(settings: GroupSettings, stats: GroupStatistics): pb.SubscriptionInfo {
  const info = new pb.SubscriptionInfo();
  info.setEventSource(ALL);
  info.setGroupName(settings.group);
  info.setStatus(stats.status);
  for (const c of stats.connections) {
    const connection = new pb.SubscriptionInfo.ConnectionInfo();
    connection.setFrom(c.from);
    connection.setUsername(c.username);
    connection.setAverageItemsPerSecond(c.averageItemsPerSecond);
    connection.setTotalItems(String(c.totalItems));
    connection.setCountSinceLastMeasurement(String(c.countSinceLastMeasurement));
    connection.setAvailableSlots(c.availableSlots);
    connection.setInFlightMessages(c.inFlightMessages);
    connection.setConnectionName(c.connectionName);
    info.addConnections(connection);
  }
  info.setAveragePerSecond(stats.averagePerSecond);
  info.setTotalItems(String(stats.totalItems));
  info.setCountSinceLastMeasurement(String(stats.countSinceLastMeasurement));
  info.setLastCheckpointedEventPosition(stats.lastCheckpointedEventPosition);
  info.setLastKnownEventPosition(stats.lastKnownEventPosition);
  info.setResolveLinkTos(settings.resolveLinkTos);
  info.setStartFrom(formatPosition(settings.startFrom));
  info.setMessageTimeoutMilliseconds(settings.messageTimeoutMs);
  info.setExtraStatistics(settings.extraStatistics);
  info.setMaxRetryCount(settings.maxRetryCount);
  info.setLiveBufferSize(settings.liveBufferSize);
  info.setBufferSize(settings.historyBufferSize);
  info.setReadBatchSize(settings.readBatchSize);
  info.setCheckPointAfterMilliseconds(settings.checkPointAfterMs === 0 ? -2147483648 : settings.checkPointAfterMs);
  info.setMinCheckPointCount(settings.minCheckPointCount);
  info.setMaxCheckPointCount(settings.maxCheckPointCount);
  info.setReadBufferCount(stats.readBufferCount);
  info.setLiveBufferCount(String(stats.liveBufferCount));
  info.setRetryBufferCount(stats.retryBufferCount);
  info.setTotalInFlightMessages(stats.totalInFlightMessages);
  info.setOutstandingMessagesCount(stats.outstandingMessagesCount);
  info.setNamedConsumerStrategy(settings.consumerStrategy);
  info.setMaxSubscriberCount(settings.maxSubscriberCount);
  info.setParkedMessageCount(String(stats.parkedMessageCount));
  return info;
}

const NAK_ACTIONS = new Map<number, NakAction>([
  [pb.ReadReq.Nack.Action.UNKNOWN, 'unknown'],
  [pb.ReadReq.Nack.Action.PARK, 'park'],
  [pb.ReadReq.Nack.Action.RETRY, 'retry'],
  [pb.ReadReq.Nack.Action.SKIP, 'skip'],
  [pb.ReadReq.Nack.Action.STOP, 'stop'],
]);

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

/**
 * Registers event_store.client.persistent_subscriptions.PersistentSubscriptions on `server`, over `log` (groups in
 * the log's $persistentSubscriptionConfig are loaded at once), and returns the control for tests.
 */
export function registerPersistentSubscriptions(server: grpc.Server, log: EmulatedLog): PersistentSubscriptionsControl {
  const service = new PersistentSubscriptionService(log);

  const unary =
    <Req, Res>(operation: PersistentOperation, handle: (request: Req, metadata: grpc.Metadata) => Res | RpcStatus): Unary<Req, Res> =>
    (call, callback) => {
      if (service.isDenied(operation)) {
        callback(accessDenied());
        return;
      }
      let result: Res | RpcStatus;
      try {
        result = handle(call.request, call.metadata);
      } catch (err) {
        console.error('esdb emulator (persistent subscriptions) error:', err);
        result = unhandledException();
      }
      if (result && typeof result === 'object' && 'code' in result && 'details' in result) callback(result as RpcStatus);
      else callback(null, result as Res);
    };

  const implementation: grpc.UntypedServiceImplementation = {
    create: unary<pb.CreateReq, pb.CreateResp>(
      'create',
      (request, metadata) => service.create(request, username(metadata)) ?? new pb.CreateResp(),
    ),
    update: unary<pb.UpdateReq, pb.UpdateResp>(
      'update',
      (request, metadata) => service.update(request, username(metadata)) ?? new pb.UpdateResp(),
    ),
    delete: unary<pb.DeleteReq, pb.DeleteResp>('delete', (request, metadata) => {
      const options = request.getOptions();
      if (!options) return unhandledException();
      if (options.getStreamOptionCase() !== pb.DeleteReq.Options.StreamOptionCase.ALL)
        return notEmulated('a persistent subscription to a stream');
      return service.delete(options.getGroupName(), username(metadata)) ?? new pb.DeleteResp();
    }),
    getInfo: unary<pb.GetInfoReq, pb.GetInfoResp>('getInfo', (request) => {
      const options = request.getOptions();
      if (!options) return unhandledException();
      if (options.getStreamOptionCase() !== pb.GetInfoReq.Options.StreamOptionCase.ALL)
        return notEmulated('a persistent subscription to a stream');
      const info = service.info(options.getGroupName());
      if (!(info instanceof pb.SubscriptionInfo)) return info;
      const response = new pb.GetInfoResp();
      response.setSubscriptionInfo(info);
      return response;
    }),
    list: unary<pb.ListReq, pb.ListResp>('list', (request) => {
      const options = request.getOptions();
      if (!options) return unhandledException();
      const forStream = options.getListOptionCase() === pb.ListReq.Options.ListOptionCase.LIST_FOR_STREAM;
      if (forStream && options.getListForStream()?.getStreamOptionCase() !== pb.ListReq.StreamOption.StreamOptionCase.ALL) {
        return notEmulated('a persistent subscription to a stream');
      }
      const infos = service.list();
      const response = new pb.ListResp();
      if (!infos) {
        // GetAllPersistentSubscriptionStats answers an empty list; GetStreamPersistentSubscriptionStats NotFound.
        return forStream ? persistentSubscriptionDoesNotExist(ALL, '') : response;
      }
      response.setSubscriptionsList(infos);
      return response;
    }),
    replayParked: unary<pb.ReplayParkedReq, pb.ReplayParkedResp>('replayParked', (request) => {
      const options = request.getOptions();
      if (!options) return unhandledException();
      if (options.getStreamOptionCase() !== pb.ReplayParkedReq.Options.StreamOptionCase.ALL)
        return notEmulated('a persistent subscription to a stream');
      const stopAt =
        options.getStopAtOptionCase() === pb.ReplayParkedReq.Options.StopAtOptionCase.STOP_AT ? BigInt(options.getStopAt()) : undefined;
      return service.replayParked(options.getGroupName(), stopAt) ?? new pb.ReplayParkedResp();
    }),
    restartSubsystem: unary<Empty, Empty>('restartSubsystem', () => {
      service.restart('subsystem');
      return new Empty();
    }),
    read: (call: grpc.ServerDuplexStream<pb.ReadReq, pb.ReadResp>) => {
      const correlationId = crypto.randomUUID();
      let ended = false;
      let subscribed: string | undefined;
      let pumping = true;
      const end = (status: RpcStatus) => {
        if (ended) return;
        ended = true;
        call.emit('error', status);
      };
      call.on('error', () => {
        ended = true;
      });
      call.on('cancelled', () => {
        ended = true;
        if (subscribed !== undefined) service.disconnected(correlationId);
      });
      call.on('end', () => {
        // The client closed its side: no more acks, but events keep coming until the call is cancelled.
        if (subscribed === undefined && !ended) {
          ended = true;
          call.end();
        }
      });
      call.on('data', (request: pb.ReadReq) => {
        if (ended) return;
        if (subscribed === undefined) {
          const options = request.getOptions();
          if (!options) {
            end(unhandledException()); // "throw new InvalidOperationException()"
            return;
          }
          if (service.isDenied('read')) {
            end(accessDenied());
            return;
          }
          if (options.getStreamOptionCase() !== pb.ReadReq.Options.StreamOptionCase.ALL) {
            end(notEmulated('a persistent subscription to a stream'));
            return;
          }
          const group = options.getGroupName();
          subscribed = group;
          service.connect(
            group,
            options.getBufferSize(),
            {
              correlationId,
              connectionName: headerValue(call.metadata, 'connection-name') ?? '<unknown>',
              username: username(call.metadata),
              structuredIds: options.getUuidOption()?.getContentCase() !== pb.ReadReq.Options.UUIDOption.ContentCase.STRING,
            },
            {
              confirm: (subscriptionId) => {
                if (!ended) call.write(confirmationResponse(subscriptionId));
              },
              write: (response) => {
                if (!ended) call.write(response);
              },
              end: (status) => end(status),
              ended: () => ended,
            },
          );
          return;
        }
        if (!pumping) return;
        const subscriptionGroup = subscribed;
        switch (request.getContentCase()) {
          case pb.ReadReq.ContentCase.ACK:
            service.ack(subscriptionGroup, (request.getAck() as pb.ReadReq.Ack).getIdsList().map(uuidToString));
            return;
          case pb.ReadReq.ContentCase.NACK: {
            const nack = request.getNack() as pb.ReadReq.Nack;
            const action = NAK_ACTIONS.get(nack.getAction());
            if (!action) {
              pumping = false; // InvalidArgument thrown inside PumpRequestStream, which swallows it: no more acks are read
              return;
            }
            service.nack(subscriptionGroup, nack.getIdsList().map(uuidToString), action, nack.getReason());
            return;
          }
          default:
            pumping = false;
        }
      });
    },
  };

  server.addService(PersistentSubscriptionsService, implementation);
  return service.control();
}
