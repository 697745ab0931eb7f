import { createHash } from 'node:crypto';

/**
 * A UUID (version 5 layout, SHA-1 of a namespace and a name) that is the same every time for the
 * same inputs. Event ids of transfer legs are derived from the transfer id and the leg, so an
 * activity retried after its append landed re-sends the very same event ids: the event store
 * recognises them and writes nothing twice.
 */
const NAMESPACE = 'b7b3d6c2-4f1e-4c1a-9a53-6f0e2f5d9c11';

export function deterministicUuid(...parts: string[]): string {
  const hash = createHash('sha1').update(NAMESPACE).update(parts.join('\u001f')).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50; // version 5
  hash[8] = (hash[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
