/**
 * Txn: a write-only transaction across any number of data shards (spec §2.4).
 *
 * Writes are buffered per data shard (encoded at once, so a bad key or value fails
 * at `write`, not at commit); `commitAt(txns, ts)` commits them atomically at `ts`
 * with one compare-and-append on the txns shard. The result is a value:
 * - `{ ok: true, apply }`: durable. `apply.apply(txns)` makes it readable and
 *   returns the Tidy to attach to a later transaction.
 * - `{ ok: false, current }`: `ts` was taken; `current` is the least time that would
 *   work. The Txn keeps its contents, so commit it again at `current` or later.
 *   Its data is not uploaded again: batches are re-timestamped in metadata only.
 *
 * Bounded memory: once the buffered writes pass `spillThresholdBytes` (a TxnsHandle
 * option, 16 MiB by default) they are uploaded to Blob as batches, so a transaction
 * of any size holds about that much in memory.
 *
 * A Txn is single-use: after a successful commit it refuses further use. To give up
 * on an uncommitted Txn whose writes spilled, call `discard()` to delete the
 * uploaded batches.
 *
 * A commit that threw a PersistStorageError with `mayHaveHappened: true` may be in
 * the txns shard: then the Txn refuses further use too (committing it again could
 * write its data twice), and `discard()` keeps its batches, which that commit may
 * reference (blob-deletion.ts). `txns.applyLe(ts)` settles whether it happened.
 *
 * Example:
 * ```ts
 * const txn = txns.begin();
 * await txn.write(d0, 'alice', null, 1);
 * await txn.write(d1, 'bob', null, -1);
 * let res = await txn.commitAt(txns, 3);
 * if (!res.ok) res = await txn.commitAt(txns, res.current);   // retry at the least free time
 * if (res.ok) tidy.merge(await res.apply.apply(txns));
 * ```
 */
import type { Batch, TransmittableBatch } from '../persist/batch.js';
import { mayHaveLanded } from '../persist/blob-deletion.js';
import { InvalidUsage } from '../persist/errors.js';
import { invalidArgument } from '../persist/argument-checks.js';
import { assertShardId, type ShardId } from '../persist/shard-id.js';
import { assertDiff } from '../persist/time.js';
import { Tidy } from './tidy.js';
import type { TxnsHandle } from './txns-handle.js';

/** Rough per-row memory cost beyond the key and value bytes, for the spill threshold. */
const ROW_OVERHEAD_BYTES = 96;

/** @internal The buffered contents for one data shard. */
export class TxnWrite {
  keys: Uint8Array[] = [];
  vals: Uint8Array[] = [];
  diffs: number[] = [];
  /** Batches the caller built (`writeBatch`), as transmittable bytes. */
  staged: TransmittableBatch[] = [];
  /** Batches already uploaded: spilled writes, or carried over from a failed attempt. */
  batches: Batch[] = [];

  get isEmpty(): boolean {
    return this.diffs.length === 0 && this.staged.length === 0 && this.batches.length === 0;
  }
}

export type CommitOutcome = { ok: true; apply: TxnApply } | { ok: false; current: number };

export class Txn<K, V> {
  /** @internal */
  readonly writes = new Map<ShardId, TxnWrite>();
  private tidyWork = new Tidy();
  private bufferedBytes = 0;
  private committedAt: number | undefined;
  /** The time of a commit attempt that may have landed (its error said so). */
  private mayHaveCommittedAt: number | undefined;

  /** @internal Created by `TxnsHandle.begin()`. */
  constructor(private readonly handle: TxnsHandle<K, V>) {}

  /** Buffers an update of `dataId`; its time is the commit time. Spills to Blob past the threshold. */
  async write(dataId: ShardId, key: K, val: V, diff: number): Promise<void> {
    this.checkOpen('write to');
    assertShardId(dataId, 'write data shard id');
    assertDiff(diff, 'write diff');
    const { key: kc, val: vc } = this.handle.dataCodecs;
    const k = kc.encode(key);
    const v = vc.encode(val);
    const w = this.shard(dataId);
    w.keys.push(k);
    w.vals.push(v);
    w.diffs.push(diff);
    this.bufferedBytes += k.byteLength + v.byteLength + ROW_OVERHEAD_BYTES;
    if (this.bufferedBytes >= this.handle.spillThresholdBytes) await this.spill();
  }

  /** Stages a batch built for `dataId` (e.g. by another process); it is re-timestamped to the commit time. */
  writeBatch(dataId: ShardId, batch: TransmittableBatch): void {
    this.checkOpen('write to');
    assertShardId(dataId, 'writeBatch data shard id');
    if (!(batch instanceof Uint8Array)) {
      throw invalidArgument('writeBatch batch', 'a transmittable batch (the Uint8Array of batch.intoTransmittable())', batch);
    }
    this.shard(dataId).staged.push(batch);
  }

