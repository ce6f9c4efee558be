/**
 * TxnWrite: what a Txn holds for one data shard until it commits.
 *
 * Three forms, each turned into the next by the commit (or earlier by a spill):
 * buffered rows (encoded keys, values and diffs) → uploaded batches at time 0,
 * interval `[0, 1)` (the commit re-timestamps them, in metadata only); batches the
 * caller built elsewhere (`staged`, transmittable bytes) → batches of the commit
 * writer. Invariant: nothing is dropped between forms — a batch taken out for an
 * attempt that did not land is put back (`batches.push`), so a retry neither loses
 * nor uploads again.
 *
 * Example: three `write`s buffer three rows; `uploadBuffered(w)` empties the buffer
 * into one batch in `batches`; `takeBatches()` hands the commit every batch.
 */
import type { Batch, TransmittableBatch } from '../persist/batch.js';
import { UpdateColumns, type RowField } from '../persist/update-columns.js';
import type { WriteHandle } from '../persist/write-handle.js';

export class TxnWrite {
  /**
   * Buffered rows, in columns (their bytes copied in, so callers may reuse their
   * arrays), all at time 0. Reused after each upload: a Txn that spills many times
   * keeps one buffer of about the spill threshold. Taken from the handle's pool; the
   * Txn gives it back once committed or discarded.
   */
  readonly rows: UpdateColumns;
  /** Uploads of `rows` in flight (each borrows the buffer until it settles). */
  private uploads = 0;

  constructor(rows: UpdateColumns = new UpdateColumns()) {
    this.rows = rows;
  }
  /** Batches the caller built (`writeBatch`), as transmittable bytes. */
  staged: TransmittableBatch[] = [];
  /** Batches already uploaded: spilled writes, or carried over from a failed attempt. */
  batches: Batch[] = [];

  get isEmpty(): boolean {
    return this.rows.length === 0 && this.staged.length === 0 && this.batches.length === 0;
  }

  /** Buffers one encoded row (its bytes are copied, a string written as UTF-8); returns the key and value bytes buffered. */
  add(key: RowField, val: RowField, diff: number): number {
    return this.rows.push(key, val, 0, diff);
  }

  /** Moves everything `other` holds to the end of this. */
  takeFrom(other: TxnWrite): void {
    const r = other.rows;
    for (let i = 0; i < r.length; i++) this.rows.push(r.key(i), r.val(i), 0, r.diff(i));
    r.clear();
    this.staged.push(...other.staged.splice(0));
    this.batches.push(...other.batches.splice(0));
  }

  /** Uploads the buffered rows (if any) through `writer` as one batch at time 0, interval `[0, 1)`. */
  async uploadBuffered<K, V>(writer: WriteHandle<K, V>): Promise<void> {
    if (this.rows.length === 0) return;
    this.uploads++;
    try {
      const builder = await writer.builder(0);
      // The builder borrows the columns (no copy) until finish settles, and never writes to them.
      const uploading = builder.addColumns(this.rows);
      if (uploading) await uploading;
      const batch = await builder.finish(1);
      // Only once the batch exists do the rows leave the buffer: a failed upload keeps
      // them, so a retried commit still carries them.
      this.batches.push(batch);
      this.rows.clear();
    } finally {
      this.uploads--;
    }
  }

  /** Whether nothing reads the row buffer any more (no upload in flight), so it may go back to a pool. */
  get rowsIdle(): boolean {
    return this.uploads === 0;
  }

  /** Turns the staged transmittable batches into batches of `writer`. */
  adoptStaged<K, V>(writer: WriteHandle<K, V>): void {
    for (const bytes of this.staged.splice(0)) this.batches.push(writer.batchFromTransmittable(bytes));
  }

  /** Takes every uploaded batch out (for a commit attempt). */
  takeBatches(): Batch[] {
    return this.batches.splice(0);
  }
}
