/**
 * Compaction: merging spine batches so reads touch few parts and state stays small.
 *
 * Policy (size-tiered): a batch's level is log4 of its update count. Four adjacent
 * batches of one level merge into one batch of the next level, and a batch at a
 * lower level than its newer neighbour folds into it. For equal-sized writes every
 * update is rewritten O(log n) times, merges cost about one state change per three
 * writes, and the spine holds at most about 3·log4(n) batches. When at most one
 * input holds data, the merge is metadata only: the result reuses that input's parts
 * under the widened bounds (times are not advanced to the since; reads at
 * `asOf >= since` do not need them to be), so an empty append next to a huge batch
 * costs nothing to fold in.
 *
 * A merge reads its inputs part by part, advances every time below the shard's since
 * to the since, consolidates (skipped when the inputs cannot overlap: see
 * {@link cannotOverlap}), writes the result in parts of about the target size as they
 * fill, and swaps it in with one command that only succeeds if the inputs are still in
 * the spine. Memory: when the inputs cannot overlap, one input part and one output
 * part; when they must be consolidated, their distinct updates (the consolidator
 * needs all of them before any is final) plus one output part. Advancing to the since never
 * changes an answer at `asOf >= since`: every time `<= asOf` still reads as `<= asOf`,
 * every later time is unchanged, and listens hold the since below their frontier.
 *
 * The merge's output parts are deleted only when the swap was certainly refused (see
 * blob-deletion.ts): when its reply was lost, "inputs gone" may mean our own swap landed.
 *
 * Example: spine `[0,5):3 updates | [5,9):3 updates` with since 4 becomes
 * `[0,9):since 4`, where the updates at times 0..3 now read at time 4 (and cancel if
 * they were an insert and its retraction).
 */
import { randomUUID } from 'node:crypto';
import { ColumnConsolidator } from './consolidate.js';
import { deleteUnreferenced, partKeys } from './blob-deletion.js';
import { fetchPartColumns } from './fetch.js';
import { secondsSince } from './metric-families.js';
import { inlineBytes, type HollowBatch } from './hollow-batch.js';
import type { Machine } from './machine.js';
import { encodeUpdateColumns, partTime, type HollowPart } from './part.js';
import { applyMergeResult } from './state-commands.js';
import type { SpineBatch } from './state.js';
import { withStorageRetry } from './storage-retry.js';
import { UpdateColumns, type ColumnsSource } from './update-columns.js';

/** Batches whose sizes are within this factor share a level; this many of them merge. */
const FANOUT = 4;
/** At most this many batches are merged at once (bounds the memory of a merge). */
const MAX_MERGE = 8;
/** Above this many batches the spine is merged whatever the sizes. */
const MAX_SPINE_BATCHES = 64;
/** What a row costs in an output part beyond its key and value (offsets, time, diff): for cutting at the target size. */
const ROW_BYTES = 24;

function level(updateCount: number): number {
  return updateCount <= 1 ? 0 : Math.floor(Math.log(updateCount) / Math.log(FANOUT));
}

/** The contiguous batches to merge next, or undefined when the spine is in shape. */
export function pickMerge(spine: readonly SpineBatch[]): SpineBatch[] | undefined {
  const n = spine.length;
  const levels = spine.map((b) => level(b.batch.updateCount));
  // An older batch at a lower level than the one after it folds into it, so levels
  // never increase from oldest to newest.
  for (let i = n - 2; i >= 0; i--) {
    if (levels[i]! < levels[i + 1]!) return [spine[i]!, spine[i + 1]!];
  }
  // FANOUT adjacent batches of one level merge into one of the next level (newest run first).
  for (let end = n - 1; end >= 0; ) {
    let start = end;
    while (start > 0 && levels[start - 1] === levels[end]) start--;
    if (end - start + 1 >= FANOUT) return spine.slice(start, Math.min(end + 1, start + MAX_MERGE));
    end = start - 1;
  }
  if (n > MAX_SPINE_BATCHES) {
    let best = n - 2;
    for (let i = 0; i + 1 < n; i++) {
      const cost = spine[i]!.batch.updateCount + spine[i + 1]!.batch.updateCount;
      if (cost < spine[best]!.batch.updateCount + spine[best + 1]!.batch.updateCount) best = i;
    }
    return [spine[best]!, spine[best + 1]!];
  }
  return undefined;
}

