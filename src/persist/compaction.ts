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
 * needs all of them before any is final) plus one output part. The merging itself
 * ({@link PartMerger}: decoding, consolidating, encoding) runs in the process's merge
 * worker thread (merge-worker.ts) for merges of {@link WORKER_MIN_INPUT_BYTES} (or
 * {@link WORKER_MIN_INPUT_UPDATES}) to {@link WORKER_MAX_INPUT_BYTES} of input, which
 * holds its output until the merge ends; reading the inputs and storing the outputs
 * stay on the main thread, so the merge is the same either way. Advancing to the since never
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
import { deleteUnreferenced, partKeys } from './blob-deletion.js';
import { fetchPartBytes, partName } from './fetch.js';
import { secondsSince } from './metric-families.js';
import { inlineBytes, type HollowBatch } from './hollow-batch.js';
import type { Machine } from './machine.js';
import type { MergeWorker } from './merge-worker.js';
import type { HollowPart } from './part.js';
import { PartMerger, type MergedPart } from './part-merger.js';
import { applyMergeResult } from './state-commands.js';
import type { SpineBatch } from './state.js';
import { withStorageRetry } from './storage-retry.js';

/** Batches whose sizes are within this factor share a level; this many of them merge. */
const FANOUT = 4;
/** At most this many batches are merged at once (bounds the memory of a merge). */
const MAX_MERGE = 8;
/** Above this many batches the spine is merged whatever the sizes. */
const MAX_SPINE_BATCHES = 64;
/**
 * Merges whose inputs hold at least this many encoded bytes run in the merge worker
 * (merge-worker.ts). Below it a merge takes a few milliseconds here, and the thread
 * (about 8 MiB of RSS once started) is not worth starting for it: a 1 GiB
 * transaction's only real merge, of its 91 KB batch pointer in the txns shard, would
 * otherwise start it.
 */
export const WORKER_MIN_INPUT_BYTES = 512 * 1024;
/**
 * …or at least this many updates: a merge costs per update too (each is decoded,
 * hashed and encoded), and compact parts (format version 3) put 10,000 small keys in
 * about 110 KB, so bytes alone would keep merges of tens of thousands of updates here.
 */
export const WORKER_MIN_INPUT_UPDATES = 16_384;
/**
 * …and at most this many: the worker returns a merge's output whole, where the main
 * thread streams it part by part, so bigger merges stay on the main thread.
 */
export const WORKER_MAX_INPUT_BYTES = 64 * 1024 * 1024;

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
export async function compactShard(machine: Machine, worker?: MergeWorker): Promise<void> {
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
        : await mergeBatches(machine, inputs, state.meta.since, state.meta.inlineBytes, worker);
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
  worker: MergeWorker | undefined,
): Promise<HollowBatch> {
  const { cfg, blob, shardId } = machine;
  let inputInline = 0;
  let inputBytes = 0;
  let inputUpdates = 0;
  for (const { batch } of inputs) {
    inputInline += inlineBytes(batch);
    inputUpdates += batch.updateCount;
    for (const p of batch.parts) inputBytes += p.encodedSizeBytes;
  }
  const out = new OutputParts(machine, inputInline, inlineBytesNow);
  const opts = { since, consolidate: !cannotOverlap(inputs, since), targetBytes: cfg.blobTargetSizeBytes };
  // Off the main thread when it is worth a message and the whole result may wait in memory.
  const worthIt = inputBytes >= WORKER_MIN_INPUT_BYTES || inputUpdates >= WORKER_MIN_INPUT_UPDATES;
  const job = worthIt && inputBytes <= WORKER_MAX_INPUT_BYTES ? worker?.tryBegin(opts) : undefined;
  // On the main thread, parts stream: one input part and one output part in memory at
  // a time when the inputs cannot overlap; the distinct updates when they must be
  // consolidated (a later update may cancel an earlier one).
  const local = job ? undefined : new PartMerger(opts);
  let updateCount: number;
  try {
    for (const { batch } of inputs) {
      for (const part of batch.parts) {
        const bytes = await fetchPartBytes(blob, cfg, shardId, part);
        const input = { bytes, what: partName(part), tsRewrite: part.tsRewrite, keep: part.keep };
        if (job) job.add(input);
        else for (const p of local!.add(input)) await out.store(p);
      }
    }
  } catch (err) {
    job?.abort();
    throw err;
  }
  if (job) {
    machine.metrics.compactionWorkerMerges.inc();
    const done = await job.finish();
    for (const p of done.parts) await out.store(p);
    updateCount = done.updateCount;
  } else {
    for (const p of local!.finish()) await out.store(p);
    updateCount = local!.updateCount;
  }
  const first = inputs[0]!.batch;
  const last = inputs[inputs.length - 1]!.batch;
  return { lower: first.lower, upper: last.upper, since, parts: out.parts, updateCount };
}

/** Where a merge's output parts go: inline in state (a small only output), else each to Blob as it comes. */
class OutputParts {
  readonly parts: HollowPart[] = [];

  constructor(
    private readonly machine: Machine,
    /** Inline bytes of the inputs: an inline output may take their place, no more. */
    private readonly inputInline: number,
    private readonly inlineBytesNow: number,
  ) {}

  async store(p: MergedPart): Promise<void> {
    const { cfg, blob, shardId } = this.machine;
    const { encoded, updateCount } = p;
    // Stay inline only when that cannot grow the shard's inline total.
    if (
      p.final &&
      this.parts.length === 0 &&
      encoded.byteLength < cfg.inlineWritesSingleMaxBytes &&
      encoded.byteLength <= this.inputInline &&
      this.inlineBytesNow <= cfg.inlineWritesTotalMaxBytes
    ) {
      this.parts.push({ inline: encoded, encodedSizeBytes: encoded.byteLength, updateCount });
      return;
    }
    const key = `${shardId}/compaction/${randomUUID()}`;
    await withStorageRetry(cfg, `writing compacted part ${key}`, () => blob.set(key, encoded), { write: true });
    this.parts.push({ key, encodedSizeBytes: encoded.byteLength, updateCount });
  }
}