  /** Moves every write, staged batch and tidy of `other` into this transaction. */
  merge(other: Txn<K, V>): void {
    this.checkOpen('merge into');
    if (!(other instanceof Txn)) throw invalidArgument('merge other', 'a Txn (from txns.begin())', other);
    other.checkOpen('merge');
    for (const [id, o] of other.writes) {
      const w = this.shard(id);
      w.keys.push(...o.keys);
      w.vals.push(...o.vals);
      w.diffs.push(...o.diffs);
      w.staged.push(...o.staged);
      w.batches.push(...o.batches);
    }
    other.writes.clear();
    this.bufferedBytes += other.bufferedBytes;
    other.bufferedBytes = 0;
    this.tidyWork.merge(other.takeTidy());
  }

  /** Adds tidy work (retractions of applied batches) to be written at this transaction's commit time. */
  tidy(tidy: Tidy): void {
    this.checkOpen('add a tidy to');
    if (!(tidy instanceof Tidy)) throw invalidArgument('tidy', 'a Tidy (from an apply)', tidy);
    this.tidyWork.merge(tidy);
  }

  /** Takes the tidy work back out (e.g. after giving up on a commit). */
  takeTidy(): Tidy {
    const t = this.tidyWork;
    this.tidyWork = new Tidy();
    return t;
  }

  /** Commits at `commitTs`; see the module docs for the outcomes. */
  commitAt(handle: TxnsHandle<K, V>, commitTs: number): Promise<CommitOutcome> {
    this.checkOpen('commit');
    if (handle !== this.handle) {
      throw new InvalidUsage('a Txn must be committed through the TxnsHandle whose begin() created it');
    }
    return handle.commitTxn(this, commitTs);
  }

  /**
   * Deletes any batches this uncommitted transaction uploaded, and drops its contents.
   * After a commit that may have landed, the batches are kept (they may leak).
   */
  async discard(): Promise<void> {
    if (this.committedAt !== undefined) return;
    const keep = this.mayHaveCommittedAt !== undefined;
    for (const w of this.writes.values()) {
      for (const b of w.batches.splice(0)) {
        if (keep) b.markConsumed('kept, because a commit of its Txn may have landed');
        else await b.delete();
      }
    }
    this.writes.clear();
    this.bufferedBytes = 0;
    this.tidyWork = new Tidy();
  }

  /** Whether nothing has been written (tidy work aside). */
  get isEmpty(): boolean {
    for (const w of this.writes.values()) if (!w.isEmpty) return false;
    return true;
  }

  /** @internal */
  get tidyRetractions(): Tidy {
    return this.tidyWork;
  }

  /** @internal Called by the handle once the commit succeeded. */
  markCommitted(ts: number): void {
    this.committedAt = ts;
    this.writes.clear();
    this.bufferedBytes = 0;
    this.tidyWork = new Tidy();
  }

  /**
   * @internal Called by the handle when a commit attempt at `ts` threw `err`: if the
   * error says the commit may have landed, the Txn stops accepting use and keeps its batches.
   */
  commitFailed(ts: number, err: unknown): void {
    if (mayHaveLanded(err)) this.mayHaveCommittedAt = ts;
  }

  /** @internal Buffered rows were turned into batches. */
  resetBuffered(): void {
    this.bufferedBytes = 0;
  }

  private async spill(): Promise<void> {
    for (const [dataId, w] of this.writes) {
      if (w.diffs.length > 0) w.batches.push(await this.handle.buildUnstampedBatch(dataId, w));
    }
    this.bufferedBytes = 0;
  }

  private shard(dataId: ShardId): TxnWrite {
    let w = this.writes.get(dataId);
    if (!w) {
      w = new TxnWrite();
      this.writes.set(dataId, w);
    }
    return w;
  }

  private checkOpen(what: string): void {
    if (this.committedAt !== undefined) {
      throw new InvalidUsage(`cannot ${what} a Txn that was already committed at ${this.committedAt}; begin() a new one`);
    }
    const maybe = this.mayHaveCommittedAt;
    if (maybe !== undefined) {
      throw new InvalidUsage(
        `cannot ${what} a Txn whose commit at ${maybe} may have happened (the store never confirmed it), ` +
          `so committing it again could write its data twice; txns.applyLe(${maybe}) makes it readable if it ` +
          'did, and begin() a new Txn for anything else',
      );
    }
  }
}

/** The result of a successful commit: apply it to make it readable. */
export class TxnApply {
  constructor(
    readonly commitTs: number,
    private readonly empty: boolean,
  ) {}

  /** True when the commit wrote no data (only tidy work, or nothing): its apply may be skipped. */
  isEmpty(): boolean {
    return this.empty;
  }

  /** Applies everything committed up to this commit (`txns.applyLe(commitTs)`); returns the tidy. */
  apply<K, V>(handle: TxnsHandle<K, V>): Promise<Tidy> {
    return handle.applyLe(this.commitTs);
  }

  /** Like `apply`, and also advances every registered data shard's physical upper past the commit. */
  applyEager<K, V>(handle: TxnsHandle<K, V>): Promise<Tidy> {
    return handle.applyEagerLe(this.commitTs);
  }
}
