/**
 * TxnsPort: the part of a TxnsHandle that a Txn's commit and spill, and apply, work
 * through — and nothing else of the handle.
 *
 * The handle builds one port when it opens and hands it to every Txn it begins, so
 * the commit can live beside the Txn (as `commit_at` lives beside Materialize's Txn
 * in txn_write.rs) without the handle exposing its writers, cache or lock to users.
 *
 * Contract:
 * - `exclusive` runs its function under the handle's lock: every write to the txns
 *   shard, and every apply, runs inside it (one operation at a time per handle). It
 *   throws HandleExpired once the handle is closed.
 * - `txnsWrite`, `cache`, `txnsCodec` and `log` are what `appendAtTs` needs
 *   (txns-append.ts); `dataWriters` holds the data-shard writers (data-writers.ts).
 *
 * Example: `txns.begin()` → `new Txn(txns, port)`; `txn.commitAt(txns, 5)` →
 * `port.exclusive(() => appendAtTs(port, 5, port.metrics.commit, …))`.
 */
import type { ShardCodecs } from '../persist/codec.js';
import type { ShardId } from '../persist/shard-id.js';
import type { ColumnsPool } from '../persist/update-columns.js';
import type { DataWriters } from './data-writers.js';
import type { TxnMetrics } from './metrics.js';
import type { TxnsAppender } from './txns-append.js';

export interface TxnsPort<K, V> extends TxnsAppender {
  readonly txnsId: ShardId;
  readonly dataCodecs: ShardCodecs<K, V>;
  readonly dataWriters: DataWriters<K, V>;
  readonly metrics: TxnMetrics;
  /** A Txn uploads its buffered writes once they pass this many bytes. */
  readonly spillThresholdBytes: number;
  /** Row buffers Txns take for their shards and give back once committed or discarded. */
  readonly columnsPool: ColumnsPool;
  /** Apply appends batches under the schema they were written with. */
  readonly applyEnsureSchemaMatch: boolean;
  /** Runs `fn` under the handle's lock; throws HandleExpired once the handle is closed. */
  exclusive<R>(fn: () => Promise<R>): Promise<R>;
}