/** Runs merges until the policy is satisfied or a merge loses a race. */
export async function compactShard(machine: Machine): Promise<void> {
  for (;;) {
    const state = machine.state;
    const inputs = pickMerge(state.spine);
    if (!inputs) return;
    const start = performance.now();
    let output: HollowBatch;
    // Parts reused from an input are not ours to delete if the merge loses a race.
    const reused = inputs.filter((b) => b.batch.updateCount > 0).length <= 1;
    try {
      output = reused
        ? foldWithoutRewrite(inputs, state.meta.since)
        : await mergeBatches(machine, inputs, state.meta.since, state.meta.inlineBytes);
    } catch (err) {
      // A compaction elsewhere may have replaced these inputs and GC deleted their
      // parts while we read them: then there is nothing to do. Anything else is real.
      const now = (await machine.refresh()) ?? machine.state;
      const stillThere = inputs.every((b) => now.spine.some((x) => x.id === b.id));
      if (stillThere) throw err;
      machine.cfg.logger.debug({ shard: machine.shardId }, 'compaction inputs were replaced while reading them');
      return;
    }
    // Recorded with the shard's next write (machine.ts, "rides along"), not a write of its own.
    const out = await machine.applyDeferred('merge_res', (s) => applyMergeResult(s, inputs.map((b) => b.id), output));
    const m = machine.metrics;
    m.compactionSeconds.observe(secondsSince(start));
    if (!out.result) {
      m.compactionsSuperseded.inc();
      // Someone else merged these first, or (if the reply was lost) we did.
      if (!reused) await deleteUnreferenced(machine.blob, machine.cfg, partKeys(output.parts), out);
      return;
    }
    m.compactionsApplied.inc();
    for (const { batch } of inputs) countParts(batch, m.compactionInputParts, m.compactionInputBytes);
    countParts(output, m.compactionOutputParts, m.compactionOutputBytes);
  }
}

/** Adds a batch's parts and their encoded bytes to two counters. */
function countParts(batch: HollowBatch, parts: { inc(n: number): void }, bytes: { inc(n: number): void }): void {
  let size = 0;
  for (const p of batch.parts) size += p.encodedSizeBytes;
  parts.inc(batch.parts.length);
  bytes.inc(size);
}

/** The merge of adjacent batches of which at most one holds data: its parts, under the union of the bounds. */
function foldWithoutRewrite(inputs: SpineBatch[], since: number): HollowBatch {
  const withData = inputs.find((b) => b.batch.updateCount > 0)?.batch;
  const first = inputs[0]!.batch;
  const last = inputs[inputs.length - 1]!.batch;
  return {
    lower: first.lower,
    upper: last.upper,
    since: Math.max(since, ...inputs.map((b) => b.batch.since)),
    parts: withData ? [...withData.parts] : [],
    updateCount: withData?.updateCount ?? 0,
  };
}

/**
 * Whether no update of one input can equal (and so sum with) an update of another
 * once times are advanced to `since`: no time moves (`since` is at or below the first
 * input's lower, so at or below every update's time) and the inputs' `[lower, upper)`
 * ranges are disjoint. Each input is also at most one part, which its writer (a batch
 * builder, or an earlier merge) consolidated. Then the merge is the inputs one after
 * another, with no hashing. Either way the result reads exactly as the inputs did
 * (reads consolidate what they return), so this only decides whether work that
 * cannot find anything is skipped.
 */
export function cannotOverlap(inputs: readonly SpineBatch[], since: number): boolean {
  return since <= inputs[0]!.batch.lower && inputs.every((b) => b.batch.parts.length <= 1);
}

async function mergeBatches(
  machine: Machine,
  inputs: SpineBatch[],
  since: number,
  inlineBytesNow: number,
): Promise<HollowBatch> {
  const { cfg, blob, shardId } = machine;
  let inputInline = 0;
  for (const { batch } of inputs) inputInline += inlineBytes(batch);
  const out = new OutputParts(machine, inputInline, inlineBytesNow);
  if (cannotOverlap(inputs, since)) {
    // Nothing can cancel or sum: the inputs, one after another, are the merge. They
    // stream through (one input part and one output part in memory at a time),
    // copied column range by column range, never row by row.
    for (const { batch } of inputs) {
      for (const part of batch.parts) {
        const c = await fetchPartColumns(blob, cfg, shardId, part);
        await out.addPart(c, c.count, part);
      }
    }
  } else {
    // Parts stream into one consolidator, every time advanced to the since. It must
    // see every input before anything is final (a later update may cancel an earlier
    // one), so this holds the inputs' distinct updates; the output still streams out.
    // Straight on the stored columns: no view or object per update.
    const merged = new ColumnConsolidator();
    for (const { batch } of inputs) {
      for (const part of batch.parts) {
        const c = await fetchPartColumns(blob, cfg, shardId, part);
        for (let i = 0; i < c.count; i++) {
          const t = partTime(part, c.times[i]!);
          if (!Number.isNaN(t)) merged.add(c, i, Math.max(t, since), c.diffs[i]!);
        }
      }
    }
    const result = merged.finish();
    await out.addPart(result.asSource(), result.length, {});
  }
  const parts = await out.finish();
  const first = inputs[0]!.batch;
  const last = inputs[inputs.length - 1]!.batch;
  return { lower: first.lower, upper: last.upper, since, parts, updateCount: out.updateCount };
}

