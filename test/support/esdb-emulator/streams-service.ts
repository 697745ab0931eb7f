/**
 * `event_store.client.streams.Streams` of the EventStoreDB 24.10 emulator: Append, BatchAppend,
 * Read (stream and $all reads, catch-up subscriptions to a stream and to $all, filtered or not),
 * Delete and Tombstone. TEST-ONLY.
 *
 * It follows the server's C# source at tag v24.10.0 of EventStore/EventStore; each rule cites the
 * file it follows (paths relative to src/EventStore.Core/). The commit rules live in ./log.ts.
 */
import * as grpc from '@grpc/grpc-js';
import { StreamsService, type IStreamsServer } from '@eventstore/db-client/generated/streams_grpc_pb';
import {
  AppendReq,
  AppendResp,
  BatchAppendReq,
  BatchAppendResp,
  DeleteReq,
  DeleteResp,
  ReadReq,
  ReadResp,
  TombstoneReq,
  TombstoneResp,
} from '@eventstore/db-client/generated/streams_pb';
import {
  AllStreamPosition,
  BadRequest,
  Empty as SharedEmpty,
  MaximumAppendSizeExceeded,
  StreamDeleted,
  StreamIdentifier,
  UUID,
  WrongExpectedVersion as WrongExpectedVersionDetails,
} from '@eventstore/db-client/generated/shared_pb';
import { Status } from '@eventstore/db-client/generated/status_pb';
import { Any } from 'google-protobuf/google/protobuf/any_pb';
import { Empty as ProtoEmpty } from 'google-protobuf/google/protobuf/empty_pb';
import {
  allowedInAll,
  DELETED_STREAM,
  eventSizeOnDisk,
  type AppendOutcome,
  type EmulatedLog,
  type Expected,
  type LogRecord,
  type ProposedEvent,
} from './log';

/** ClusterVNodeOptions.cs `MaxAppendSize { get; init; } = 1_024 * 1_024`. */
export const DEFAULT_MAX_APPEND_SIZE = 1_048_576;

/** Services/Transport/Enumerators/Enumerator.cs `ReadBatchSize = 32` (page size, default filter search window). */
export const READ_BATCH_SIZE = 32;

// -------------------------------------------------------------------------------------------------
// State shared with server.ts (controls for tests)

export interface InjectedFault {
  code: grpc.status;
  details: string;
  /** true: the append IS committed, then the call fails (the client cannot know it was written). */
  afterCommit: boolean;
}

export interface FaultPlan {
  remaining: number;
  fault: InjectedFault;
}

export type TfPosition = { commit: bigint; prepare: bigint };

export interface ServedRead {
  kind: 'read' | 'subscription';
  target: 'all' | 'stream';
  stream?: string;
  direction: 'forwards' | 'backwards';
  from: 'start' | 'end' | TfPosition | bigint;
  /** The count the client asked for (reads only). */
  maxCount?: bigint;
  resolveLinks: boolean;
  filter?: { on: 'stream' | 'event_type'; prefixes: string[]; regex?: string; maxSearchWindow: number; checkpointInterval: number };
  /** Events sent so far (records of $all / the stream, links counted once). */
  returned: number;
  /** Checkpoint messages sent (filtered $all subscriptions). */
  checkpoints: TfPosition[];
  /** How it ended, when it did: 'ok', 'stream_not_found', or the gRPC error details. */
  outcome?: string;
}

export interface ServedAppend {
  rpc: 'Append' | 'BatchAppend';
  stream: string;
  expected: Expected;
  eventIds: string[];
  outcome: AppendOutcome['kind'] | 'injected_fault' | 'maximum_append_size_exceeded' | 'bad_request';
}

export interface ActiveSubscription {
  served: ServedRead;
  drop(error: RpcError): void;
}

export interface StreamsServiceState {
  maxAppendSize: number;
  appendFaults?: FaultPlan;
  readFaults?: FaultPlan;
  readsServed: ServedRead[];
  appendsServed: ServedAppend[];
  subscriptions: Set<ActiveSubscription>;
}

export function createStreamsServiceState(options: { maxAppendSize?: number } = {}): StreamsServiceState {
  return {
    maxAppendSize: options.maxAppendSize ?? DEFAULT_MAX_APPEND_SIZE,
    readsServed: [],
    appendsServed: [],
    subscriptions: new Set(),
  };
}

export function streamsDefinition(): grpc.ServiceDefinition {
  return StreamsService as unknown as grpc.ServiceDefinition;
}

// -------------------------------------------------------------------------------------------------
// gRPC errors (Services/Transport/Grpc/RpcExceptions.cs, Constants.cs)

export interface RpcError extends Partial<grpc.StatusObject> {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
}

export function rpcError(code: grpc.status, details: string, trailers: Record<string, string> = {}): RpcError {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(trailers)) metadata.set(key, value);
  return { code, details, metadata };
}

const errors = {
  streamDeleted: (stream: string) =>
    rpcError(grpc.status.FAILED_PRECONDITION, `Event stream '${stream}' is deleted.`, {
      exception: 'stream-deleted',
      'stream-name': stream,
    }),
  maxAppendSizeExceeded: (max: number) =>
    rpcError(grpc.status.INVALID_ARGUMENT, `Maximum Append Size of ${max} Exceeded.`, {
      exception: 'maximum-append-size-exceeded',
      'maximum-append-size': String(max),
    }),
  requiredMetadataPropertyMissing: (property: string) =>
    rpcError(grpc.status.INVALID_ARGUMENT, `Required Metadata Property '${property}' is missing`, {
      exception: 'missing-required-metadata-property',
      'required-metadata-properties': 'type,content-type',
    }),
  wrongExpectedVersion: (operation: string, stream: string, expected: bigint, actual: bigint) =>
    rpcError(
      grpc.status.FAILED_PRECONDITION,
      `${operation} failed due to WrongExpectedVersion. Stream: ${stream}, Expected version: ${expected}, Actual version: ${actual}`,
      {
        exception: 'wrong-expected-version',
        'stream-name': stream,
        'expected-version': String(expected),
        'actual-version': String(actual),
      },
    ),
  /** What ASP.NET Core gRPC answers for an exception the handler did not map. */
  unhandled: () => rpcError(grpc.status.UNKNOWN, 'Exception was thrown by handler.'),
  invalidArgument: (details: string) => rpcError(grpc.status.INVALID_ARGUMENT, details),
  invalidPosition: () => rpcError(grpc.status.INVALID_ARGUMENT, 'Trying to read from an invalid position.'),
  unknownResult: (type: string, result: string) => rpcError(grpc.status.UNKNOWN, `Unexpected ${type}: ${result}`),
};

class HandlerError extends Error {
  constructor(readonly rpc: RpcError) {
    super(rpc.details);
  }
}

