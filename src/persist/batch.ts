/**
 * Batches: updates uploaded to Blob (or kept inline when small) before they are
 * linked into a shard with compare-and-append.
 *
 * A batch has a description `[lower, upper)` (every update has `lower <= t < upper`)
 * and a since (always the minimum for batches that are not compaction output).
 *
 * Life cycle: build it (`WriteHandle.batch`, or a {@link BatchBuilder}), then either
 * append it (`compareAndAppendBatch`), make it transmittable (to append it from
 * another handle or process), or `delete()` it. A batch that is simply dropped
 * leaks its blobs; a warning is logged when that is noticed.
 *
 * `rewriteTs(frontier, newUpper)` re-timestamps a batch in metadata only: every
 * update then reads as `max(t, frontier)`. txn-wal uses it to retry a commit at a new
 * time without uploading the data again.
 *
 * Example:
 * ```ts
 * const b = await writer.batch([['a', null, 0, 1]], 0, 1);   // [0, 1)
 * b.rewriteTs(7, 8);                                         // now reads as ('a', 7, +1), [0, 8)
 * await writer.compareAndAppendBatch([b], 7, 8);
 * ```
 */
import { randomUUID } from 'node:crypto';
import type { Blob } from '../location/blob.js';
import type { PersistConfig } from './config.js';
import { consolidateColumns } from './consolidate.js';
import { deleteUnreferenced, mayHaveLanded, partKeys, type WriteOutcome } from './blob-deletion.js';
import { deleteParts } from './fetch.js';
import { BUILD_VERSION, FORMAT_VERSION, Proto, checkFormatVersion, decodeMessage, encodeMessage } from './encoding.js';
import {
  BatchConsumed,
  BatchNotFromThisShard,
  InvalidBounds,
  InvalidRewrite,
  UpdateBeyondUpper,
  UpdateNotBeyondLower,
} from './errors.js';
import { hollowBatchFromProto, hollowBatchToProto, type HollowBatch, type ProtoHollowBatchShape } from './hollow-batch.js';
import { encodeUpdateColumns, type HollowPart } from './part.js';
import { UPDATE_OVERHEAD_BYTES, UpdateColumns } from './update-columns.js';
import { withStorageRetry } from './storage-retry.js';
import { assertDiff, assertFrontier, assertTimestamp } from './time.js';

/**
 * A batch in encoded form (a `ProtoBatch`), which any handle on the same shard can append.
 *
 * Use it to hand a batch built in one process to a writer in another (txn-wal stores them in the
 * txns shard).
 *
 * Example:
 * ```ts
 * const bytes: TransmittableBatch = (await writer.batch(rows, 0, 1)).intoTransmittable();
 * // elsewhere, a writer of the same shard:
 * const again = writerElsewhere.batchFromTransmittable(bytes);
 * await writerElsewhere.compareAndAppendBatch([again], 0, 1);
 * ```
 */
export type TransmittableBatch = Uint8Array;

const leakWarnings = new FinalizationRegistry<{ shardId: string; parts: number; log: PersistConfig['logger'] }>(
  ({ shardId, parts, log }) => {
    log.warn({ shardId, parts }, 'a persist Batch was dropped without being appended or deleted: its blobs leak');
  },
);

/**
 * Updates uploaded (or held inline) and not yet part of a shard; append it, make it transmittable,
 * or delete it.
 *
 * Example:
 * ```ts
 * const b = await writer.batch([['a', null, 0, 1]], 0, 1);
 * await writer.compareAndAppendBatch([b], 0, 1);
 * ```
 */
export class Batch {
  private consumedBy: string | undefined;
  private rewrittenTo: number | undefined;

  constructor(
    /** The shard the batch was built for. */
    readonly shardId: string,
    private hollowBatch: HollowBatch,
    /** The schema of the key codec it was encoded with. */
    readonly keySchema: string,
    /** The schema of the value codec it was encoded with. */
    readonly valSchema: string,
    private readonly blob: Blob,
    private readonly cfg: PersistConfig,
    /** The txnwal version that wrote it. */
    readonly version: string = BUILD_VERSION,
  ) {
    if (hollowBatch.parts.some((p) => p.key)) {
      leakWarnings.register(this, { shardId, parts: hollowBatch.parts.length, log: cfg.logger }, this);
    }
    const rewrites = hollowBatch.parts.map((p) => p.tsRewrite).filter((t) => t !== undefined);
    if (rewrites.length > 0) this.rewrittenTo = Math.max(...rewrites);
  }

