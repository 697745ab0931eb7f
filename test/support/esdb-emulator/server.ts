/**
 * A gRPC-level emulator of an EventStoreDB 24.10 single insecure node, for tests: the real
 * `@eventstore/db-client` connects to it over a real gRPC connection
 * (`EventStoreDBClient.connectionString(emulator.url)`). TEST-ONLY.
 *
 * It follows the SERVER's rules (C# source at tag v24.10.0 of EventStore/EventStore), not our
 * adapter's expectations; the rules are cited in ./log.ts (commit rules, positions, metadata),
 * ./streams-service.ts (the Streams gRPC service) and ./server-features.ts.
 *
 * Services: Streams (./streams-service.ts), ServerFeatures (./server-features.ts), and
 * PersistentSubscriptions when ./persistent-subscriptions.ts exists (part 2, registered through
 * `registerPersistentSubscriptions(server, log, emulator)`). Insecure, like `--insecure`: no TLS,
 * and the passthrough authorization of ClusterVNode.cs (every call allowed, credentials ignored).
 *
 * NOT emulated (known differences from a real node):
 * - Users, Operations, Gossip, Monitoring, Redaction, Projections services; ACLs; clusters,
 *   NotLeader/requires-leader; TLS.
 * - Timeouts: BatchAppend deadlines and the write timeout, read expiry; IdempotentNotReady.
 * - The live-event channel of subscriptions (32, drop-oldest): a slow subscriber never "falls
 *   behind" here, so the extra checkpoint the server sends when it does never comes.
 * - Chunks (records never straddle a 256 MiB chunk, so positions jump at chunk ends); scavenging
 *   (truncated/expired events stay in $all, as on a real node until it scavenges).
 * - Validation of metadata written to `$$` streams (unparseable metadata just counts as empty).
 * - Filtered $all READS are served simply (no search-window paging): the 6.2.1 client never sends
 *   them (dist/streams/readAll.js always sets `noFilter`); filtered SUBSCRIPTIONS are page-exact.
 * - Forward stream reads from End (IndexReader asserts a non-negative start): answered as empty.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { EmulatedLog } from './log';
import { createServerFeaturesService, serverFeaturesDefinition, type AdvertisedMethod } from './server-features';
import {
  createStreamsService,
  createStreamsServiceState,
  rpcError,
  streamsDefinition,
  type ServedAppend,
  type ServedRead,
} from './streams-service';

export interface EsdbEmulatorOptions {
  /** The log to serve (default: a new one). */
  log?: EmulatedLog;
  /** MaxAppendSize in bytes (default 1,048,576, as ClusterVNodeOptions.cs). */
  maxAppendSize?: number;
  /**
   * Advertise BatchAppend in ServerFeatures (default true, as 24.10). With false the 6.2.1 client
   * uses the older client-streaming Append (dist/streams/appendToStream/index.js).
   */
  batchAppend?: boolean;
  /**
   * Start as a freshly created node does (default true): an epoch system record and a
   * `$epoch-information` event come first (Services/Storage/EpochManager/EpochManager.cs
   * WriteNewEpoch), so the first user event is not at position 0. The `$epoch-information`
   * stream is hidden from $all by the default $all filter. With false the log starts empty at 0.
   */
  freshNode?: boolean;
  /** Extra ServerFeatures entries (e.g. to make the client believe a service exists). */
  extraAdvertised?: readonly AdvertisedMethod[];
}

export interface FaultOptions {
  /** gRPC status code (default UNAVAILABLE). */
  code?: grpc.status;
  details?: string;
  /** Commit the append first, then fail the call (default false: nothing written). Appends only. */
  afterCommit?: boolean;
}

export interface EsdbEmulator {
  /** `esdb://127.0.0.1:<port>?tls=false` */
  url: string;
  port: number;
  log: EmulatedLog;
  server: grpc.Server;
  /** Stops the server (live subscriptions end with UNAVAILABLE first). */
  stop(): Promise<void>;
  /**
   * The next `n` append calls (Append or BatchAppend requests) fail with this status. BatchAppend
   * fails its whole bidi call, as a broken connection would. `afterCommit` writes first.
   */
  failNextAppends(n: number, options?: FaultOptions): void;
  /** The next `n` Read calls (reads and subscriptions) fail with this status before anything is sent. */
  failNextReads(n: number, options?: Omit<FaultOptions, 'afterCommit'>): void;
  /** Every Read call served so far (reads and subscriptions, stream and $all), with what it returned. */
  readsServed(): readonly ServedRead[];
  /** The $all reads (not subscriptions) served so far: `returned` is how many records each sent. */
  allReadsServed(): readonly ServedRead[];
  /** Every append request so far (Append or BatchAppend), with its outcome. */
  appendsServed(): readonly ServedAppend[];
  /** Forgets the served reads and appends. */
  resetCounters(): void;
  /** Live catch-up subscriptions (stream or $all) right now. */
  activeSubscriptions(): readonly ServedRead[];
  /** Ends every live subscription with this status (default UNAVAILABLE); returns how many. */
  dropSubscriptions(options?: Omit<FaultOptions, 'afterCommit'>): number;
  /** Whatever part 2's registerPersistentSubscriptions returned (undefined while it does not exist). */
  persistentSubscriptions?: unknown;
}

