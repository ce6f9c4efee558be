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
 * Bounded memory: writes are buffered in columns (their bytes copied, so a caller may
 * reuse its arrays), and once they pass `spillThresholdBytes` (a TxnsHandle option,
 * 4 MiB by default) they are uploaded to Blob as batches. A transaction of any size
 * holds about that much, plus one encoded part while it uploads.
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
 * The commit lives here, beside the Txn (as `commit_at` lives beside Materialize's
 * Txn in txn_write.rs), and reaches the handle only through its TxnsPort
 * (txns-port.ts): one `appendAtTs` (txns-append.ts) under the handle's lock. Each
 * attempt checks that every shard is registered through this handle, uploads what
 * is still buffered, re-timestamps every batch to `ts` and writes a pointer row per
 * batch plus the tidy's retractions. An attempt that did not land puts its batches
 * back, so the Txn still holds all it held.
 *
 * Example:
 * ```ts
 * const txn = txns.begin();
 * await txn.write(d0, 'alice', null, 1);
 * await txn.write(d1, 'bob', null, -1);
 * await txn.writeMany(d1, [['carol', null, 1], ['dave', null, 1]]);   // many rows, checked once
 * let res = await txn.commitAt(txns, 3);
 * if (!res.ok) res = await txn.commitAt(txns, res.current);   // retry at the least free time
 * if (res.ok) tidy.merge(await res.apply.apply(txns));
 * ```
 */
import type { TransmittableBatch } from '../persist/batch.js';
import { UPDATE_OVERHEAD_BYTES } from '../persist/update-columns.js';
import { mayHaveLanded } from '../persist/blob-deletion.js';
import { InvalidUsage } from '../persist/errors.js';
import { arrayOf, invalidArgument } from '../persist/argument-checks.js';
import { assertShardId, type ShardId } from '../persist/shard-id.js';
import { assertDiff, assertTimestamp } from '../persist/time.js';
import type { WriteHandle } from '../persist/write-handle.js';
import { NotRegistered, NotRegisteredWithHandle } from './errors.js';
import { parseIdBatch, wrapIdBatch } from './id-batch.js';
import { Tidy } from './tidy.js';
import { RowEncoder } from './row-encoder.js';
import { TxnApply } from './txn-apply.js';
import { TxnWrite } from './txn-write.js';
import { appendAtTs, type TxnsAppendAttempt } from './txns-append.js';
import { appendEntry, type TxnsEntry } from './txns-codec.js';
import type { TxnsHandle } from './txns-handle.js';
import type { TxnsPort } from './txns-port.js';

/** A commit's outcome carries a TxnApply, so callers of commitAt find it here too. */
export { TxnApply } from './txn-apply.js';

/**
 * The outcome of {@link Txn.commitAt}: durable with a {@link TxnApply}, or the least free time when
 * `ts` was taken (the Txn keeps its writes; commit again there).
 *
 * Example:
 * ```ts
 * let res: CommitOutcome = await txn.commitAt(txns, ts);
 * if (!res.ok) res = await txn.commitAt(txns, res.current);
 * ```
 */
export type CommitOutcome =
  | {
      /** Committed: durable at the time asked for. */
      ok: true;
      /** Apply it to make the commit readable. */
      apply: TxnApply;
    }
  | {
      /** The time was taken: nothing was committed, the Txn keeps its writes. */
      ok: false;
      /** The least time a commit could use now. */
      current: number;
    };

/** What a landed commit attempt wrote: its batches, counted for the metrics. */
interface CommittedBatches {
  count: number;
  bytes: number;
}

/**
 * A write-only transaction across any number of data shards, committed atomically at one time with
 * one compare-and-append on the txns shard. Begin one with `TxnsHandle.begin()`.
 *
 * Writes are buffered (and spilled to Blob past `spillThresholdBytes`); a taken
 * timestamp returns `{ ok: false, current }` and the Txn can be committed again without
 * uploading its data again. A Txn is single-use.
 *
 * Example:
 * ```ts
 * const txn = txns.begin();
 * await txn.write(d0, 'alice', null, 1);
 * await txn.write(d1, 'bob', null, -1);
 * let res = await txn.commitAt(txns, 3);
 * if (!res.ok) res = await txn.commitAt(txns, res.current);   // retry at the least free time
 * if (res.ok) await res.apply.apply(txns);
 * ```
 */
