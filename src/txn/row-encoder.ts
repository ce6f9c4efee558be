/**
 * RowEncoder: keys and values turned into bytes, many rows into few buffers.
 *
 * `TextEncoder.encode` allocates a fresh ArrayBuffer per string, which dominates the
 * cost of buffering small rows. So `Codecs.string` is never called for a string:
 * - `keyField` / `valField` (a Txn's writes) pass the string itself on, and the Txn's
 *   UpdateColumns writes its UTF-8 straight into the column slab: no bytes of its own;
 * - `key` / `val` (group commit, which keeps each submission's bytes) write it into a
 *   shared slab (codec.ts `writeUtf8`) and hand out a view of its bytes.
 * Every other codec is called as it is.
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
 * enc.keyField('alice');        // 'alice': UpdateColumns.push writes its UTF-8 in place
 * ```
 */
import { Codecs, utf8Capacity, writeUtf8, type Codec, type ShardCodecs } from '../persist/codec.js';
import type { RowField } from '../persist/update-columns.js';

/** The first slab's size: a Txn of one small row allocates no more than this. */
const FIRST_SLAB_BYTES = 256;
/** Slabs double up to this size; a longer string gets a slab of its own size. */
const SLAB_BYTES = 64 * 1024;

/** Encodes strings into slabs (see the module docs). */
class StringSlab {
  private slab = new Uint8Array(0);
  private used = 0;
  private nextSize = FIRST_SLAB_BYTES;

  encode(value: string): Uint8Array {
    const worst = utf8Capacity(value);
    if (this.slab.byteLength - this.used < worst) {
      this.slab = new Uint8Array(Math.max(this.nextSize, worst));
      this.nextSize = Math.min(SLAB_BYTES, this.nextSize * 2);
      this.used = 0;
    }
    const start = this.used;
    this.used = start + writeUtf8(value, this.slab, start);
    return this.slab.subarray(start, this.used);
  }
}

/** One codec's encode function, through a slab for `Codecs.string`. */
function encoderOf<T>(codec: Codec<T>): (value: T) => Uint8Array {
  if ((codec as Codec<unknown>) !== Codecs.string) return (value) => codec.encode(value);
  const slab = new StringSlab();
  // Anything but a string goes to the codec, which refuses it with its own message.
  return (value) => (typeof value === 'string' ? slab.encode(value) : codec.encode(value));
}

/**
 * One codec's encoding as a {@link RowField}: for `Codecs.string`, a string is passed
 * through as it is (the columns write its UTF-8 in place); anything else goes to the codec.
 */
function fieldEncoderOf<T>(codec: Codec<T>): (value: T) => RowField {
  if ((codec as Codec<unknown>) !== Codecs.string) return (value) => codec.encode(value);
  return (value) => (typeof value === 'string' ? value : codec.encode(value));
}

export class RowEncoder<K, V> {
  /** Encodes a key. */
  readonly key: (key: K) => Uint8Array;
  /** Encodes a value. */
  readonly val: (val: V) => Uint8Array;
  /**
   * A key as UpdateColumns stores it: a string key of `Codecs.string` as it is, to be
   * written as UTF-8 straight into the columns' slab (no bytes of its own at all);
   * any other key encoded, and refused, by its codec.
   */
  readonly keyField: (key: K) => RowField;
  /** A value as UpdateColumns stores it (see {@link keyField}). */
  readonly valField: (val: V) => RowField;

  constructor(codecs: ShardCodecs<K, V>) {
    this.key = encoderOf(codecs.key);
    this.val = encoderOf(codecs.val);
    this.keyField = fieldEncoderOf(codecs.key);
    this.valField = fieldEncoderOf(codecs.val);
  }
}
