import { createRequire } from 'node:module';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import type { History } from '@temporalio/common/lib/proto-utils';

/**
 * Workflow histories to and from the proto3 JSON form (the form of `temporal workflow show --output json`
 * and of the SDK's `historyToJSON` / `historyFromJSON` in @temporalio/common/lib/proto-utils).
 *
 * Why not the SDK's functions: in this install they throw "type must be a Type". npm nests a
 * separate copy of protobufjs@8 under each of @temporalio/proto, /common and /worker, because the
 * top-level slot holds protobufjs@7 (for @eventstore/db-client's @grpc/proto-loader). The SDK's
 * proto-utils takes `protojson` from @temporalio/common's copy and the message types from
 * @temporalio/proto's copy, and protojson's `instanceof Type` check fails across copies.
 * Here `protojson` is loaded from the very copy @temporalio/proto uses, so the types match whatever
 * the layout. (Once protobufjs@8 is deduplicated, e.g. with a top-level "protobufjs": "8.8.1"
 * dependency, the SDK's functions work and this helper can go.)
 */
const protoRequire = createRequire(require.resolve('@temporalio/proto'));
const protojson = protoRequire('protobufjs/ext/protojson') as {
  toJson(type: unknown, message: unknown): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  fromJson(type: unknown, json: unknown, options?: object): any;
};
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const historyType = (patchProtobufRoot(proto) as any).lookupType('temporal.api.history.v1.History');

/** The history as proto3 JSON text, pretty-printed. */
export function historyToJson(history: History): string {
  return JSON.stringify(protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history)), null, 2);
}

/** A history from its proto3 JSON form (text or parsed); unknown fields (newer servers) are ignored. */
export function historyFromJson(json: string | object): History {
  const parsed: unknown = typeof json === 'string' ? JSON.parse(json) : json;
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { events?: unknown }).events)) {
    throw new TypeError('Invalid history: expected an object with an array of events');
  }
  const history = protojson.fromJson(historyType, parsed, { ignoreUnknownFields: true }) as History | null;
  if (!history) throw new TypeError('Invalid history');
  return history;
}
