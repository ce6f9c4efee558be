/**
 * Test support for the stored formats: reaching into a location's stored objects,
 * damaging them, and the format version 1 (pre-checksum) form of an object.
 *
 * Format version 1 is format version 2 without the checksum trailer: the same
 * message with `formatVersion: 1` and no field 15 (and a part's columns in full, not
 * in version 3's compact form). {@link toLegacyFormat} produces it from a newer encoding; the checksum tests check it against bytes that the
 * version 1 code really wrote (fixtures/legacy-v1-shard.json).
 */
import { readFileSync } from 'node:fs';
import type protobuf from 'protobufjs';
import type { Location } from '../../src/location/location.js';
import { openLocation } from '../../src/location/location.js';
import { MemConsensus } from '../../src/location/mem-consensus.js';
import { SCAN_ALL, type VersionedData } from '../../src/location/consensus.js';
import { Proto } from '../../src/persist/encoding.js';
import { decodePartColumns } from '../../src/persist/part.js';
import { xorshift32 } from './rng.js';

/**
 * A format version 2 or 3 object rewritten as format version 1 stored it: a part's
 * compact columns (version 3) written out in full, as every version before 3 did.
 */
export function toLegacyFormat(t: protobuf.Type, sealed: Uint8Array): Uint8Array {
  const m = t.decode(sealed) as unknown as Record<string, unknown>;
  // The decoded message owns only the fields present in the bytes: without its own
  // `checksum`, the encoder leaves field 15 out.
  delete m.checksum;
  if (t === Proto.Part) {
    const c = decodePartColumns(sealed, 'part to rewrite in format version 1');
    const bytesOf = (a: Uint32Array | Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    Object.assign(m, { keyOffsets: bytesOf(c.keyOffsets), valOffsets: bytesOf(c.valOffsets), times: bytesOf(c.times), diffs: bytesOf(c.diffs) });
    for (const f of ['hasTime', 'time', 'hasDiff', 'diff', 'hasKeyWidth', 'keyWidth', 'hasValWidth', 'valWidth']) delete m[f];
  }
  m.formatVersion = 1;
  return t.encode(m).finish();
}

/** A copy of `bytes` with bit `bit` (0 = lowest bit of the first byte) inverted. */
export function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

/**
 * Bit positions to flip in an object of `byteLength` bytes: every bit if there are
 * at most `count`, else every bit of the first and last bytes plus a seeded sample
 * spread over the rest (one bit from each of `count - 16` equal slices).
 */
export function bitPositions(byteLength: number, count: number, seed: number): number[] {
  const bits = byteLength * 8;
  if (bits <= count) return Array.from({ length: bits }, (_, i) => i);
  const out = new Set<number>();
  for (let i = 0; i < 8; i++) {
    out.add(i);
    out.add(bits - 8 + i);
  }
  const next = xorshift32(seed);
  const slices = count - 16;
  const span = (bits - 16) / slices;
  for (let s = 0; s < slices; s++) out.add(8 + Math.floor(s * span) + (next() % Math.max(1, Math.floor(span))));
  return [...out].sort((a, b) => a - b);
}

/** Every Consensus version of `key`, oldest first. */
export function versionsOf(location: Location, key: string): Promise<VersionedData[]> {
  return location.consensus.scan(key, 0, SCAN_ALL);
}

/**
 * A location sharing `location`'s Blob, with a copy of its Consensus in which the
 * data of version `seqno` of `key` is `data` (Consensus itself never rewrites a
 * version, so damaging one means copying the register).
 */
export async function withVersionReplaced(
  location: Location,
  key: string,
  seqno: number,
  data: Uint8Array,
): Promise<Location> {
  const consensus = new MemConsensus();
  for (const name of await location.consensus.listKeys()) {
    let prev: number | undefined;
    for (const v of await versionsOf(location, name)) {
      const stored = name === key && v.seqno === seqno ? { seqno, data } : v;
      await consensus.compareAndSet(name, prev, stored);
      prev = v.seqno;
    }
  }
  return { blob: location.blob, consensus, url: location.url, close: () => consensus.close() };
}

export interface LegacyShardFixture {
  shardId: string;
  upper: number;
  rows: Array<[string, null, number, number]>;
  /** Blob key → hex bytes. */
  blobs: Record<string, string>;
  /** Consensus key → versions with hex data, oldest first. */
  consensus: Record<string, Array<{ seqno: number; data: string }>>;
}

export function readLegacyShardFixture(): LegacyShardFixture {
  const url = new URL('../persist/fixtures/legacy-v1-shard.json', import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as LegacyShardFixture;
}

/** A fresh private mem:// location holding exactly the fixture's objects. */
export async function openLegacyShardLocation(fixture: LegacyShardFixture): Promise<Location> {
  const location = await openLocation('mem://');
  for (const [key, hex] of Object.entries(fixture.blobs)) await location.blob.set(key, Buffer.from(hex, 'hex'));
  for (const [key, versions] of Object.entries(fixture.consensus)) {
    let prev: number | undefined;
    for (const v of versions) {
      await location.consensus.compareAndSet(key, prev, { seqno: v.seqno, data: Buffer.from(v.data, 'hex') });
      prev = v.seqno;
    }
  }
  return location;
}
