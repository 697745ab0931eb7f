/**
 * The hash of the Pinned consumer strategies: each stream (or correlation id) goes to bucket hash % 1024. EventStoreDB
 * uses XXHashUnsafe, an xxHash32 variant, seeded 0xc58f1a7b, over the UTF-16 code units of the string in little-endian
 * order (src/EventStore.Core/Index/Hashes/XXHashUnsafe.cs, used by
 * src/EventStore.Core/Services/PersistentSubscription/ConsumerStrategy/PersistentSubscriptionConsumerStrategyRegistry.cs).
 * Written from the algorithm's description there; the emulator's test checks it against the server's SMHasher
 * verification value (src/EventStore.Core.Tests/Hashes/xxhash_hash_should.cs).
 */

const P1 = 2654435761;
const P2 = 2246822519;
const P3 = 3266489917;
const P4 = 668265263;
const P5 = 0x165667b1;

export const PINNED_HASH_SEED = 0xc58f1a7b;

const mul = (a: number, b: number): number => Math.imul(a, b) >>> 0;
const add = (...values: number[]): number => values.reduce((sum, v) => (sum + v) >>> 0, 0);
const rotl = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0;

function word(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8) | ((bytes[at + 2] ?? 0) << 16) | ((bytes[at + 3] ?? 0) << 24)) >>> 0;
}

/** The server's hash of `length` bytes of `bytes` from offset 0 with `seed`. */
export function xxHashUnsafe(bytes: Uint8Array, length: number, seed: number): number {
  return length < 16 ? hashShort(bytes, length, seed >>> 0) : hashLong(bytes, length, seed >>> 0);
}

function hashShort(bytes: Uint8Array, length: number, seed: number): number {
  let index = add(seed, P1);
  let crc = P5;
  let at = 0;
  // Four bytes at a time while more than four remain, then byte by byte.
  while (at < length - 4) {
    crc = add(crc, word(bytes, at), index);
    index = add(index, 1);
    crc = add(crc, mul(rotl(crc, 17), P4));
    crc = mul(crc, P1);
    at += 4;
  }
  while (at < length) {
    crc = add(crc, bytes[at] ?? 0, index);
    index = add(index, 1);
    crc = mul(crc, P1);
    at += 1;
  }
  crc = add(crc, length);
  crc = mul((crc ^ (crc >>> 15)) >>> 0, P2);
  crc = mul((crc ^ (crc >>> 13)) >>> 0, P3);
  return (crc ^ (crc >>> 16)) >>> 0;
}

function hashLong(bytes: Uint8Array, length: number, seed: number): number {
  const lanes = [add(seed, P1), 0, 0, 0];
  lanes[1] = add(mul(lanes[0] ?? 0, P2), length);
  lanes[2] = mul(lanes[1] ?? 0, P3);
  lanes[3] = mul(lanes[2] ?? 0, P4);
  const roundRotations = [13, 11, 17, 19];
  const limit = length - 16;
  let at = 0;
  while (at < limit) {
    for (let lane = 0; lane < 4; lane++) {
      let v = lanes[lane] ?? 0;
      v = add(v, rotl(v, roundRotations[lane] ?? 0));
      v = mul(v, P1);
      lanes[lane] = add(v, word(bytes, at));
      at += 4;
    }
  }
  // The last 16 bytes (they may overlap the ones above).
  const tailRotations = [17, 19, 13, 11];
  const finalRotations = [11, 17, 19, 13];
  for (let lane = 0; lane < 4; lane++) {
    let v = lanes[lane] ?? 0;
    v = add(v, rotl(v, tailRotations[lane] ?? 0));
    v = mul(v, P1);
    v = add(v, word(bytes, limit + lane * 4));
    v = mul(v, P2);
    v = add(v, rotl(v, finalRotations[lane] ?? 0));
    lanes[lane] = mul(v, P3);
  }
  let crc = add(lanes[0] ?? 0, rotl(lanes[1] ?? 0, 3), rotl(lanes[2] ?? 0, 6), rotl(lanes[3] ?? 0, 9));
  crc = (crc ^ (crc >>> 11)) >>> 0;
  crc = add(crc, mul(add(P4, length), P1));
  crc = (crc ^ (crc >>> 15)) >>> 0;
  crc = mul(crc, P2);
  return (crc ^ (crc >>> 13)) >>> 0;
}

/** XXHashUnsafe.Hash(string): the UTF-16 code units, little-endian, with the default seed. */
export function hashString(text: string): number {
  const bytes = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    bytes[i * 2] = unit & 0xff;
    bytes[i * 2 + 1] = unit >>> 8;
  }
  return xxHashUnsafe(bytes, bytes.length, PINNED_HASH_SEED);
}

/** SMHasher's verification: hash {}, {0}, {0,1}, ... with seeds 256 - n, then hash the 256 results (little-endian). */
export function smhasherVerification(): number {
  const key = new Uint8Array(256);
  const hashes = new Uint8Array(4 * 256);
  for (let i = 0; i < 256; i++) {
    key[i] = i;
    const h = xxHashUnsafe(key, i, 256 - i);
    hashes[i * 4] = h & 0xff;
    hashes[i * 4 + 1] = (h >>> 8) & 0xff;
    hashes[i * 4 + 2] = (h >>> 16) & 0xff;
    hashes[i * 4 + 3] = h >>> 24;
  }
  return xxHashUnsafe(hashes, hashes.length, 0);
}