  /** Every update has `t >= lower`. */
  get lower(): number {
    return this.hollowBatch.lower;
  }
  /** Every update has `t < upper`. */
  get upper(): number {
    return this.hollowBatch.upper;
  }
  /** The batch's since: the minimum for written batches, the compaction frontier for merged ones. */
  get since(): number {
    return this.hollowBatch.since;
  }
  /** How many updates it holds (before consolidation). */
  get updateCount(): number {
    return this.hollowBatch.updateCount;
  }
  /** The frontier the batch was last rewritten to, if any. */
  get rewrittenTs(): number | undefined {
    return this.rewrittenTo;
  }
  /** Whether it was appended, deleted or made transmittable (it can no longer be used). */
  get isConsumed(): boolean {
    return this.consumedBy !== undefined;
  }
  /**
   * The hollow batch, without consuming it.
   *
   * @hidden
   */
  get hollow(): HollowBatch {
    this.checkLive('read');
    return this.hollowBatch;
  }
  /** Total encoded size of the batch's parts. */
  get encodedSizeBytes(): number {
    return this.hollowBatch.parts.reduce((n, p) => n + p.encodedSizeBytes, 0);
  }
  /** Schema ids recorded on the batch's parts. */
  schemas(): number[] {
    return [...new Set(this.hollowBatch.parts.flatMap((p) => (p.schemaId === undefined ? [] : [p.schemaId])))];
  }

  private checkLive(op: string): void {
    if (this.consumedBy) {
      throw new BatchConsumed(
        `cannot ${op} a batch of ${this.shardId} that was already ${this.consumedBy}; build a new batch`,
      );
    }
  }

  /**
   * Re-timestamps the batch in metadata only: every update will read as
   * `max(t, frontier)`, and the batch's upper becomes `newUpper`.
   */
  rewriteTs(frontier: number, newUpper: number): void {
    this.checkLive('rewrite');
    assertTimestamp(frontier, 'rewriteTs frontier');
    assertFrontier(newUpper, 'rewriteTs newUpper');
    const b = this.hollowBatch;
    const fail = (why: string) => {
      throw new InvalidRewrite(`cannot rewrite batch [${b.lower}, ${b.upper}) to (${frontier}, ${newUpper}): ${why}`);
    };
    if (!(frontier < newUpper)) fail('the frontier must be below the new upper');
    if (newUpper < b.upper) fail(`the new upper must not be below the batch upper ${b.upper}`);
    if (frontier < b.lower) fail(`the frontier must not be below the batch lower ${b.lower}`);
    if (b.since !== 0) fail('only batches with the minimum since (not compaction output) can be rewritten');
    if (this.rewrittenTo !== undefined && frontier < this.rewrittenTo) {
      fail(`it was already rewritten to ${this.rewrittenTo}, and a rewrite may not go backwards`);
    }
    this.rewrittenTo = frontier;
    this.hollowBatch = {
      ...b,
      upper: newUpper,
      parts: b.parts.map((p) => ({ ...p, tsRewrite: frontier })),
    };
  }

  /** Encodes the batch so another handle (possibly in another process) can append it. Consumes it. */
  intoTransmittable(): TransmittableBatch {
    this.checkLive('transmit');
    const bytes = encodeMessage(Proto.Batch, {
      formatVersion: FORMAT_VERSION,
      shardId: this.shardId,
      version: this.version,
      batch: hollowBatchToProto(this.hollowBatch),
      keySchema: Buffer.from(this.keySchema, 'utf8'),
      valSchema: Buffer.from(this.valSchema, 'utf8'),
    });
    this.markConsumed('made transmittable');
    return bytes;
  }

  /**
   * Marks the batch consumed and returns its metadata.
   *
   * @hidden
   */
  intoHollowBatch(): HollowBatch {
    this.checkLive('consume');
    this.markConsumed('consumed');
    return this.hollowBatch;
  }

  /** @internal Called when the batch was appended. */
  markConsumed(how = 'appended'): void {
    this.consumedBy = how;
    leakWarnings.unregister(this);
  }

  /** Deletes the batch's blobs. Idempotent; the batch is unusable afterwards. */
  async delete(): Promise<void> {
    // Already deleted, appended (the shard owns the blobs) or handed on: nothing to do.
    if (this.consumedBy) return;
    this.markConsumed('deleted');
    await deleteParts(this.blob, this.cfg, this.hollowBatch.parts);
  }

  /**
   * @internal Gives up a batch whose append did not succeed, by the deletion rule
   * (blob-deletion.ts): its blobs are deleted only when `outcome` proves nothing
   * references them; when an append of it may have landed they are kept (and may
   * leak). The batch is unusable afterwards either way.
   */
  async discardAfter(outcome: WriteOutcome): Promise<void> {
    if (this.consumedBy) return;
    if (outcome.uncertain) {
      this.markConsumed('kept, because an append of it may have landed');
      return;
    }
    this.markConsumed('deleted');
    await deleteUnreferenced(this.blob, this.cfg, partKeys(this.hollowBatch.parts), outcome);
  }

