/**
 * PartMerger: the CPU half of a compaction merge, with no I/O, so it runs the same on
 * the main thread and in the merge worker (merge-worker.ts).
 *
 * It takes the encoded input parts one at a time, oldest batch first, each with its
 * own metadata (time rewrite, keep bounds), and gives back the encoded output parts,
 * cut at about `targetBytes` as they fill:
 * - `consolidate: false` (the inputs cannot overlap: compaction.ts `cannotOverlap`):
 *   the inputs one after another, copied column range by column range, never row by
 *   row; an output part is cut as soon as it is full, so a caller writing each as it
 *   comes holds one input part and one output part at a time.
 * - `consolidate: true`: every time advanced to `since`, equal updates summed and
 *   zeros dropped. A later input may cancel an earlier one, so nothing is final (and
 *   nothing is cut) before `finish`.
 *
 * Invariant: the outputs read exactly as the inputs did at every `asOf >= since`
 * (times below the since all read as the since there), and the same inputs give the
 * same bytes on either thread. Only the last output of a merge is marked `final`; the
 * caller decides whether that one, when it is the only one, stays inline in state.
 *
 * Example:
 * ```ts
 * const m = new PartMerger({ since: 4, consolidate: true, targetBytes: 128 << 20 });
 * m.add({ bytes: partA, what: 'part a' });   // [] : consolidating, nothing is final yet
 * m.add({ bytes: partB, what: 'part b', tsRewrite: 7 });
 * const [out] = m.finish();                  // { encoded, updateCount, final: true }
 * ```
 */
import { ColumnConsolidator } from './consolidate.js';
import { decodePartColumns, encodeUpdateColumns, partTime, type HollowPart } from './part.js';
import { UPDATE_OVERHEAD_BYTES, UpdateColumns, type ColumnsSource } from './update-columns.js';

/** One encoded input part and the metadata its times are read through. */
export interface MergeInputPart extends Pick<HollowPart, 'tsRewrite' | 'keep'> {
  /** The stored part (ProtoPart with its checksum trailer). */
  bytes: Uint8Array;
  /** Names the part in a StoredFormatError when its bytes are corrupt. */
  what: string;
}

/** One encoded output part. */
export interface MergedPart {
  encoded: Uint8Array;
  updateCount: number;
  /** The last output of the merge (the only one that may be kept inline). */
  final: boolean;
}

export interface PartMergerOptions {
  /** Times below it are advanced to it (only when consolidating). */
  since: number;
  /** Sum equal updates (see the module docs); false when the inputs cannot overlap. */
  consolidate: boolean;
  /** Output parts are cut at about this many bytes. */
  targetBytes: number;
}

export class PartMerger {
  private readonly buffer = new UpdateColumns();
  private readonly consolidator: ColumnConsolidator | undefined;
  private cut: MergedPart[] = [];
  private updates = 0;

  constructor(private readonly opts: PartMergerOptions) {
    this.consolidator = opts.consolidate ? new ColumnConsolidator() : undefined;
  }

  /** Updates in the outputs so far (all of them after `finish`). */
  get updateCount(): number {
    return this.updates;
  }

  /** Takes one more input part; returns the output parts that filled meanwhile. */
  add(part: MergeInputPart): MergedPart[] {
    const c = decodePartColumns(part.bytes, part.what);
    const merged = this.consolidator;
    if (merged) {
      const since = this.opts.since;
      for (let i = 0; i < c.count; i++) {
        const t = partTime(part, c.times[i]!);
        if (!Number.isNaN(t)) merged.add(c, i, Math.max(t, since), c.diffs[i]!);
      }
    } else {
      this.addRows(c, c.count, part);
    }
    return this.take();
  }

  /** The remaining output parts, the last marked `final`. The merger is spent afterwards. */
  finish(): MergedPart[] {
    if (this.consolidator) {
      const result = this.consolidator.finish();
      this.addRows(result.asSource(), result.length, {});
    }
    this.cutPart(true);
    return this.take();
  }

  private take(): MergedPart[] {
    const out = this.cut;
    this.cut = [];
    return out;
  }

  /**
   * Adds rows `[0, count)` of `c`, their times read by the part's own metadata
   * (partTime): the runs of rows its keep bounds keep (usually one run of all of them).
   */
  private addRows(c: ColumnsSource, count: number, part: Pick<HollowPart, 'tsRewrite' | 'keep'>): void {
    if (part.keep === undefined) return this.addRange(c, 0, count, part.tsRewrite);
    for (let i = 0; i < count; ) {
      if (Number.isNaN(partTime(part, c.times[i]!))) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < count && !Number.isNaN(partTime(part, c.times[j]!))) j++;
      this.addRange(c, i, j, part.tsRewrite);
      i = j;
    }
  }

  /** Adds rows `[from, to)` of `c`, times below `rewrite` raised to it, cutting parts as they fill. */
  private addRange(c: ColumnsSource, from: number, to: number, rewrite: number | undefined): void {
    const target = this.opts.targetBytes;
    for (let i = from; i < to; ) {
      // The rows that fit: up to and including the one that reaches the target.
      let bytes = this.size();
      let j = i;
      while (j < to && bytes < target) {
        bytes += c.keyOffsets[j + 1]! - c.keyOffsets[j]! + c.valOffsets[j + 1]! - c.valOffsets[j]! + UPDATE_OVERHEAD_BYTES;
        j++;
      }
      const at = this.buffer.length;
      this.buffer.pushRange(c, i, j);
      // A rewrite raises the times below it (a Txn's batch, written at 0, committed later).
      if (rewrite !== undefined) this.buffer.raiseTimes(at, rewrite);
      this.updates += j - i;
      i = j;
      if (this.size() >= target) this.cutPart(false);
    }
  }

  private size(): number {
    return this.buffer.sizeBytes;
  }

  private cutPart(final: boolean): void {
    const n = this.buffer.length;
    if (n === 0) return;
    const encoded = encodeUpdateColumns(this.buffer);
    this.buffer.clear();
    this.cut.push({ encoded, updateCount: n, final });
  }
}