/** The signature part 2 exports from ./persistent-subscriptions. */
type RegisterPersistentSubscriptions = (server: grpc.Server, log: EmulatedLog, emulator: EsdbEmulator) => unknown;

export async function startEsdbEmulator(options: EsdbEmulatorOptions = {}): Promise<EsdbEmulator> {
  const log = options.log ?? new EmulatedLog();
  if ((options.freshNode ?? true) && log.all().length === 0 && log.writerPosition === 0n) seedFreshNode(log);

  const state = createStreamsServiceState({ maxAppendSize: options.maxAppendSize });
  const server = new grpc.Server({
    // the client pings every 10 s (keepAliveInterval); accept it like Kestrel does
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_receive_message_length': -1,
  });

  // Every service added is advertised by ServerFeatures (ServerFeatures.cs lists the mapped endpoints).
  const registered: grpc.ServiceDefinition[] = [];
  const addService = server.addService.bind(server);
  server.addService = (definition, implementation) => {
    registered.push(definition);
    addService(definition, implementation);
  };

  server.addService(streamsDefinition(), createStreamsService(log, state));
  server.addService(
    serverFeaturesDefinition(),
    createServerFeaturesService({
      registered: () => registered,
      ...(options.extraAdvertised ? { extraAdvertised: options.extraAdvertised } : {}),
      ...(options.batchAppend === false ? { hidden: new Set(['event_store.client.streams.streams/batchappend']) } : {}),
    }),
  );

  const fault = (n: number, o: FaultOptions = {}) => ({
    remaining: n,
    fault: {
      code: o.code ?? grpc.status.UNAVAILABLE,
      details: o.details ?? 'emulator: injected fault',
      afterCommit: o.afterCommit ?? false,
    },
  });

  let stopped = false;
  const emulator: EsdbEmulator = {
    url: '',
    port: 0,
    log,
    server,
    async stop() {
      if (stopped) return;
      stopped = true;
      emulator.dropSubscriptions({ code: grpc.status.UNAVAILABLE, details: 'emulator stopped' });
      // Persistent consumers' calls too (and their clock tick), or tryShutdown waits its whole second for them.
      (emulator.persistentSubscriptions as { close?: () => void } | undefined)?.close?.();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    failNextAppends(n, o) {
      state.appendFaults = n > 0 ? fault(n, o) : undefined;
    },
    failNextReads(n, o) {
      state.readFaults = n > 0 ? fault(n, { ...o, afterCommit: false }) : undefined;
    },
    readsServed: () => state.readsServed,
    allReadsServed: () => state.readsServed.filter((r) => r.kind === 'read' && r.target === 'all'),
    appendsServed: () => state.appendsServed,
    resetCounters() {
      state.readsServed.length = 0;
      state.appendsServed.length = 0;
    },
    activeSubscriptions: () => [...state.subscriptions].map((s) => s.served),
    dropSubscriptions(o = {}) {
      const subscriptions = [...state.subscriptions];
      for (const s of subscriptions) {
        s.drop(rpcError(o.code ?? grpc.status.UNAVAILABLE, o.details ?? 'emulator: subscription dropped'));
      }
      return subscriptions.length;
    },
  };

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    );
  });
  emulator.port = port;
  emulator.url = `esdb://127.0.0.1:${port}?tls=false`;
  // ---- part 2 hook: persistent subscriptions (./persistent-subscriptions.ts, written separately),
  // registered once the port is known (grpc-js accepts services added after bindAsync).
  // Registered when the file exists; until then the client sees no PersistentSubscriptions service.
  const part2 = ['persistent-subscriptions.ts', 'persistent-subscriptions.js'].some((f) => fs.existsSync(path.join(__dirname, f)));
  if (part2) {
    const specifier = './persistent-subscriptions';
    try {
      const module = (await import(specifier)) as { registerPersistentSubscriptions?: RegisterPersistentSubscriptions };
      if (typeof module.registerPersistentSubscriptions === 'function') {
        emulator.persistentSubscriptions = module.registerPersistentSubscriptions(server, log, emulator);
      }
    } catch (error) {
      server.forceShutdown();
      throw error;
    }
  }

  return emulator;
}

/**
 * What a new node writes before any client: the epoch (a SystemLogRecord, not an event:
 * TransactionLog/LogRecords/SystemLogRecord.cs, 40 bytes + its JSON) and its `$epoch-information`
 * event (EpochManager.cs WriteEpochInformationWithRetry, data EpochRecord.cs EpochRecordDto).
 * An insecure node has no users to create (ClusterVNode.cs: passthrough authentication).
 */
export function seedFreshNode(log: EmulatedLog): void {
  const epochId = crypto.randomUUID();
  const leaderInstanceId = crypto.randomUUID();
  const dto = {
    epochPosition: 0,
    epochNumber: 0,
    epochId,
    prevEpochPosition: -1,
    timeStamp: log.now().toISOString(),
    leaderInstanceId,
  };
  const data = new TextEncoder().encode(JSON.stringify(dto));
  log.writeHiddenRecord(40 + data.length);
  log.append('$epoch-information', { kind: 'no_stream' }, [
    {
      eventId: crypto.randomUUID(),
      type: '$epoch-information',
      contentType: 'application/json',
      data,
      metadata: new Uint8Array(0),
    },
  ]);
}