export class Txn<K, V> {
  private readonly writes = new Map<ShardId, TxnWrite>();
  private tidyWork = new Tidy();
  private bufferedBytes = 0;
  /** Keys and values into bytes, strings in bulk (row-encoder.ts). */
  private readonly encoder: RowEncoder<K, V>;
  private committedAt: number | undefined;
  /** The time of a commit attempt that may have landed (its error said so). */
  private mayHaveCommittedAt: number | undefined;

  /** @internal Created by `TxnsHandle.begin()`, which hands over the handle's port. */
  constructor(
    private readonly owner: TxnsHandle<K, V>,
    private readonly port: TxnsPort<K, V>,
  ) {
    this.encoder = new RowEncoder(port.dataCodecs);
  }

  /** Buffers an update of `dataId`; its time is the commit time. Spills to Blob past the threshold. */
  async write(dataId: ShardId, key: K, val: V, diff: number): Promise<void> {
    if (this.bufferWrite(dataId, key, val, diff)) await this.spill();
  }

  /**
   * @internal `write` without a promise per row, for loops over many rows (txnSink):
   * buffers the update (checked as `write` checks it) and answers whether the buffer
   * has reached the spill threshold; when it says so, `await spillIfFull()` before
   * buffering more.
   */
  bufferWrite(dataId: ShardId, key: K, val: V, diff: number): boolean {
    this.checkOpen('write to');
    const w = this.shardChecked(dataId, 'write data shard id');
    assertDiff(diff, 'write diff');
    // Both fields are encoded (or refused by their codec) before anything is buffered.
    this.bufferedBytes += w.add(this.encoder.keyField(key), this.encoder.valField(val), diff) + UPDATE_OVERHEAD_BYTES;
    return this.bufferedBytes >= this.port.spillThresholdBytes;
  }

  /** @internal Spills the buffered rows to Blob if they have reached the threshold (see {@link bufferWrite}). */
  async spillIfFull(): Promise<void> {
    if (this.bufferedBytes >= this.port.spillThresholdBytes) await this.spill();
  }

  /**
   * Buffers many updates of `dataId`, rows `[key, val, diff]`, as `write` would one by
   * one, but all or nothing: a bad row (named by its index) leaves the Txn as it was,
   * the rows before it taken back out. The shard id is checked once, and the rows are
   * encoded straight into the shard's buffer. Past the spill threshold the rows are
   * spilled once all are buffered: for bounded memory, pass rows in chunks of about
   * `spillThresholdBytes`.
   *
   * ```ts
   * await txn.writeMany(d0, [['alice', null, 1], ['bob', null, -1]]);
   * ```
   */
  async writeMany(dataId: ShardId, rows: Iterable<readonly [K, V, number]>): Promise<void> {
    this.checkOpen('write to');
    assertShardId(dataId, 'writeMany data shard id');
    const list = arrayOf(rows, 'writeMany rows');
    if (list.length === 0) return;
    const known = this.writes.has(dataId);
    const w = this.shard(dataId);
    const before = w.rows.length;
    let bytes = 0;
    try {
      for (let i = 0; i < list.length; i++) {
        const row = list[i];
        if (!Array.isArray(row) || row.length !== 3) throw invalidArgument(`writeMany rows[${i}]`, 'an array [key, val, diff]', row);
        const [key, val, diff] = row as readonly [K, V, number];
        assertDiff(diff, `writeMany rows[${i}] diff`);
        bytes += w.add(this.encoder.keyField(key), this.encoder.valField(val), diff) + UPDATE_OVERHEAD_BYTES;
      }
    } catch (err) {
      // All or nothing: no await since the first push, so nothing has seen these rows.
      w.rows.truncate(before);
      if (!known) {
        this.writes.delete(dataId);
        this.port.columnsPool.give(w.rows);
      }
      throw err;
    }
    this.bufferedBytes += bytes;
    if (this.bufferedBytes >= this.port.spillThresholdBytes) await this.spill();
  }

