/**
 * Little-endian fixed-width columns: arrays of numbers ↔ bytes.
 *
 * Stored parts keep times and diffs as float64 and byte offsets as uint32, always
 * little-endian. On a little-endian machine (every platform Node ships for today)
 * this is a typed-array copy; elsewhere it goes through a DataView.
 *
 * Example: `float64sToBytes([1, 2])` is 16 bytes; `bytesToFloat64s(that, 2)` is `[1, 2]`.
 */
import { endianness } from 'node:os';

const LITTLE_ENDIAN = endianness() === 'LE';

export function float64sToBytes(values: ArrayLike<number>): Uint8Array {
  if (LITTLE_ENDIAN) {
    const arr = Float64Array.from(values);
    return new Uint8Array(arr.buffer);
  }
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat64(i * 8, values[i]!, true);
  return out;
}

/** The bytes of `values` as little-endian float64s: a view of them on a little-endian machine, else a copy. */
export function float64ArrayToBytes(values: Float64Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return float64sToBytes(values);
}

export function uint32sToBytes(values: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint32(i * 4, values[i]!, true);
  return out;
}

/** `n` float64s from `bytes`; undefined when the length is not exactly `8n`. */
export function bytesToFloat64s(bytes: Uint8Array, n: number): Float64Array | undefined {
  if (bytes.byteLength !== n * 8) return undefined;
  if (LITTLE_ENDIAN) {
    // Copy into a fresh (aligned) buffer: stored bytes may sit at any offset.
    const out = new Float64Array(n);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const out = new Float64Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}

/** `n` uint32s from `bytes`; undefined when the length is not exactly `4n`. */
export function bytesToUint32s(bytes: Uint8Array, n: number): Uint32Array | undefined {
  if (bytes.byteLength !== n * 4) return undefined;
  const out = new Uint32Array(n);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}