// -------------------------------------------------------------------------------------------------
// Conversions

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** ExpectedVersion constants (Core/Data/ExpectedVersion.cs): Any -2, NoStream -1, StreamExists -4. */
function expectedVersionNumber(expected: Expected): bigint {
  switch (expected.kind) {
    case 'any':
      return -2n;
    case 'no_stream':
      return -1n;
    case 'stream_exists':
      return -4n;
    case 'revision':
      return expected.revision;
  }
}

/**
 * Services/Transport/Grpc/Uuid.cs FromDto: the string form goes through Guid.Parse (any case,
 * with or without hyphens/braces; written back lower-case), the structured form is the canonical
 * big-endian most/least significant halves.
 */
export function uuidFromDto(dto: UUID | undefined): string {
  if (!dto) throw new HandlerError(errors.unhandled());
  if (dto.hasStructured()) {
    const s = dto.getStructured()!;
    const hex =
      BigInt.asUintN(64, BigInt(s.getMostSignificantBits())).toString(16).padStart(16, '0') +
      BigInt.asUintN(64, BigInt(s.getLeastSignificantBits())).toString(16).padStart(16, '0');
    return formatGuid(hex);
  }
  const raw = dto.getString().trim();
  const stripped = raw.replace(/^[{(]/, '').replace(/[})]$/, '').replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(stripped)) throw new HandlerError(errors.unhandled());
  return formatGuid(stripped.toLowerCase());
}