  /**
   * @internal Buffers rows already checked and encoded with this handle's codecs (group
   * commit encodes each submission when it accepts it); `dataId` is checked here.
   */
  async writeEncoded(dataId: ShardId, rows: readonly { keyBytes: Uint8Array; valBytes: Uint8Array; diff: number }[]): Promise<void> {
    this.checkOpen('write to');
    assertShardId(dataId, 'writeEncoded data shard id');
    if (rows.length === 0) return;
    const w = this.shard(dataId);
    for (const r of rows) this.bufferedBytes += w.add(r.keyBytes, r.valBytes, r.diff) + UPDATE_OVERHEAD_BYTES;
    if (this.bufferedBytes >= this.port.spillThresholdBytes) await this.spill();
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
    for (const [id, o] of other.writes) this.shard(id).takeFrom(o);
    other.releaseWrites();
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

  /**
   * Commits at `commitTs`; see the module docs for the outcomes.
   *
   * `opts.expectUpper`: commit only if the txns upper is exactly that when the rows
   * land, so nothing is committed between it and `commitTs` (a read-write
   * transaction validated everything below it). Any later upper returns
   * `{ ok: false, current }` at once; validate up to `current` and try again.
   */
  commitAt(handle: TxnsHandle<K, V>, commitTs: number, opts: { expectUpper?: number } = {}): Promise<CommitOutcome> {
    this.checkOpen('commit');
    if (handle !== this.owner) {
      throw new InvalidUsage('a Txn must be committed through the TxnsHandle whose begin() created it');
    }
    assertTimestamp(commitTs, 'commitTs');
    const { expectUpper } = opts;
    if (expectUpper !== undefined) {
      assertTimestamp(expectUpper, 'expectUpper');
      if (expectUpper > commitTs) throw new InvalidUsage(`commitAt(${commitTs}): expectUpper ${expectUpper} is past the commit time; it must be at most ${commitTs}`);
    }
    const port = this.port;
    return port.exclusive(() => port.metrics.commit.run(() => this.commitLocked(commitTs, expectUpper), (r) => !r.ok));
  }

  /**
   * Deletes any batches this uncommitted transaction uploaded, and drops its contents.
   * After a commit that may have landed, the batches are kept (they may leak).
   */
  async discard(): Promise<void> {
    if (this.committedAt !== undefined) return;
    const keep = this.mayHaveCommittedAt !== undefined;
    for (const w of this.writes.values()) {
      for (const b of w.takeBatches()) {
        if (keep) b.markConsumed('kept, because a commit of its Txn may have landed');
        else await b.delete();
      }
    }
    this.releaseWrites();
    this.bufferedBytes = 0;
    this.tidyWork = new Tidy();
  }

  /** Whether nothing has been written (tidy work aside). */
  get isEmpty(): boolean {
    for (const w of this.writes.values()) if (!w.isEmpty) return false;
    return true;
  }

  private async commitLocked(commitTs: number, expectUpper: number | undefined): Promise<CommitOutcome> {
    const port = this.port;
    const res = await appendAtTs(port, commitTs, port.metrics.commit, (upper) => this.commitAttempt(commitTs, upper), expectUpper);
    if (!res.ok) return res;
    port.metrics.batchCommitCount.inc(res.landed.count);
    port.metrics.batchCommitBytes.inc(res.landed.bytes);
    this.committedAt = commitTs;
    this.releaseWrites();
    this.bufferedBytes = 0;
    this.tidyWork = new Tidy();
    return { ok: true, apply: new TxnApply(commitTs, res.landed.count === 0) };
  }

  /** One attempt at `commitTs` against the txns shard at `upper`. */
  private async commitAttempt(commitTs: number, upper: number): Promise<TxnsAppendAttempt<CommittedBatches>> {
    const writers = this.commitWriters(commitTs, upper);
    // Buffered rows become batches held by the txn, so nothing is lost if we fail below.
    for (const [dataId, w] of this.writes) {
      const writer = writers.get(dataId)!;
      await w.uploadBuffered(writer);
      w.adoptStaged(writer);
    }
    this.bufferedBytes = 0;

    const entries: [TxnsEntry, number][] = [];
    const raws = new Map<ShardId, Uint8Array[]>();
    let bytes = 0;
    for (const [dataId, w] of this.writes) {
      const list: Uint8Array[] = [];
      for (const b of w.takeBatches()) {
        b.rewriteTs(commitTs, commitTs + 1);
        const raw = wrapIdBatch(b.intoTransmittable());
        list.push(raw);
        entries.push([appendEntry(dataId, commitTs, raw), 1]);
        bytes += raw.byteLength;
      }
      raws.set(dataId, list);
    }
    const count = entries.length;
    for (const r of this.port.cache.filterRetractions(upper, this.tidyWork.retractions.values())) {
      entries.push([appendEntry(r.dataId, r.ts, r.raw), -1]);
    }
    return {
      name: 'txns commit',
      entries,
      landed: { count, bytes },
      // The batches go back into the txn, to be re-timestamped (in metadata only) next time.
      onMismatch: () => this.restash(writers, raws),
      // If the commit may have landed, the txn keeps them (never deleting what that
      // commit may reference) and refuses reuse.
      onThrow: (err) => {
        this.restash(writers, raws);
        if (mayHaveLanded(err)) this.mayHaveCommittedAt = commitTs;
      },
    };
  }

  /** The commit writer of every shard written, refusing shards not registered (through this handle) at `upper`. */
  private commitWriters(commitTs: number, upper: number): Map<ShardId, WriteHandle<K, V>> {
    const writers = new Map<ShardId, WriteHandle<K, V>>();
    for (const dataId of this.writes.keys()) {
      if (!this.port.cache.registeredAtProgress(dataId, upper)) {
        throw new NotRegistered(
          `cannot commit to data shard ${dataId} at ${commitTs}: it is not registered in txns shard ${this.port.txnsId}; ` +
            `register it first with txns.register(ts, [writer]) at a ts below ${commitTs}`,
        );
      }
      const w = this.port.dataWriters.commitWriter(dataId);
      if (!w) {
        throw new NotRegisteredWithHandle(
          `cannot commit to data shard ${dataId}: it is registered, but not through this TxnsHandle; ` +
            'register it through this handle too (registering again is a no-op that hands the handle a writer)',
        );
      }
      writers.set(dataId, w);
    }
    return writers;
  }

  /** Puts the batches of an attempt that did not land back into the txn. */
  private restash(writers: Map<ShardId, WriteHandle<K, V>>, raws: Map<ShardId, Uint8Array[]>): void {
    for (const [dataId, list] of raws) {
      const w = this.writes.get(dataId)!;
      for (const raw of list) w.batches.push(writers.get(dataId)!.batchFromTransmittable(parseIdBatch(raw)));
    }
  }

  /** Uploads every shard's buffered rows, through its commit writer where the handle has one. */
  private async spill(): Promise<void> {
    for (const [dataId, w] of this.writes) {
      if (w.rows.length > 0) await w.uploadBuffered(await this.port.dataWriters.batchWriter(dataId));
    }
    this.bufferedBytes = 0;
  }

  /**
   * Drops every shard's contents, giving their row buffers back to the handle's pool;
   * a buffer an upload still borrows (a spill racing a discard) is left to the GC.
   */
  private releaseWrites(): void {
    for (const w of this.writes.values()) if (w.rowsIdle) this.port.columnsPool.give(w.rows);
    this.writes.clear();
  }

  /** The shard's contents; its id is checked the first time the Txn sees it (once per shard, not per row). */
  private shardChecked(dataId: ShardId, what: string): TxnWrite {
    const w = this.writes.get(dataId);
    if (w) return w;
    assertShardId(dataId, what);
    return this.shard(dataId);
  }

  private shard(dataId: ShardId): TxnWrite {
    let w = this.writes.get(dataId);
    if (!w) {
      w = new TxnWrite(this.port.columnsPool.take());
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
