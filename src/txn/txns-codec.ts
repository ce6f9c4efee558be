/**
 * How txn-wal's bookkeeping is stored as rows of the txns shard (spec §2.2).
 *
 * A txns row is a {@link TxnsEntry}:
 * - `register` rows: `+1` registers the data shard at that time, `-1` forgets it.
 *   A forget carries the forget time, so it never cancels its registration and the
 *   shard's whole history of intervals survives consolidation.
 * - `append` rows: `+1` is a committed batch pointer, `-1` its tidy. A tidy repeats
 *   the exact row, so the two cancel once both are compacted together.
 *
 * Both carry the original operation time as 8 little-endian bytes, since compaction
 * may move the row's persist time forward.
 *
 * {@link TxnsCodecDefault} is byte-exact with the reference system's default codec:
 * the key is the data shard id as the UTF-8 string `"s<uuid>"`; the value is the 8
 * ts bytes for a register, and the batch bytes followed by the 8 ts bytes for an
 * append. Decoding splits the last 8 bytes off: if nothing remains, it is a register.
 *
 * Example (register d0 at 2, then commit a batch B to it at 3):
 * ```
 * ("s…d0", 02 00 00 00 00 00 00 00,        t=2, +1)   register
 * ("s…d0", B ‖ 03 00 00 00 00 00 00 00,    t=3, +1)   committed batch
 * ("s…d0", B ‖ 03 00 00 00 00 00 00 00,    t=5, -1)   its tidy, written later
 * ```
 */
import type { Codec, ShardCodecs } from '../persist/codec.js';
import { Codecs } from '../persist/codec.js';
import { InvariantViolation } from '../persist/errors.js';
import { assertShardId, type ShardId } from '../persist/shard-id.js';
import { decodeTs, encodeTs, TS_BYTES } from './timestamp-bytes.js';

export type TxnsEntry =
  | { readonly kind: 'register'; readonly dataId: ShardId; readonly ts: Uint8Array }
  | { readonly kind: 'append'; readonly dataId: ShardId; readonly ts: Uint8Array; readonly batch: Uint8Array };

/** The entry's original operation time. */
export function entryTs(e: TxnsEntry): number {
  return decodeTs(e.ts);
}

export function registerEntry(dataId: ShardId, ts: number): TxnsEntry {
  return { kind: 'register', dataId, ts: encodeTs(ts) };
}

export function appendEntry(dataId: ShardId, ts: number | Uint8Array, batch: Uint8Array): TxnsEntry {
  return { kind: 'append', dataId, ts: typeof ts === 'number' ? encodeTs(ts) : ts, batch };
}

/**
 * Maps txns entries to and from the txns shard's key and value.
 *
 * Supply one only to read or write a txns shard in another encoding; the default is byte-exact with
 * the reference system.
 *
 * Example:
 * ```ts
 * const myCodec: TxnsCodec = { codecs: { key: Codecs.string, val: Codecs.bytes }, encode, decode };
 * const txns = await TxnsHandle.open(client, { txnsId, codecs, txnsCodec: myCodec });
 * ```
 */
export interface TxnsCodec<K = string, V = Uint8Array> {
  /** The key/value codecs the txns shard is opened with. */
  readonly codecs: ShardCodecs<K, V>;
  /** The txns shard's key and value for `entry`. */
  encode(entry: TxnsEntry): [K, V];
  /** Decodes a stored row; throws InvariantViolation on bytes no encoder produces. */
  decode(key: K, val: V): TxnsEntry;
}

/** The txns shard's key: a data shard id, stored as its UTF-8 string (the string codec's bytes, under its own name). */
const shardIdCodec: Codec<ShardId> = {
  name: 'shard-id',
  encode(value) {
    assertShardId(value);
    return Codecs.string.encode(value);
  },
  decode: Codecs.string.decode,
};

export const TxnsCodecDefault: TxnsCodec<ShardId, Uint8Array> = {
  codecs: { key: shardIdCodec, val: Codecs.bytes },
  encode(entry) {
    if (entry.kind === 'register') return [entry.dataId, Uint8Array.from(entry.ts)];
    const val = new Uint8Array(entry.batch.length + TS_BYTES);
    val.set(entry.batch, 0);
    val.set(entry.ts, entry.batch.length);
    return [entry.dataId, val];
  },
  decode(key, val) {
    if (val.length < TS_BYTES) {
      throw new InvariantViolation(
        `txns row for ${key} has a ${val.length}-byte value; every row ends with ${TS_BYTES} timestamp bytes`,
      );
    }
    const split = val.length - TS_BYTES;
    const ts = val.subarray(split);
    if (split === 0) return { kind: 'register', dataId: key, ts };
    return { kind: 'append', dataId: key, ts, batch: val.subarray(0, split) };
  },
};
