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
import type { WriteHandle } from '../persist/write-handle.js';

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

  /** Buffers one encoded row. */
  add(key: Uint8Array, val: Uint8Array, diff: number): void {
    this.keys.push(key);
    this.vals.push(val);
    this.diffs.push(diff);
  }

  /** Buffers encoded rows (parallel arrays); they are taken over, not copied. */
  addAll(keys: Uint8Array[], vals: Uint8Array[], diffs: number[]): void {
    if (this.diffs.length === 0) {
      this.keys = keys;
      this.vals = vals;
      this.diffs = diffs;
      return;
    }
    for (let i = 0; i < diffs.length; i++) {
      this.keys.push(keys[i]!);
      this.vals.push(vals[i]!);
      this.diffs.push(diffs[i]!);
    }
  }

  /** Moves everything `other` holds to the end of this. */
  takeFrom(other: TxnWrite): void {
    this.keys.push(...other.keys.splice(0));
    this.vals.push(...other.vals.splice(0));
    this.diffs.push(...other.diffs.splice(0));
    this.staged.push(...other.staged.splice(0));
    this.batches.push(...other.batches.splice(0));
  }

  /** Uploads the buffered rows (if any) through `writer` as one batch at time 0, interval `[0, 1)`. */
  async uploadBuffered<K, V>(writer: WriteHandle<K, V>): Promise<void> {
    if (this.diffs.length === 0) return;
    const builder = await writer.builder(0);
    for (let i = 0; i < this.diffs.length; i++) {
      // The builder only returns a promise when a full part must be uploaded first;
      // awaiting nothing would still cost a turn of the microtask queue per row.
      const uploading = builder.addEncoded(this.keys[i]!, this.vals[i]!, 0, this.diffs[i]!);
      if (uploading) await uploading;
    }
    const batch = await builder.finish(1);
    // Only once the batch exists do the rows leave the buffer: a failed upload keeps
    // them, so a retried commit still carries them.
    this.batches.push(batch);
    this.keys = [];
    this.vals = [];
    this.diffs = [];
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
