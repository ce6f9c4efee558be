/**
 * The 8-byte timestamp encoding of the txns shard (spec §2.2): a timestamp as an
 * unsigned 64-bit little-endian integer.
 *
 * Txns rows carry the *original* time of their operation in these bytes, because
 * persist compaction may move a row's persist time forward while the cache needs
 * the time the operation was made at.
 *
 * Example: `encodeTs(258)` is `02 01 00 00 00 00 00 00`.
 */
import { InvariantViolation } from '../persist/errors.js';
import { assertTimestamp } from '../persist/time.js';

export const TS_BYTES = 8;

export function encodeTs(ts: number): Uint8Array {
  assertTimestamp(ts, 'txns timestamp');
  const out = new Uint8Array(TS_BYTES);
  new DataView(out.buffer).setBigUint64(0, BigInt(ts), true);
  return out;
}

export function decodeTs(bytes: Uint8Array, offset = 0): number {
  if (bytes.length - offset < TS_BYTES) {
    throw new InvariantViolation(`a txns timestamp needs ${TS_BYTES} bytes, found ${bytes.length - offset}`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, TS_BYTES).getBigUint64(0, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvariantViolation(`txns timestamp ${v} is beyond Number.MAX_SAFE_INTEGER`);
  }
  return Number(v);
}
