/**
 * TxnsView: a database's txns shard as txn-wal's read side sees it (a
 * {@link TxnsCacheState}, the state machine inside `TxnsCache`), built by reading the
 * shard's stored state directly instead of subscribing with a leased reader.
 *
 * Construction mirrors `TxnsCache.open`: the shard's rows, times at or below the
 * since advanced to the since (what a snapshot at the since delivers), the later
 * rows at their own times, all pushed with progress = the txns upper. The view then
 * answers what the library would: which shards are registered, the untidied batch
 * pointers and register/forget work (`unapplied()`), the txns upper, which is the
 * logical upper of every registered data shard.
 *
 * {@link advanceTxnsView} moves a view forward after the shard changed: when the
 * since is still below the view's upper only the rows in `[old upper, new upper)` are
 * read and pushed (no time there was advanced by compaction); otherwise compaction
 * may have moved rows the view already holds, so the view is built afresh.
 *
 * Example (rows `(d0 reg@1 +1)`, `(d0 A@3 +1)`, upper 5):
 * ```ts
 * const view = await readTxnsView(reader, txnsId);
 * view.upper;                                    // 5: d0's logical upper
 * view.cache.unappliedBatchList();               // [{ dataId: d0, ts: 3, raw: A }]
 * ```
 */
import { Codecs } from '../persist/codec.js';
import type { PartData } from '../persist/part.js';
import type { ShardId } from '../persist/shard-id.js';
import type { ShardState } from '../persist/state.js';
import { TxnsCacheState, type TxnsRow } from '../txn/txns-cache-state.js';
import { TxnsCodecDefault } from '../txn/txns-codec.js';
import type { FetchPart, ShardReader } from './shard-reader.js';
import { readRange, spineBatches } from './shard-updates.js';

/** A txns shard read at one state: its upper, since, seqno, and the cache state built from its rows. */
export interface TxnsView {
  readonly txnsId: ShardId;
  /** The txns upper: every registered data shard is logically complete below it. */
  readonly upper: number;
  readonly since: number;
  readonly seqno: number;
  readonly cache: TxnsCacheState;
}

function rowsOf(data: PartData, since: number): TxnsRow[] {
  const rows: TxnsRow[] = [];
  for (let i = 0; i < data.times.length; i++) {
    const entry = TxnsCodecDefault.decode(Codecs.string.decode(data.keys[i]!) as ShardId, data.vals[i]!);
    rows.push({ entry, t: Math.max(data.times[i]!, since), diff: data.diffs[i]! });
  }
  return rows;
}

async function build(txnsId: ShardId, state: ShardState, fetch: FetchPart): Promise<TxnsView> {
  const { upper, since } = state.meta;
  const cache = new TxnsCacheState(txnsId, since, undefined);
  const data = await readRange(spineBatches(state), fetch, 0, upper);
  cache.pushEntries(rowsOf(data, since), upper);
  return { txnsId, upper, since, seqno: state.seqno, cache };
}

/**
 * The view of the txns shard `txnsId` read by `reader` (undefined: the shard was
 * never created, as after a crash between the catalog entry and the first open:
 * an empty view at upper 0).
 */
export async function readTxnsView(reader: ShardReader | undefined, txnsId: ShardId): Promise<TxnsView> {
  if (!reader) return { txnsId, upper: 0, since: 0, seqno: 0, cache: new TxnsCacheState(txnsId, 0, undefined) };
  return reader.read((state, fetch) => build(txnsId, state, fetch));
}

/** `view` moved to the reader's current state (see the module doc); `view` itself may be updated in place. */
export async function advanceTxnsView(view: TxnsView, reader: ShardReader): Promise<TxnsView> {
  return reader.read(async (state, fetch) => {
    const { upper, since } = state.meta;
    if (upper === view.upper) return { ...view, seqno: state.seqno, since };
    if (!(since < view.upper)) return build(view.txnsId, state, fetch);
    const data = await readRange(spineBatches(state), fetch, view.upper, upper);
    view.cache.pushEntries(rowsOf(data, since), upper);
    return { txnsId: view.txnsId, upper, since, seqno: state.seqno, cache: view.cache };
  });
}
