/**
 * Opaque: the fencing token stored with a critical since (spec §1.3).
 *
 * A codec name plus 8 bytes. `compareAndDowngradeSince` only succeeds when the
 * caller's expected opaque equals the stored one, which lets a new controller fence
 * out an old one by installing a new token.
 *
 * Example: `Opaque.u64(0)` is `{ codec: 'u64', bytes: [0,0,0,0,0,0,0,0] }`.
 */
import { bufferView } from '../location/bytes.js';
import { InvalidUsage } from './errors.js';

/**
 * A critical since's fencing token: a codec name plus bytes, compared for equality only.
 *
 * Example:
 * ```ts
 * const token: Opaque = Opaque.u64(3);
 * Opaque.toU64(token);   // 3n
 * ```
 */
export interface Opaque {
  /** What the bytes mean (`'u64'` for {@link Opaque.u64}). */
  readonly codec: string;
  /** The token itself. */
  readonly bytes: Uint8Array;
}

/**
 * Builders and comparisons of {@link Opaque} tokens.
 *
 * Example:
 * ```ts
 * Opaque.equals(Opaque.u64(1), Opaque.u64(1));   // true
 * ```
 */
export const Opaque = {
  /** An opaque holding `n` as 8 little-endian bytes. */
  u64(n: number | bigint): Opaque {
    const v = BigInt(n);
    if (v < 0n || v >= 1n << 64n) throw new InvalidUsage(`Opaque.u64: ${n} is not a u64`);
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, v, true);
    return { codec: 'u64', bytes };
  },
  /** The number in an 8-byte opaque; throws InvalidUsage when it does not hold 8 bytes. */
  toU64(o: Opaque): bigint {
    if (o.bytes.byteLength !== 8) throw new InvalidUsage(`opaque ${o.codec} does not hold 8 bytes`);
    return new DataView(o.bytes.buffer, o.bytes.byteOffset, 8).getBigUint64(0, true);
  },
  /** Whether two opaques have the same codec and bytes. */
  equals(a: Opaque, b: Opaque): boolean {
    return a.codec === b.codec && bufferView(a.bytes).equals(b.bytes);
  },
};