  /**
   * @internal Gives up a batch whose append threw `err`: deletes its blobs unless the
   * error says the append may have landed (blob-deletion.ts `mayHaveLanded`).
   */
  async discardAfterError(err: unknown): Promise<void> {
    if (this.consumedBy) return;
    if (mayHaveLanded(err)) {
      this.markConsumed('kept, because an append of it may have landed');
      return;
    }
    await this.delete().catch((e: unknown) => this.cfg.logger.warn({ err: e }, 'could not delete a batch; its blobs leak'));
  }
}

/** Decodes a transmittable batch; `expectShard` is checked against the batch's shard. */
export function decodeTransmittableBatch(
  bytes: TransmittableBatch,
  expectShard: string,
  blob: Blob,
  cfg: PersistConfig,
): Batch {
  const p = decodeMessage<{
    formatVersion: number;
    shardId: string;
    version: string;
    batch: ProtoHollowBatchShape | null;
    keySchema: Uint8Array;
    valSchema: Uint8Array;
  }>(Proto.Batch, bytes, 'transmittable batch');
  checkFormatVersion(p.formatVersion, 'transmittable batch');
  if (p.shardId !== expectShard) {
    throw new BatchNotFromThisShard(
      `the transmittable batch belongs to shard ${p.shardId}, not ${expectShard}; append it through a writer of ${p.shardId}`,
    );
  }
  if (!p.batch) throw new InvalidBounds('the transmittable batch has no batch description');
  return new Batch(
    p.shardId,
    hollowBatchFromProto(p.batch),
    Buffer.from(p.keySchema).toString('utf8'),
    Buffer.from(p.valSchema).toString('utf8'),
    blob,
    cfg,
    p.version,
  );
}

/** Everything a BatchBuilder needs from its writer. */
export interface BatchTarget {
  shardId: string;
  writerKey: string;
  blob: Blob;
  cfg: PersistConfig;
  keySchema: string;
  valSchema: string;
  schemaId: number | undefined;
}

/**
 * Accumulates updates at times `>= lower` and cuts them into parts of about
 * `blobTargetSizeBytes`, uploading each as soon as it is full, so a batch of any size
 * is built in bounded memory. `finish(upper)` checks every update was `< upper`.
 *
 * Updates are buffered in columns (update-columns.ts): their bytes are copied into
 * a few slabs, not held one array per key and value, and a full buffer is encoded
 * straight from them. While a part is cut the builder holds at most that buffer
 * plus the part's encoded bytes. {@link BatchBuilder.addColumns} hands the builder a
 * whole buffer without copying it (a Txn's spill).
 */
export class BatchBuilder {
  private buffer = new UpdateColumns();
  private parts: HollowPart[] = [];
  private uploads: Promise<void>[] = [];
  private maxTs = -1;
  private count = 0;
  private finished = false;
  /** `addColumns` lent the builder its buffer: never clear or reuse that one. */
  private borrowed = false;

  constructor(
    private readonly target: BatchTarget,
    readonly lower: number,
  ) {
    assertTimestamp(lower, 'batch lower');
  }

  /** Adds encoded bytes. Resolves at once unless a full part had to be uploaded first. */
  addEncoded(key: Uint8Array, val: Uint8Array, t: number, d: number): Promise<void> | undefined {
    this.checkOpen();
    assertTimestamp(t, 'update time');
    assertDiff(d, 'update diff');
    this.checkTime(t);
    if (this.borrowed) this.unborrow();
    this.buffer.push(key, val, t, d);
    this.count++;
    if (this.bufferedBytes() >= this.target.cfg.blobTargetSizeBytes) return this.flush();
    return undefined;
  }

  /**
   * Adds every update of `cols` (times and diffs already checked by whoever filled
   * it; times are checked against the lower here). When the builder holds nothing it
   * takes `cols` as its buffer without copying: the caller must leave `cols` alone
   * until `finish` has settled, and may then `clear()` and reuse it (the builder
   * never writes to it).
   */
  addColumns(cols: UpdateColumns): Promise<void> | undefined {
    this.checkOpen();
    const n = cols.length;
    for (let i = 0; i < n; i++) this.checkTime(cols.time(i));
    if (n === 0) return undefined;
    if (this.buffer.length === 0) {
      this.buffer = cols;
      this.borrowed = true;
    } else {
      if (this.borrowed) this.unborrow();
      for (let i = 0; i < n; i++) this.buffer.push(cols.key(i), cols.val(i), cols.time(i), cols.diff(i));
    }
    this.count += n;
    if (this.bufferedBytes() >= this.target.cfg.blobTargetSizeBytes) return this.flush();
    return undefined;
  }

