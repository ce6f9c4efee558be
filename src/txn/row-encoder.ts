/**
 * RowEncoder: a Txn's keys and values turned into bytes, many rows into few buffers.
 *
 * `TextEncoder.encode` allocates a fresh ArrayBuffer per string, which dominates the
 * cost of buffering small rows. For the built-in `Codecs.string` the encoder instead
 * writes each string into a shared slab (a short ASCII string byte by byte, any other
 * with `encodeInto`) and hands out a view of its bytes; every other codec is called
 * as it is.
 *
 * Invariants:
 * - the bytes are exactly what the codec's own `encode` returns (`encodeInto` and
 *   `encode` are the same UTF-8 conversion, lone surrogates included), and a value the
 *   codec refuses is refused by the codec itself, with its own error;
 * - a view is never written again once handed out: a slab only grows forward, and a
 *   string that does not fit starts a new slab (the old one lives as long as its views);
 * - slabs start at {@link FIRST_SLAB_BYTES} and double up to {@link SLAB_BYTES} (a Txn
 *   of one short row allocates little), and only a slab's unused tail is wasted, so
 *   the memory held is the rows' bytes plus at most one tail per slab.
 *
 * Example:
 * ```ts
 * const enc = new RowEncoder({ key: Codecs.string, val: Codecs.unit });
 * const k = enc.key('alice');   // Uint8Array [97, 108, 105, 99, 101], a view into the slab
 * const v = enc.val(null);      // Codecs.unit's empty array
 * ```
 */
import { Codecs, type Codec, type ShardCodecs } from '../persist/codec.js';

/** The first slab's size: a Txn of one small row allocates no more than this. */
const FIRST_SLAB_BYTES = 256;
/** Slabs double up to this size; a longer string gets a slab of its own size. */
const SLAB_BYTES = 64 * 1024;

/**
 * Strings up to this many code units are tried as ASCII in JavaScript first; longer
 * ones go to encodeInto, which is faster per byte.
 */
const SHORT_STRING = 64;

const textEncoder = new TextEncoder();

/** Encodes strings into slabs (see the module docs). */
class StringSlab {
  private slab = new Uint8Array(0);
  private used = 0;
  private nextSize = FIRST_SLAB_BYTES;

  encode(value: string): Uint8Array {
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    const worst = value.length * 3;
    if (this.slab.byteLength - this.used < worst) {
      this.slab = new Uint8Array(Math.max(this.nextSize, worst));
      this.nextSize = Math.min(SLAB_BYTES, this.nextSize * 2);
      this.used = 0;
    }
    const start = this.used;
    const slab = this.slab;
    const n = value.length;
    if (n <= SHORT_STRING) {
      // A short ASCII string is its own UTF-8: copying its code units costs less than
      // the call into encodeInto and the view and result object it needs. The first
      // code unit past ASCII hands the whole string to encodeInto, which overwrites
      // what the loop wrote.
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        slab[start + i] = c;
      }
      if (i === n) {
        this.used = start + n;
        return slab.subarray(start, start + n);
      }
    }
    const { written } = textEncoder.encodeInto(value, slab.subarray(start));
    this.used = start + written;
    return slab.subarray(start, this.used);
  }
}

/** One codec's encode function, through a slab for `Codecs.string`. */
function encoderOf<T>(codec: Codec<T>): (value: T) => Uint8Array {
  if ((codec as Codec<unknown>) !== Codecs.string) return (value) => codec.encode(value);
  const slab = new StringSlab();
  // Anything but a string goes to the codec, which refuses it with its own message.
  return (value) => (typeof value === 'string' ? slab.encode(value) : codec.encode(value));
}

export class RowEncoder<K, V> {
  /** Encodes a key. */
  readonly key: (key: K) => Uint8Array;
  /** Encodes a value. */
  readonly val: (val: V) => Uint8Array;

  constructor(codecs: ShardCodecs<K, V>) {
    this.key = encoderOf(codecs.key);
    this.val = encoderOf(codecs.val);
  }
}