/**
 * A merge's output, cut into parts of about the target size as updates arrive: each
 * full part is encoded straight from its columns and uploaded before the next is
 * filled, so the output never waits in memory whole.
 */
class OutputParts {
  private readonly buffer = new UpdateColumns();
  private readonly parts: HollowPart[] = [];
  updateCount = 0;

  constructor(
    private readonly machine: Machine,
    /** Inline bytes of the inputs: an inline output may take their place, no more. */
    private readonly inputInline: number,
    private readonly inlineBytesNow: number,
  ) {}

  /**
   * Adds rows `[0, count)` of `c` (a stored part's columns, or a merge's result), their
   * times read by the part's own metadata (partTime), in ranges that fill the current
   * output part: the same parts as adding them one by one.
   */
  async addPart(c: ColumnsSource, count: number, part: Pick<HollowPart, 'tsRewrite' | 'keep'>): Promise<void> {
    if (part.keep === undefined) return this.addRange(c, 0, count, part.tsRewrite);
    // Keep bounds may drop rows (a batch truncated at append): the runs of kept rows,
    // usually one run of all of them.
    for (let i = 0; i < count; ) {
      if (Number.isNaN(partTime(part, c.times[i]!))) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < count && !Number.isNaN(partTime(part, c.times[j]!))) j++;
      await this.addRange(c, i, j, part.tsRewrite);
      i = j;
    }
  }

  /** Adds rows `[from, to)` of `c`, times below `rewrite` raised to it, cutting parts as they fill. */
  private async addRange(c: ColumnsSource, from: number, to: number, rewrite: number | undefined): Promise<void> {
    const target = this.machine.cfg.blobTargetSizeBytes;
    for (let i = from; i < to; ) {
      // The rows that fit: up to and including the one that reaches the target.
      let bytes = this.size();
      let j = i;
      while (j < to && bytes < target) {
        bytes += c.keyOffsets[j + 1]! - c.keyOffsets[j]! + c.valOffsets[j + 1]! - c.valOffsets[j]! + ROW_BYTES;
        j++;
      }
      const at = this.buffer.length;
      this.buffer.pushRange(c, i, j);
      // A rewrite raises the times below it (a Txn's batch, written at 0, committed later).
      if (rewrite !== undefined) this.buffer.raiseTimes(at, rewrite);
      this.updateCount += j - i;
      i = j;
      if (this.full()) await this.cut(false);
    }
  }

  private size(): number {
    return this.buffer.dataBytes + ROW_BYTES * this.buffer.length;
  }

  private full(): boolean {
    return this.size() >= this.machine.cfg.blobTargetSizeBytes;
  }

  async finish(): Promise<HollowPart[]> {
    await this.cut(true);
    return this.parts;
  }

  private async cut(last: boolean): Promise<void> {
    const n = this.buffer.length;
    if (n === 0) return;
    const { cfg, blob, shardId } = this.machine;
    const encoded = encodeUpdateColumns(this.buffer);
    this.buffer.clear();
    // Stay inline only when that cannot grow the shard's inline total.
    if (
      last &&
      this.parts.length === 0 &&
      encoded.byteLength < cfg.inlineWritesSingleMaxBytes &&
      encoded.byteLength <= this.inputInline &&
      this.inlineBytesNow <= cfg.inlineWritesTotalMaxBytes
    ) {
      this.parts.push({ inline: encoded, encodedSizeBytes: encoded.byteLength, updateCount: n });
      return;
    }
    const key = `${shardId}/compaction/${randomUUID()}`;
    await withStorageRetry(cfg, `writing compacted part ${key}`, () => blob.set(key, encoded), { write: true });
    this.parts.push({ key, encodedSizeBytes: encoded.byteLength, updateCount: n });
  }
}