  private checkOpen(): void {
    if (this.finished) throw new BatchConsumed('cannot add to a batch builder after finish()');
  }

  private checkTime(t: number): void {
    if (t < this.lower) {
      throw new UpdateNotBeyondLower(
        `update at time ${t} is below ${this.lower}, the lower bound of the interval being written ` +
          `(compareAndAppend's expectedUpper, or the batch lower); write it at a time >= ${this.lower}`,
      );
    }
    if (t > this.maxTs) this.maxTs = t;
  }

  /** Replaces a borrowed buffer by a copy of its own before writing to it. */
  private unborrow(): void {
    const own = new UpdateColumns();
    const b = this.buffer;
    for (let i = 0; i < b.length; i++) own.push(b.key(i), b.val(i), b.time(i), b.diff(i));
    this.buffer = own;
    this.borrowed = false;
  }

  /** The buffer's size as parts are cut: key and value bytes plus the per-update overhead. */
  private bufferedBytes(): number {
    return this.buffer.sizeBytes;
  }

  /** Takes the buffer out, consolidated; the builder starts a fresh one. */
  private takeBuffer(): UpdateColumns {
    const data = consolidateColumns(this.buffer);
    this.buffer = new UpdateColumns();
    this.borrowed = false;
    return data;
  }

  private async flush(): Promise<void> {
    await this.uploadInParts(this.takeBuffer());
  }

  /**
   * Uploads consolidated columns as parts of about the target size, one after
   * another, so only one encoded part is in memory at a time (a buffer lent by
   * `addColumns` can be larger than the target).
   */
  private async uploadInParts(data: UpdateColumns): Promise<void> {
    const target = this.target.cfg.blobTargetSizeBytes;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < data.length; i++) {
      bytes += data.rowBytes(i) + UPDATE_OVERHEAD_BYTES;
      if (bytes >= target || i === data.length - 1) {
        await this.upload(i + 1 - start, encodeUpdateColumns(data, start, i + 1));
        start = i + 1;
        bytes = 0;
      }
    }
  }

  /** Uploads `count` consolidated updates, encoded as `bytes`, as one Blob part. */
  private async upload(count: number, bytes: Uint8Array): Promise<void> {
    const key = `${this.target.shardId}/${this.target.writerKey}/${randomUUID()}`;
    const part: HollowPart = withSchema({ key, encodedSizeBytes: bytes.byteLength, updateCount: count }, this.target.schemaId);
    this.parts.push(part);
    const pending = withStorageRetry(
      this.target.cfg,
      `writing batch part ${key}`,
      () => this.target.blob.set(key, bytes),
      { write: true },
    );
    this.uploads.push(pending);
    await pending;
  }

  async finish(upper: number): Promise<Batch> {
    assertFrontier(upper, 'batch upper');
    if (upper < this.lower) {
      throw new InvalidBounds(`batch upper ${upper} is below its lower ${this.lower}; use upper >= lower`);
    }
    if (this.maxTs >= upper) {
      throw new UpdateBeyondUpper(
        `an update at time ${this.maxTs} is not below ${upper}, the upper bound of the interval being written ` +
          `(compareAndAppend's newUpper, or the batch upper); use an upper > ${this.maxTs}`,
      );
    }
    this.finished = true;
    const cfg = this.target.cfg;
    if (this.parts.length === 0 && this.buffer.length > 0) {
      const data = this.takeBuffer();
      // Small enough to be one inline part? Only then is it encoded whole here.
      const bytes = data.dataBytes < cfg.inlineWritesSingleMaxBytes ? encodeUpdateColumns(data) : undefined;
      if (bytes && data.length > 0 && bytes.byteLength < cfg.inlineWritesSingleMaxBytes) {
        this.parts.push(
          withSchema({ inline: bytes, encodedSizeBytes: bytes.byteLength, updateCount: data.length }, this.target.schemaId),
        );
      } else {
        await this.uploadInParts(data);
      }
    } else {
      await this.flush();
    }
    await Promise.all(this.uploads);
    const updateCount = this.parts.reduce((n, p) => n + p.updateCount, 0);
    return new Batch(
      this.target.shardId,
      { lower: this.lower, upper, since: 0, parts: this.parts, updateCount },
      this.target.keySchema,
      this.target.valSchema,
      this.target.blob,
      cfg,
    );
  }

  /** Updates added so far. */
  get length(): number {
    return this.count;
  }
}

function withSchema(p: HollowPart, schemaId: number | undefined): HollowPart {
  return schemaId === undefined ? p : { ...p, schemaId };
}
