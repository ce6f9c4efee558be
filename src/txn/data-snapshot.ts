/**
 * DataSnapshot: how to read a data shard at a time its physical upper may not have
 * reached yet (spec §2.7).
 *
 * A data shard's physical upper moves only when it is written, while its logical
 * upper moves with every txns commit. `TxnsCacheState.dataSnapshot(id, asOf)`
 * returns `{ latestWrite, asOf, emptyTo }` with these guarantees:
 * - `latestWrite <= asOf < emptyTo`;
 * - nothing unapplied lies in `[asOf, emptyTo)`, nor in `(latestWrite, emptyTo)`.
 *
 * `unblockRead(writer)` then makes a physical read at `asOf` possible: it waits for
 * `latestWrite` to be applied (by whoever applies; it applies nothing itself) and
 * fills the shard with an empty append up to `emptyTo`. The fill is metadata only,
 * and it happens even for an unregistered shard (as in the reference system).
 *
 * Example: writes at 3 and 5 are committed, only 3 is applied, the cache is past
 * 5. A snapshot at 4 has `latestWrite 3` and `emptyTo 5`: it fills `[4, 5)` and
 * reads, and the apply of 5 still fits at `[5, 6)`.
 */
import type { ReadHandle } from '../persist/read-handle.js';
import type { ShardId } from '../persist/shard-id.js';
import type { Update } from '../persist/update.js';
import { WriteHandle } from '../persist/write-handle.js';
import { InvariantViolation } from '../persist/errors.js';

/**
 * How to read a data shard at `asOf` when its physical upper may lag its logical upper: wait for
 * `latestWrite` to be applied, fill to `emptyTo`, then read physically.
 *
 * Get one from `TxnsCache.dataSnapshot` (after `updateGt(asOf)`).
 *
 * Example:
 * ```ts
 * await cache.updateGt(5);
 * const snap = cache.dataSnapshot(d0, 5);
 * const rows = await snap.snapshotAndFetch(await client.openLeasedReader(d0, codecs));
 * ```
 */
export class DataSnapshot {
  constructor(
    /** The data shard to read. */
    readonly dataId: ShardId,
    /** The latest write at or before `asOf` that may still be unapplied. */
    readonly latestWrite: number | undefined,
    /** The time to read at. */
    readonly asOf: number,
    /** The shard is known empty of txn writes in `[asOf, emptyTo)`. */
    readonly emptyTo: number,
  ) {}

  /**
   * Waits until `latestWrite` is applied, then advances the physical upper to at
   * least `emptyTo`, so a physical read at `asOf` returns the logical contents.
   */
  async unblockRead<K, V>(writer: WriteHandle<K, V>, opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.latestWrite !== undefined) await writer.waitForUpperPast(this.latestWrite, opts);
    const upper = writer.sharedUpper();
    if (upper >= this.emptyTo) return;
    if (this.latestWrite !== undefined && !(this.latestWrite < upper)) {
      throw new InvariantViolation(`data shard ${this.dataId}: upper ${upper} not past the applied write ${this.latestWrite}`);
    }
    opts.signal?.throwIfAborted();
    await writer.advanceUpper(this.emptyTo);
  }

  /**
   * The shard's contents as of `asOf` through `reader`: unblocks the read with a
   * temporary writer, then reads. Every row is at time `asOf`, consolidated.
   */
  async snapshotAndFetch<K, V>(reader: ReadHandle<K, V>, opts: { signal?: AbortSignal } = {}): Promise<Update<K, V>[]> {
    const writer = new WriteHandle(reader.ctx, 'data read physical upper');
    try {
      await this.unblockRead(writer, opts);
    } finally {
      await writer.expire();
    }
    return reader.snapshotAndFetch(this.asOf, opts);
  }
}
