/**
 * `event_store.client.server_features.ServerFeatures/GetSupportedMethods` as EventStoreDB 24.10
 * answers it. TEST-ONLY.
 *
 * Follows src/EventStore.Core/Services/Transport/Grpc/ServerFeatures.cs (tag v24.10.0): the
 * server lists every gRPC endpoint it has mapped whose service name contains "client", lower-cased,
 * with these features:
 * - PersistentSubscriptions methods: ["stream", "all"];
 * - Streams methods whose name contains "Read": ["position", "events"];
 * - Streams BatchAppend: ["deadline_duration"];
 * - Projections Create: ["track_emitted_streams"];
 * and the version as the first three parts of VersionInfo.Version ("24.10.0").
 *
 * Like the real server, the emulator advertises what it has actually mapped: the services
 * registered on its grpc.Server (so persistent subscriptions are advertised once part 2 registers
 * them, and the client then uses gRPC rather than its HTTP fall-backs). A real 24.10 node also
 * advertises Users, Operations, client Gossip, Monitoring and Redaction (and Projections when
 * projections run: ClusterVNodeHostedService.cs, off by default), which the emulator does not
 * implement; `extraAdvertised` can add such entries when a test needs the client to believe in them.
 */
import type * as grpc from '@grpc/grpc-js';
import { ServerFeaturesService, type IServerFeaturesServer } from '@eventstore/db-client/generated/serverfeatures_grpc_pb';
import { SupportedMethod, SupportedMethods } from '@eventstore/db-client/generated/serverfeatures_pb';

export const EMULATED_SERVER_VERSION = '24.10.0';

export interface AdvertisedMethod {
  /** lower-cased fully qualified service name, e.g. 'event_store.client.streams.streams' */
  serviceName: string;
  /** lower-cased method name, e.g. 'batchappend' */
  methodName: string;
  features: string[];
}

/** The features ServerFeatures.cs attaches to one endpoint (service and method as declared, not lower-cased). */
export function featuresOf(serviceName: string, methodName: string): string[] {
  if (serviceName.includes('PersistentSubscriptions')) return ['stream', 'all'];
  if (serviceName.includes('Streams') && methodName.includes('Read')) return ['position', 'events'];
  if (serviceName.includes('Streams') && methodName.includes('BatchAppend')) return ['deadline_duration'];
  if (serviceName.includes('Projections') && methodName.includes('Create')) return ['track_emitted_streams'];
  return [];
}

/** Every method of the given service definitions, as ServerFeatures.cs would list them. */
export function advertisedMethods(definitions: readonly grpc.ServiceDefinition[]): AdvertisedMethod[] {
  const seen = new Set<string>();
  const methods: AdvertisedMethod[] = [];
  for (const definition of definitions) {
    for (const method of Object.values(definition)) {
      // path: '/event_store.client.streams.Streams/BatchAppend'
      const [, serviceName = '', methodName = ''] = method.path.split('/');
      if (!serviceName.includes('client')) continue;
      const key = `${serviceName.toLowerCase()}/${methodName.toLowerCase()}`;
      if (seen.has(key)) continue; // `supportedEndpoints.Distinct()`
      seen.add(key);
      methods.push({
        serviceName: serviceName.toLowerCase(),
        methodName: methodName.toLowerCase(),
        features: featuresOf(serviceName, methodName),
      });
    }
  }
  return methods;
}

export interface ServerFeaturesOptions {
  /** The service definitions mapped on the server, read at each call (the list may grow). */
  registered: () => readonly grpc.ServiceDefinition[];
  version?: string;
  /** Entries added to what the registered services give (e.g. to pretend Users is there). */
  extraAdvertised?: readonly AdvertisedMethod[];
  /** Entries removed by `serviceName/methodName` (lower-case), e.g. to hide BatchAppend. */
  hidden?: ReadonlySet<string>;
}

export function serverFeaturesDefinition(): grpc.ServiceDefinition {
  return ServerFeaturesService as unknown as grpc.ServiceDefinition;
}

export function createServerFeaturesService(options: ServerFeaturesOptions): IServerFeaturesServer {
  return {
    getSupportedMethods(_call, callback) {
      const methods = [...advertisedMethods(options.registered()), ...(options.extraAdvertised ?? [])].filter(
        (m) => !options.hidden?.has(`${m.serviceName}/${m.methodName}`),
      );
      const response = new SupportedMethods();
      response.setEventStoreServerVersion(options.version ?? EMULATED_SERVER_VERSION);
      response.setMethodsList(
        methods.map((m) => {
          const method = new SupportedMethod();
          method.setServiceName(m.serviceName);
          method.setMethodName(m.methodName);
          method.setFeaturesList([...m.features]);
          return method;
        }),
      );
      callback(null, response);
    },
  };
}