function formatGuid(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function uuidToDto(id: string, structured: boolean): UUID {
  const dto = new UUID();
  if (!structured) {
    dto.setString(id);
    return dto;
  }
  const hex = id.replace(/-/g, '');
  const s = new UUID.Structured();
  s.setMostSignificantBits(BigInt.asIntN(64, BigInt(`0x${hex.slice(0, 16)}`)).toString());
  s.setLeastSignificantBits(BigInt.asIntN(64, BigInt(`0x${hex.slice(16)}`)).toString());
  dto.setStructured(s);
  return dto;
}

function streamNameOf(identifier: StreamIdentifier | undefined): string {
  const name = identifier ? utf8Decoder.decode(identifier.getStreamName_asU8()) : '';
  // Ensure.NotNullOrEmpty(streamName) in the write/read paths -> unhandled exception.
  if (name === '') throw new HandlerError(errors.unhandled());
  return name;
}

function streamIdentifier(name: string): StreamIdentifier {
  const id = new StreamIdentifier();
  id.setStreamName(utf8.encode(name));
  return id;
}

/** DateTime.ToTicksSinceEpoch(): 100 ns ticks since 1970-01-01 (Streams.Read.cs `created`). */
function ticksSinceEpoch(date: Date): string {
  return (BigInt(date.getTime()) * 10_000n).toString();
}

/** Streams.Read.cs ConvertToRecordedEvent; self-committed records carry their own position (Data/ResolvedEvent.cs CalculatePosition). */
function recordedEvent(record: LogRecord, structuredIds: boolean): ReadResp.ReadEvent.RecordedEvent {
  const e = new ReadResp.ReadEvent.RecordedEvent();
  e.setId(uuidToDto(record.eventId, structuredIds));
  e.setStreamIdentifier(streamIdentifier(record.stream));
  e.setStreamRevision(record.revision.toString());
  e.setCommitPosition(record.position.commit.toString());
  e.setPreparePosition(record.position.prepare.toString());
  const map = e.getMetadataMap();
  map.set('type', record.type);
  map.set('created', ticksSinceEpoch(record.created));
  map.set('content-type', record.contentType === 'application/json' ? 'application/json' : 'application/octet-stream');
  e.setData(record.data);
  e.setCustomMetadata(record.metadata);
  return e;
}

/**
 * A ReadEvent for one record, resolving a '$>' link when asked
 * (Services/Storage/StorageReaderWorker.cs ResolveLinkToEvent, Streams.Read.cs ConvertToReadEvent):
 * - not a link, or resolveLinks false: `event` = the record itself;
 * - a link whose payload does not parse: returned unresolved (`event` = the link);
 * - a link whose target cannot be read (missing, truncated, deleted): `link` only, no `event`;
 * - else `event` = target (its own position), `link` = the link.
 * `commit_position` is the position of the original record (the link when there is one).
 */
function readEventOf(log: EmulatedLog, record: LogRecord, resolveLinks: boolean, structuredIds: boolean): ReadResp.ReadEvent {
  const readEvent = new ReadResp.ReadEvent();
  if (resolveLinks && record.type === '$>' && log.linkTarget(record)) {
    const target = log.resolveLink(record);
    if (target) readEvent.setEvent(recordedEvent(target, structuredIds));
    readEvent.setLink(recordedEvent(record, structuredIds));
  } else {
    readEvent.setEvent(recordedEvent(record, structuredIds));
  }
  readEvent.setCommitPosition(record.position.commit.toString());
  return readEvent;
}

function eventResponse(log: EmulatedLog, record: LogRecord, resolveLinks: boolean, structuredIds: boolean): ReadResp {
  const resp = new ReadResp();
  resp.setEvent(readEventOf(log, record, resolveLinks, structuredIds));
  return resp;
}

/** Position.FromInt64: -1 -> ulong.MaxValue (Services/Transport/Common/Position.cs). */
const ULONG_MAX = 0xffffffffffffffffn;
function toWirePosition(p: TfPosition): TfPosition {
  return { commit: p.commit === -1n ? ULONG_MAX : p.commit, prepare: p.prepare === -1n ? ULONG_MAX : p.prepare };
}

/** TFPos ordering: commit, then prepare. */
function compareTf(a: TfPosition, b: TfPosition): number {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1;
  if (a.prepare !== b.prepare) return a.prepare < b.prepare ? -1 : 1;
  return 0;
}

// -------------------------------------------------------------------------------------------------
// Filters (Services/Storage/ReaderIndex/EventFilter.cs, Streams.Read.cs ConvertToEventFilter)

interface ReadFilter {
  on: 'stream' | 'event_type';
  prefixes: string[];
  regex?: RegExp;
  regexSource?: string;
  allows(record: LogRecord): boolean;
}

function filterOf(options: ReadReq.Options.FilterOptions): ReadFilter {
  const on = options.hasStreamIdentifier() ? 'stream' : options.hasEventType() ? 'event_type' : undefined;
  if (!on) throw new HandlerError(errors.invalidArgument(`'${String(options)}' is not a valid FilterOptions`));
  const expression = (on === 'stream' ? options.getStreamIdentifier() : options.getEventType())!;
  const regexSource = expression.getRegex();
  const prefixes = expression.getPrefixList();
  // Regex when given, else prefixes (`string.IsNullOrEmpty(filter.EventType.Regex) ? Prefixes : Regex`).
  const regex = regexSource ? new RegExp(regexSource) : undefined;
  const field = (record: LogRecord) => (on === 'stream' ? record.stream : record.type);
  return {
    on,
    prefixes,
    regex,
    regexSource: regexSource || undefined,
    // every strategy is `(!_isAllStream || DefaultAllFilter.IsEventAllowed(e)) && <match>`; $all only here.
    allows: (record) => allowedInAll(record) && (regex ? regex.test(field(record)) : prefixes.some((p) => field(record).startsWith(p))),
  };
}

// -------------------------------------------------------------------------------------------------
// Writing to a server stream with back-pressure

class Outbox {
  closed = false;
  #waiters: (() => void)[] = [];

  constructor(private readonly call: grpc.ServerWritableStream<ReadReq, ReadResp>) {
    const close = () => {
      this.closed = true;
      for (const wake of this.#waiters.splice(0)) wake();
    };
    call.on('cancelled', close);
    call.on('close', close);
    call.on('finish', close);
    call.on('drain', () => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /** Resolves false when the call is gone. */
  async write(message: ReadResp): Promise<boolean> {
    if (this.closed || this.call.cancelled) return false;
    if (!this.call.write(message)) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return !this.closed && !this.call.cancelled;
  }

  /** Waits until `wake()` (or the call closes). */
  wait(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.call.end();
  }

  fail(error: RpcError): void {
    if (this.closed) return;
    this.closed = true;
    this.call.emit('error', error);
  }
}

// -------------------------------------------------------------------------------------------------
// The service

export function createStreamsService(log: EmulatedLog, state: StreamsServiceState): IStreamsServer {
  /** Takes one planned fault if any. */
  const takeFault = (kind: 'appendFaults' | 'readFaults'): InjectedFault | undefined => {
    const plan = state[kind];
    if (!plan || plan.remaining <= 0) return undefined;
    plan.remaining -= 1;
    if (plan.remaining === 0) state[kind] = undefined;
    return plan.fault;
  };

  const faultError = (fault: InjectedFault) => rpcError(fault.code, fault.details);

  /** Commits through the log, honouring an injected fault; returns the outcome or the fault. */
  const commit = (
    rpc: ServedAppend['rpc'],
    stream: string,
    expected: Expected,
    events: ProposedEvent[],
  ): { outcome: AppendOutcome } | { fault: InjectedFault } => {
    const served: ServedAppend = { rpc, stream, expected, eventIds: events.map((e) => e.eventId), outcome: 'success' };
    state.appendsServed.push(served);
    const fault = takeFault('appendFaults');
    if (fault && !fault.afterCommit) {
      served.outcome = 'injected_fault';
      return { fault };
    }
    const outcome = log.append(stream, expected, events);
    served.outcome = fault ? 'injected_fault' : outcome.kind;
    return fault ? { fault } : { outcome };
  };

  return {
    // ---------------------------------------------------------------------------------------------
    // Append: client streaming, options first then proposed messages (Services/Transport/Grpc/Streams.Append.cs)
    append(call, callback) {
      let options: AppendReq.Options | undefined;
      let expected: Expected | undefined;
      let stream = '';
      const events: ProposedEvent[] = [];
      let size = 0;
      let done = false;
      const finish = (error: RpcError | null, response?: AppendResp) => {
        if (done) return;
        done = true;
        if (error) callback(error);
        else callback(null, response);
      };

      call.on('data', (request: AppendReq) => {
        if (done) return;
        try {
          if (!options) {
            // `if (requestStream.Current.ContentCase != Options) throw new InvalidOperationException()`
            if (request.getContentCase() !== AppendReq.ContentCase.OPTIONS) throw new HandlerError(errors.unhandled());
            options = request.getOptions()!;
            stream = streamNameOf(options.getStreamIdentifier());
            expected = expectedOfAppend(options);
            return;
          }
          if (request.getContentCase() !== AppendReq.ContentCase.PROPOSED_MESSAGE) {
            throw new HandlerError(errors.unhandled());
          }
          const message = request.getProposedMessage()!;
          const data = message.getData_asU8();
          const metadata = message.getCustomMetadata_asU8();
          const type = message.getMetadataMap().get('type');
          if (type === undefined) throw new HandlerError(errors.requiredMetadataPropertyMissing('type'));
          const contentType = message.getMetadataMap().get('content-type');
          if (contentType === undefined) throw new HandlerError(errors.requiredMetadataPropertyMissing('content-type'));
          // `size += Event.SizeOnDisk(...); if (size > _maxAppendSize) throw MaxAppendSizeExceeded`:
          // checked as each message arrives, so the call fails before the client has sent them all.
          size += eventSizeOnDisk(type, data, metadata);
          if (size > state.maxAppendSize) {
            state.appendsServed.push({
              rpc: 'Append',
              stream,
              expected: expected!,
              eventIds: events.map((e) => e.eventId),
              outcome: 'maximum_append_size_exceeded',
            });
            throw new HandlerError(errors.maxAppendSizeExceeded(state.maxAppendSize));
          }
          events.push(proposedEvent(message.getId(), type, contentType, data, metadata));
        } catch (error) {
          finish(error instanceof HandlerError ? error.rpc : errors.unhandled());
        }
      });

      call.on('end', () => {
        if (done) return;
        // `if (!await requestStream.MoveNext()) throw new InvalidOperationException()`
        if (!options || !expected) return finish(errors.unhandled());
        const result = commit('Append', stream, expected, events);
        if ('fault' in result) return finish(faultError(result.fault));
        const outcome = result.outcome;
        const response = new AppendResp();
        switch (outcome.kind) {
          case 'success': {
            const success = new AppendResp.Success();
            if (outcome.currentRevision === -1n) success.setNoStream(new SharedEmpty());
            else success.setCurrentRevision(outcome.currentRevision.toString());
            if (outcome.position) {
              const position = new AppendResp.Position();
              position.setCommitPosition(outcome.position.commit.toString());
              position.setPreparePosition(outcome.position.prepare.toString());
              success.setPosition(position);
            } else {
              success.setNoPosition(new SharedEmpty());
            }
            response.setSuccess(success);
            return finish(null, response);
          }
          case 'wrong_expected_version': {
            // A response message, not an error status (Streams.Append.cs HandleWriteEventsCompleted).
            response.setWrongExpectedVersion(appendWrongExpectedVersion(outcome.expected, outcome.currentRevision));
            return finish(null, response);
          }
          case 'stream_deleted':
            return finish(errors.streamDeleted(stream));
        }
      });
      call.on('error', () => {
        done = true;
      });
    },

    // ---------------------------------------------------------------------------------------------
    // BatchAppend: bidi, requests keyed by correlation id (Services/Transport/Grpc/Streams.BatchAppend.cs)
    batchAppend(call) {
      interface Pending {
        stream: string;
        expected: Expected;
        events: ProposedEvent[];
        size: number;
      }
      const pending = new Map<string, Pending>();
      let failed = false;

      const respond = (request: BatchAppendReq, stream: string | undefined, fill: (resp: BatchAppendResp) => void) => {
        const response = new BatchAppendResp();
        const correlation = request.getCorrelationId();
        if (correlation) response.setCorrelationId(correlation);
        if (stream !== undefined) response.setStreamIdentifier(streamIdentifier(stream));
        fill(response);
        call.write(response);
      };

      call.on('data', (request: BatchAppendReq) => {
        if (failed) return;
        let streamForError: string | undefined;
        try {
          const correlationId = uuidFromDto(request.getCorrelationId());
          const options = request.getOptions();
          if (options) {
            streamForError = streamNameOf(options.getStreamIdentifier());
            // pendingWrites.AddOrUpdate(correlationId, FromOptions, (_, existing) => existing)
            if (!pending.has(correlationId)) {
              pending.set(correlationId, {
                stream: streamForError,
                expected: expectedOfBatch(options),
                events: [],
                size: 0,
              });
            }
          }
          const write = pending.get(correlationId);
          if (!write) return;
          streamForError = write.stream;
          for (const message of request.getProposedMessagesList()) {
            // FromProposedMessage: `proposedMessage.Metadata[Type]` throws when missing -> BadRequest(ex.Message)
            const type = message.getMetadataMap().get('type');
            const contentType = message.getMetadataMap().get('content-type');
            if (type === undefined || contentType === undefined) {
              const missing = type === undefined ? 'type' : 'content-type';
              throw new BatchBadRequest(`The given key '${missing}' was not present in the dictionary.`);
            }
            const data = message.getData_asU8();
            const metadata = message.getCustomMetadata_asU8();
            write.size += eventSizeOnDisk(type, data, metadata);
            write.events.push(proposedEvent(message.getId(), type, contentType, data, metadata));
          }
          if (write.size > state.maxAppendSize) {
            // the write is dropped with MaximumAppendSizeExceeded; later chunks of it are ignored
            pending.delete(correlationId);
            state.appendsServed.push({
              rpc: 'BatchAppend',
              stream: write.stream,
              expected: write.expected,
              eventIds: write.events.map((e) => e.eventId),
              outcome: 'maximum_append_size_exceeded',
            });
            respond(request, write.stream, (resp) =>
              resp.setError(
                statusOf(grpc.status.INVALID_ARGUMENT, 'MaximumAppendSizeExceeded', 'event_store.client.MaximumAppendSizeExceeded', () => {
                  const details = new MaximumAppendSizeExceeded();
                  details.setMaxappendsize(state.maxAppendSize);
                  return details;
                }),
              ),
            );
          }
          if (!request.getIsFinal()) return;
          if (!pending.delete(correlationId)) return;

          const result = commit('BatchAppend', write.stream, write.expected, write.events);
          if ('fault' in result) {
            // a transport-level failure of the whole bidi call (what a dropped connection looks like)
            failed = true;
            call.emit('error', faultError(result.fault));
            return;
          }
          const outcome = result.outcome;
          respond(request, write.stream, (resp) => {
            switch (outcome.kind) {
              case 'success': {
                // Services/Transport/Grpc/BatchAppendResp.cs Success.Completed
                const success = new BatchAppendResp.Success();
                if (outcome.currentRevision >= 0n) success.setCurrentRevision(outcome.currentRevision.toString());
                else success.setNoStream(new ProtoEmpty());
                if (outcome.position) {
                  const position = new AllStreamPosition();
                  position.setCommitPosition(outcome.position.commit.toString());
                  position.setPreparePosition(outcome.position.prepare.toString());
                  success.setPosition(position);
                } else {
                  success.setNoPosition(new ProtoEmpty());
                }
                resp.setSuccess(success);
                return;
              }
              case 'wrong_expected_version':
                // Google.Rpc.Status.WrongExpectedVersion (Services/Transport/Grpc/Status.cs, WrongExpectedVersion.cs)
                resp.setError(
                  statusOf(grpc.status.ALREADY_EXISTS, 'WrongExpectedVersion', 'event_store.client.WrongExpectedVersion', () =>
                    batchWrongExpectedVersion(outcome.expected, outcome.currentRevision),
                  ),
                );
                return;
              case 'stream_deleted':
                resp.setError(
                  statusOf(grpc.status.NOT_FOUND, 'StreamDeleted', 'event_store.client.StreamDeleted', () => {
                    const details = new StreamDeleted();
                    details.setStreamIdentifier(streamIdentifier(write.stream));
                    return details;
                  }),
                );
                return;
            }
          });
        } catch (error) {
          const message = error instanceof BatchBadRequest ? error.message : 'Exception was thrown by handler.';
          respond(request, streamForError, (resp) =>
            resp.setError(
              statusOf(grpc.status.INVALID_ARGUMENT, 'BadRequest', 'event_store.client.BadRequest', () => {
                const details = new BadRequest();
                details.setMessage(message);
                return details;
              }),
            ),
          );
        }
      });
      call.on('end', () => {
        if (!failed) call.end();
      });
      call.on('error', () => {
        failed = true;
      });
    },

    // ---------------------------------------------------------------------------------------------
    // Read (Services/Transport/Grpc/Streams.Read.cs + Services/Transport/Enumerators/*)
    read(call) {
      const outbox = new Outbox(call);
      const request = call.request;
      const options = request.getOptions();
      const fail = (error: RpcError, served?: ServedRead) => {
        if (served) served.outcome = error.details;
        outbox.fail(error);
      };
      if (!options) return fail(errors.unhandled());
      if (!options.hasUuidOption()) {
        return fail(
          errors.invalidArgument(
            ' `uuidOption` is a required argument of type EventStore.Client.Streams.ReadReq+Types+Options+Types+UUIDOption',
          ),
        );
      }
      const structuredIds = options.getUuidOption()!.getContentCase() !== ReadReq.Options.UUIDOption.ContentCase.STRING;
      const resolveLinks = options.getResolveLinks();
      const backwards = options.getReadDirection() === ReadReq.Options.ReadDirection.BACKWARDS;
      const streamCase = options.getStreamOptionCase();
      const countCase = options.getCountOptionCase();
      const filterCase = options.getFilterOptionCase();
      const fault = takeFault('readFaults');
      if (fault) return fail(faultError(fault));

      void (async () => {
        try {
          const S = ReadReq.Options.StreamOptionCase;
          const C = ReadReq.Options.CountOptionCase;
          const F = ReadReq.Options.FilterOptionCase;
          const invalidCombination = () =>
            errors.invalidArgument(
              `The combination of (${S[streamCase]}, ${C[countCase]}, ${backwards ? 'Backwards' : 'Forwards'}, ${F[filterCase]}) is invalid.`,
            );
          if (streamCase === S.STREAM && countCase === C.COUNT && filterCase === F.NO_FILTER) {
            await readStream(options, backwards);
          } else if (streamCase === S.ALL && countCase === C.COUNT && (filterCase === F.NO_FILTER || filterCase === F.FILTER)) {
            await readAll(options, backwards, filterCase === F.FILTER ? filterOf(options.getFilter()!) : undefined);
          } else if (streamCase === S.STREAM && countCase === C.SUBSCRIPTION && !backwards && filterCase === F.NO_FILTER) {
            await subscribeToStream(options);
          } else if (
            streamCase === S.ALL &&
            countCase === C.SUBSCRIPTION &&
            !backwards &&
            (filterCase === F.NO_FILTER || filterCase === F.FILTER)
          ) {
            await subscribeToAll(options, filterCase === F.FILTER ? options.getFilter()! : undefined);
          } else {
            fail(invalidCombination());
          }
        } catch (error) {
          fail(error instanceof HandlerError ? error.rpc : errors.unhandled());
        }
      })();

      // -- stream reads (Enumerator.ReadStreamForwards/Backwards.cs, IndexReader.cs ReadStreamEvents*)
      async function readStream(opts: ReadReq.Options, back: boolean) {
        const streamOptions = opts.getStream()!;
        const stream = streamNameOf(streamOptions.getStreamIdentifier());
        const R = ReadReq.Options.StreamOptions.RevisionOptionCase;
        const from: 'start' | 'end' | bigint =
          streamOptions.getRevisionOptionCase() === R.START
            ? 'start'
            : streamOptions.getRevisionOptionCase() === R.END
              ? 'end'
              : BigInt(streamOptions.getRevision());
        const maxCount = BigInt(opts.getCount());
        const served: ServedRead = {
          kind: 'read',
          target: 'stream',
          stream,
          direction: back ? 'backwards' : 'forwards',
          from,
          maxCount,
          resolveLinks,
          returned: 0,
          checkpoints: [],
        };
        state.readsServed.push(served);
        const result = log.readStreamResult(stream);
        if (result.kind === 'stream_deleted') return fail(errors.streamDeleted(stream), served);
        if (result.kind === 'no_stream') {
          // a StreamNotFound message, then a normal end (the client raises StreamNotFoundError)
          const resp = new ReadResp();
          const notFound = new ReadResp.StreamNotFound();
          notFound.setStreamIdentifier(streamIdentifier(stream));
          resp.setStreamNotFound(notFound);
          served.outcome = 'stream_not_found';
          await outbox.write(resp);
          return outbox.end();
        }
        // Visible records only ($tb, $maxCount, $maxAge); forwards from max(from, first visible),
        // backwards from min(from, last) (End = last); `maxCount` events at most, in pages of 32.
        let records: LogRecord[];
        if (!back) {
          // forwards from End: nothing is after the end
          const start = from === 'start' ? 0n : from === 'end' ? result.lastRevision + 1n : from;
          records = result.records.filter((r) => r.revision >= start);
        } else {
          const end = from === 'end' ? result.lastRevision : from === 'start' ? 0n : from;
          records = result.records.filter((r) => r.revision <= end).reverse();
        }
        for (const record of records) {
          if (BigInt(served.returned) >= maxCount) break;
          if (!(await outbox.write(eventResponse(log, record, resolveLinks, structuredIds)))) return;
          served.returned += 1;
        }
        served.outcome = 'ok';
        outbox.end();
      }

      // -- $all reads (Enumerator.ReadAllForwards/Backwards.cs, AllReader.cs)
      async function readAll(opts: ReadReq.Options, back: boolean, filter: ReadFilter | undefined) {
        const allOptions = opts.getAll()!;
        const from = allPositionOf(allOptions);
        const maxCount = BigInt(opts.getCount());
        const served: ServedRead = {
          kind: 'read',
          target: 'all',
          direction: back ? 'backwards' : 'forwards',
          from,
          maxCount,
          resolveLinks,
          returned: 0,
          checkpoints: [],
          ...(filter ? { filter: describeFilter(filter, opts.getFilter()!) } : {}),
        };
        state.readsServed.push(served);
        const writer = log.writerPosition;
        // Start = (0,0); End = (-1,-1) = HeadOfTf -> the writer checkpoint (StorageReaderWorker.cs)
        const pos: TfPosition =
          from === 'start' ? { commit: 0n, prepare: 0n } : from === 'end' ? { commit: writer, prepare: writer } : from;
        if (!log.isRecordBoundary(pos.commit)) {
          // InvalidReadException -> ReadAllResult.InvalidPosition, which the read enumerators do not
          // map: `default: UnknownError.Create(completed.Result)`
          return fail(errors.unknownResult('ReadAllResult', 'InvalidPosition'), served);
        }
        const all = log.all();
        let records: LogRecord[];
        if (!back) {
          // forwards: INCLUSIVE, every record with TFPos(pre, pre) >= pos (AllReader.cs)
          records = all.filter((r) => compareTf(r.position, pos) >= 0);
        } else {
          // backwards: EXCLUSIVE, every record with TFPos(post, post) <= pos (AllReader.cs)
          records = all
            .filter((r) => {
              const post = log.postPosition(r);
              return compareTf({ commit: post, prepare: post }, pos) <= 0;
            })
            .reverse();
        }
        for (const record of records) {
          if (BigInt(served.returned) >= maxCount) break;
          // the default $all filter applies to every $all read (EventFilter.cs DefaultAllFilterStrategy)
          if (!(filter ? filter.allows(record) : allowedInAll(record))) continue;
          if (!(await outbox.write(eventResponse(log, record, resolveLinks, structuredIds)))) return;
          served.returned += 1;
        }
        served.outcome = 'ok';
        outbox.end();
      }

      // -- subscription to a stream (Enumerator.StreamSubscription.cs)
      async function subscribeToStream(opts: ReadReq.Options) {
        const streamOptions = opts.getStream()!;
        const stream = streamNameOf(streamOptions.getStreamIdentifier());
        const R = ReadReq.Options.StreamOptions.RevisionOptionCase;
        const from: 'start' | 'end' | bigint =
          streamOptions.getRevisionOptionCase() === R.START
            ? 'start'
            : streamOptions.getRevisionOptionCase() === R.END
              ? 'end'
              : BigInt(streamOptions.getRevision());
        const served: ServedRead = {
          kind: 'subscription',
          target: 'stream',
          stream,
          direction: 'forwards',
          from,
          resolveLinks,
          returned: 0,
          checkpoints: [],
        };
        state.readsServed.push(served);
        const live: LogRecord[] = [];
        const unsubscribe = log.onAppend((records) => {
          for (const r of records) if (r.stream === stream) live.push(r);
          outbox.wake();
        });
        const active: ActiveSubscription = { served, drop: (error) => fail(error, served) };
        state.subscriptions.add(active);
        try {
          // SubscriptionConfirmation.LastEventNumber: the stream's last event number (-1: none)
          const confirmationLast = log.lastRevision(stream) ?? -1n;
          if (!(await confirm())) return;
          // Start -> -1; End -> the confirmation's last event number; a revision: after it (exclusive)
          let checkpoint = from === 'start' ? -1n : from === 'end' ? confirmationLast : from;

          const send = async (record: LogRecord): Promise<boolean> => {
            if (!(await outbox.write(eventResponse(log, record, resolveLinks, structuredIds)))) return false;
            served.returned += 1;
            checkpoint = record.revision;
            // SendEventToSubscription: a `$streamDeleted` event ends the subscription with StreamDeleted
            if (record.type === '$streamDeleted') {
              fail(errors.streamDeleted(stream), served);
              return false;
            }
            return true;
          };

          if (checkpoint < confirmationLast) {
            // CatchUp: ReadStreamEventsForward from checkpoint + 1 (visible records; NoStream -> done)
            for (;;) {
              const result = log.readStreamResult(stream);
              if (result.kind === 'stream_deleted') return fail(errors.streamDeleted(stream), served);
              if (result.kind === 'no_stream') break;
              const page = result.records.filter((r) => r.revision > checkpoint);
              if (page.length === 0) break;
              for (const record of page) if (!(await send(record))) return;
            }
          }
          // GoLive: CaughtUp, then the live events after the checkpoint
          if (!(await caughtUp())) return;
          for (let i = 0; ;) {
            while (i < live.length) {
              const record = live[i++]!;
              if (record.revision <= checkpoint) continue;
              if (!(await send(record))) return;
            }
            if (outbox.closed) return;
            await outbox.wait();
            if (outbox.closed) return;
          }
        } finally {
          unsubscribe();
          state.subscriptions.delete(active);
        }
      }

      // -- subscription to $all, filtered or not (Enumerator.AllSubscription.cs, Enumerator.AllSubscriptionFiltered.cs)
      async function subscribeToAll(opts: ReadReq.Options, filterOptions: ReadReq.Options.FilterOptions | undefined) {
        const from = allPositionOf(opts.getAll()!);
        const filter = filterOptions ? filterOf(filterOptions) : undefined;
        // `_maxSearchWindow = maxSearchWindow ?? ReadBatchSize; _checkpointInterval = multiplier * _maxSearchWindow`
        const maxSearchWindow =
          filterOptions && filterOptions.getWindowCase() === ReadReq.Options.FilterOptions.WindowCase.MAX
            ? filterOptions.getMax()
            : READ_BATCH_SIZE;
        const checkpointInterval = filterOptions ? filterOptions.getCheckpointintervalmultiplier() * maxSearchWindow : 0;
        if (filterOptions && checkpointInterval === 0) return fail(errors.unhandled()); // ThrowIfZero(multiplier)
        const served: ServedRead = {
          kind: 'subscription',
          target: 'all',
          direction: 'forwards',
          from,
          resolveLinks,
          returned: 0,
          checkpoints: [],
          ...(filter && filterOptions ? { filter: describeFilter(filter, filterOptions) } : {}),
        };
        state.readsServed.push(served);
        const allows = (record: LogRecord) => (filter ? filter.allows(record) : allowedInAll(record));

        // SubscribeToLive first: every record committed from now on is queued for the live phase.
        const live: LogRecord[] = [];
        const unsubscribe = log.onAppend((records) => {
          live.push(...records);
          outbox.wake();
        });
        const active: ActiveSubscription = { served, drop: (error) => fail(error, served) };
        state.subscriptions.add(active);
        try {
          const lastIndexed = log.lastIndexedPosition;
          const confirmationLastPos = { commit: lastIndexed, prepare: lastIndexed };
          if (!(await confirm())) return;
          // ConvertCheckpoint: Start -> (-1,-1); End -> the confirmation's LastIndexedPosition; else the position.
          // Events AFTER the checkpoint are sent (exclusive); checkpoints equal to or after it.
          let checkpoint: TfPosition = from === 'start' ? { commit: -1n, prepare: -1n } : from === 'end' ? confirmationLastPos : from;
          /** MoveNextAsync's `_currentCheckpoint` (wire positions, so End = ulong max compares greatest). */
          let lastSentCheckpoint: TfPosition | undefined;

          const sendEvent = async (record: LogRecord): Promise<boolean> => {
            if (!(await outbox.write(eventResponse(log, record, resolveLinks, structuredIds)))) return false;
            served.returned += 1;
            checkpoint = record.position;
            return true;
          };
          const sendCheckpoint = async (at: TfPosition): Promise<boolean> => {
            const wire = toWirePosition(at);
            // MoveNextAsync: a checkpoint <= the last one sent is dropped
            if (lastSentCheckpoint && compareTf(wire, lastSentCheckpoint) <= 0) return true;
            lastSentCheckpoint = wire;
            const resp = new ReadResp();
            const cp = new ReadResp.Checkpoint();
            cp.setCommitPosition(wire.commit.toString());
            cp.setPreparePosition(wire.prepare.toString());
            resp.setCheckpoint(cp);
            served.checkpoints.push(wire);
            return outbox.write(resp);
          };

          if (compareTf(checkpoint, confirmationLastPos) < 0) {
            const caughtUpAt = filter
              ? await filteredCatchUp(checkpoint, allows, maxSearchWindow, checkpointInterval, sendEvent, sendCheckpoint, () => checkpoint)
              : await catchUp(checkpoint, allows, sendEvent, () => checkpoint);
            if (caughtUpAt === undefined) return;
            checkpoint = caughtUpAt;
          }

          // GoLive: CaughtUp, then the queued live records. Checkpoints in the live phase come from
          // SubscriptionsService.cs ProcessEventCommited: every `checkpointInterval` records committed
          // after the subscription (matching or not), at that record's position.
          if (!(await caughtUp())) return;
          let liveCounter = 0;
          for (let i = 0; ;) {
            while (i < live.length) {
              const record = live[i++]!;
              if (allows(record) && compareTf(record.position, checkpoint) > 0) {
                if (!(await sendEvent(record))) return;
              }
              if (filter) {
                liveCounter += 1;
                if (liveCounter >= checkpointInterval) {
                  liveCounter = 0;
                  if (compareTf(record.position, checkpoint) >= 0) {
                    if (!(await sendCheckpoint(record.position))) return;
                    checkpoint = record.position;
                  }
                }
              }
            }
            if (outbox.closed) return;
            await outbox.wait();
            if (outbox.closed) return;
          }
        } finally {
          unsubscribe();
          state.subscriptions.delete(active);
        }
      }

      /** Unfiltered catch-up: ReadAllEventsForward pages from the checkpoint until the end. */
      async function catchUp(
        start: TfPosition,
        allows: (r: LogRecord) => boolean,
        sendEvent: (r: LogRecord) => Promise<boolean>,
        current: () => TfPosition,
      ): Promise<TfPosition | undefined> {
        const pagePos = start.commit < 0n && start.prepare < 0n ? { commit: 0n, prepare: 0n } : start;
        if (!log.isRecordBoundary(pagePos.commit)) {
          fail(errors.invalidPosition());
          return undefined;
        }
        const all = log.all(); // the live array: records committed during catch-up are read too
        for (let i = firstAtOrAfter(all, pagePos.commit); i < all.length; i++) {
          const record = all[i]!;
          if (compareTf(record.position, pagePos) < 0) continue;
          if (!allows(record)) continue;
          if (compareTf(record.position, current()) <= 0) continue;
          if (!(await sendEvent(record))) return undefined;
        }
        return current();
      }

      /**
       * Filtered catch-up, page by page as AllSubscriptionFiltered.CatchUp does it over
       * AllReader.ReadAllEventsForward(pos, maxCount 32, maxSearchWindow, filter):
       * a page ends after 32 matching or `maxSearchWindow` considered records, or at the end;
       * considered records (matching or not) add up to the checkpoint interval, and when it is
       * reached a checkpoint is sent at max(last event sent, the page's start position);
       * at the end of the log a checkpoint is sent at the last event sent (or the start
       * checkpoint itself: from Start with nothing sent that is (-1,-1), sent as End).
       */
      async function filteredCatchUp(
        start: TfPosition,
        allows: (r: LogRecord) => boolean,
        maxSearchWindow: number,
        checkpointInterval: number,
        sendEvent: (r: LogRecord) => Promise<boolean>,
        sendCheckpoint: (p: TfPosition) => Promise<boolean>,
        current: () => TfPosition,
      ): Promise<TfPosition | undefined> {
        let pagePos = start.commit < 0n && start.prepare < 0n ? { commit: 0n, prepare: 0n } : start;
        let counter = 0;
        let checkpoint = current();
        for (;;) {
          if (!log.isRecordBoundary(pagePos.commit)) {
            fail(errors.invalidPosition());
            return undefined;
          }
          const all = log.all();
          const lastIndexed = log.lastIndexedPosition;
          const matched: LogRecord[] = [];
          let considered = 0;
          let nextPos = pagePos;
          let reachedEnd = false;
          let nextCommitPos = pagePos.commit;
          let i = firstAtOrAfter(all, pagePos.commit);
          while (matched.length < READ_BATCH_SIZE && considered < maxSearchWindow) {
            if (nextCommitPos > lastIndexed) {
              reachedEnd = true;
              break;
            }
            const record = all[i++];
            if (!record) break;
            const post = log.postPosition(record);
            nextCommitPos = post;
            if (compareTf(record.position, pagePos) >= 0) {
              considered += 1;
              if (allows(record)) matched.push(record);
              nextPos = { commit: post, prepare: 0n };
            }
          }
          for (const record of matched) {
            if (compareTf(record.position, checkpoint) <= 0) continue;
            if (!(await sendEvent(record))) return undefined;
            checkpoint = record.position;
          }
          counter += considered;
          if (reachedEnd) {
            if (!(await sendCheckpoint(checkpoint))) return undefined;
            return checkpoint;
          }
          if (counter >= checkpointInterval) {
            counter %= checkpointInterval;
            if (compareTf(checkpoint, pagePos) < 0) checkpoint = pagePos;
            if (!(await sendCheckpoint(checkpoint))) return undefined;
          }
          pagePos = nextPos;
        }
      }

      async function confirm(): Promise<boolean> {
        const resp = new ReadResp();
        const confirmation = new ReadResp.SubscriptionConfirmation();
        confirmation.setSubscriptionId(crypto.randomUUID());
        resp.setConfirmation(confirmation);
        return outbox.write(resp);
      }

      async function caughtUp(): Promise<boolean> {
        const resp = new ReadResp();
        resp.setCaughtUp(new ReadResp.CaughtUp());
        return outbox.write(resp);
      }

      function describeFilter(filter: ReadFilter, filterOptions: ReadReq.Options.FilterOptions): ServedRead['filter'] {
        const window =
          filterOptions.getWindowCase() === ReadReq.Options.FilterOptions.WindowCase.MAX ? filterOptions.getMax() : READ_BATCH_SIZE;
        return {
          on: filter.on,
          prefixes: filter.prefixes,
          ...(filter.regexSource ? { regex: filter.regexSource } : {}),
          maxSearchWindow: window,
          checkpointInterval: filterOptions.getCheckpointintervalmultiplier() * window,
        };
      }
    },

    // ---------------------------------------------------------------------------------------------
    // Delete (soft) and Tombstone (hard) (Services/Transport/Grpc/Streams.Delete.cs)
    delete(call, callback) {
      deleteStream(call.request, false, callback);
    },
    tombstone(call, callback) {
      deleteStream(call.request, true, callback);
    },
  };

  function deleteStream(
    request: DeleteReq | TombstoneReq,
    hard: boolean,
    callback: (error: RpcError | null, response?: DeleteResp & TombstoneResp) => void,
  ) {
    try {
      const options = request.getOptions();
      if (!options) throw new HandlerError(errors.unhandled());
      const stream = streamNameOf(options.getStreamIdentifier());
      const expected = expectedOfDelete(options);
      const outcome = log.deleteStream(stream, expected, hard);
      switch (outcome.kind) {
        case 'success': {
          const response = hard ? new TombstoneResp() : new DeleteResp();
          const position = hard ? new TombstoneResp.Position() : new DeleteResp.Position();
          position.setCommitPosition(outcome.position.commit.toString());
          position.setPreparePosition(outcome.position.prepare.toString());
          (response as DeleteResp).setPosition(position as DeleteResp.Position);
          return callback(null, response as DeleteResp & TombstoneResp);
        }
        case 'wrong_expected_version':
          // an error status with trailers here (RpcExceptions.WrongExpectedVersion("Delete", ...)),
          // unlike Append; the actual version is -1 for a missing stream
          return callback(
            errors.wrongExpectedVersion(
              'Delete',
              stream,
              expectedVersionNumber(expected),
              outcome.currentRevision === 'no_stream' ? -1n : outcome.currentRevision,
            ),
          );
        case 'stream_deleted':
          return callback(errors.streamDeleted(stream));
      }
    } catch (error) {
      callback(error instanceof HandlerError ? error.rpc : errors.unhandled());
    }
  }
}

class BatchBadRequest extends Error {}

// -------------------------------------------------------------------------------------------------
// Helpers

function proposedEvent(id: UUID | undefined, type: string, contentType: string, data: Uint8Array, metadata: Uint8Array): ProposedEvent {
  const eventId = uuidFromDto(id);
  // Data/Event.cs: an empty id or an empty type throws ArgumentException (-> unhandled)
  if (eventId === '00000000-0000-0000-0000-000000000000' || type === '') throw new HandlerError(errors.unhandled());
  return { eventId, type, contentType, data: new Uint8Array(data), metadata: new Uint8Array(metadata) };
}

function expectedOfAppend(options: AppendReq.Options): Expected {
  const C = AppendReq.Options.ExpectedStreamRevisionCase;
  switch (options.getExpectedStreamRevisionCase()) {
    case C.REVISION:
      return { kind: 'revision', revision: BigInt(options.getRevision()) };
    case C.ANY:
      return { kind: 'any' };
    case C.STREAM_EXISTS:
      return { kind: 'stream_exists' };
    case C.NO_STREAM:
      return { kind: 'no_stream' };
    default:
      throw new HandlerError(errors.invalidArgument("'None' is not a valid ExpectedStreamRevisionOneofCase"));
  }
}

function expectedOfBatch(options: BatchAppendReq.Options): Expected {
  const C = BatchAppendReq.Options.ExpectedStreamPositionCase;
  switch (options.getExpectedStreamPositionCase()) {
    case C.STREAM_POSITION:
      return { kind: 'revision', revision: BigInt(options.getStreamPosition()) };
    case C.ANY:
      return { kind: 'any' };
    case C.STREAM_EXISTS:
      return { kind: 'stream_exists' };
    case C.NO_STREAM:
      return { kind: 'no_stream' };
    default:
      throw new HandlerError(errors.invalidArgument("'None' is not a valid ExpectedStreamPositionOneofCase"));
  }
}

function expectedOfDelete(options: DeleteReq.Options | TombstoneReq.Options): Expected {
  const C = DeleteReq.Options.ExpectedStreamRevisionCase;
  switch (options.getExpectedStreamRevisionCase() as number) {
    case C.REVISION:
      return { kind: 'revision', revision: BigInt(options.getRevision()) };
    case C.ANY:
      return { kind: 'any' };
    case C.STREAM_EXISTS:
      return { kind: 'stream_exists' };
    case C.NO_STREAM:
      return { kind: 'no_stream' };
    default:
      throw new HandlerError(errors.invalidArgument("'None' is not a valid ExpectedStreamRevisionOneofCase"));
  }
}

function allPositionOf(options: ReadReq.Options.AllOptions): 'start' | 'end' | TfPosition {
  const C = ReadReq.Options.AllOptions.AllOptionCase;
  switch (options.getAllOptionCase()) {
    case C.START:
      return 'start';
    case C.END:
      return 'end';
    case C.POSITION: {
      const p = options.getPosition()!;
      const commit = BigInt(p.getCommitPosition());
      const prepare = BigInt(p.getPreparePosition());
      // Services/Transport/Common/Position.cs: commit < prepare, or above long.MaxValue (but not
      // ulong.MaxValue) throws in the constructor -> unhandled exception
      const tooBig = (v: bigint) => v > 0x7fffffffffffffffn && v !== ULONG_MAX;
      if (commit < prepare || tooBig(commit) || tooBig(prepare)) throw new HandlerError(errors.unhandled());
      if (commit === ULONG_MAX && prepare === ULONG_MAX) return 'end'; // == Position.End
      return { commit: commit === ULONG_MAX ? -1n : commit, prepare: prepare === ULONG_MAX ? -1n : prepare };
    }
    default:
      throw new HandlerError(errors.unhandled());
  }
}

/** Index of the first record whose position is >= `position` (records are in position order). */
function firstAtOrAfter(all: readonly LogRecord[], position: bigint): number {
  let lo = 0;
  let hi = all.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (all[mid]!.position.prepare < position) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Streams.Append.cs: the WrongExpectedVersion response message, with its 20.6.0 twins. */
function appendWrongExpectedVersion(expected: Expected, current: bigint | 'no_stream'): AppendResp.WrongExpectedVersion {
  const wev = new AppendResp.WrongExpectedVersion();
  switch (expected.kind) {
    case 'any':
      wev.setExpectedAny(new SharedEmpty());
      wev.setAny2060(new SharedEmpty());
      break;
    case 'stream_exists':
      wev.setExpectedStreamExists(new SharedEmpty());
      wev.setStreamExists2060(new SharedEmpty());
      break;
    case 'no_stream':
      wev.setExpectedNoStream(new SharedEmpty());
      // the server also sets ExpectedRevision2060 = ulong.MaxValue: not representable in this
      // generated (number-typed) field, and the client does not read it
      break;
    case 'revision':
      wev.setExpectedRevision(expected.revision.toString());
      if (expected.revision <= BigInt(Number.MAX_SAFE_INTEGER)) wev.setExpectedRevision2060(Number(expected.revision));
      break;
  }
  if (current === 'no_stream') {
    wev.setCurrentNoStream(new SharedEmpty());
    wev.setNoStream2060(new SharedEmpty());
  } else {
    wev.setCurrentRevision(current.toString());
    if (current <= BigInt(Number.MAX_SAFE_INTEGER)) wev.setCurrentRevision2060(Number(current));
  }
  return wev;
}

/** Services/Transport/Grpc/WrongExpectedVersion.cs Create (the details of BatchAppend's error status). */
function batchWrongExpectedVersion(expected: Expected, current: bigint | 'no_stream'): WrongExpectedVersionDetails {
  const details = new WrongExpectedVersionDetails();
  if (current === 'no_stream') details.setCurrentNoStream(new ProtoEmpty());
  else details.setCurrentStreamRevision(current.toString());
  switch (expected.kind) {
    case 'any':
      details.setExpectedAny(new ProtoEmpty());
      break;
    case 'no_stream':
      details.setExpectedNoStream(new ProtoEmpty());
      break;
    case 'stream_exists':
      details.setExpectedStreamExists(new ProtoEmpty());
      break;
    case 'revision':
      details.setExpectedStreamPosition(expected.revision.toString());
      break;
  }
  return details;
}

/** A google.rpc.Status with one packed detail (Services/Transport/Grpc/Status.cs). */
function statusOf(code: grpc.status, message: string, typeName: string, details: () => { serializeBinary(): Uint8Array }): Status {
  const status = new Status();
  status.setCode(code as number as ReturnType<Status['getCode']>);
  status.setMessage(message);
  const any = new Any();
  any.pack(details().serializeBinary(), typeName);
  status.setDetails(any);
  return status;
}

export { DELETED_STREAM };
