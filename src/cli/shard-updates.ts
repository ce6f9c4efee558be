/**
 * Selecting updates out of a shard state's batches, as the `txnwal` command's reads
 * need them. Pure over a state and a part fetcher (shard-reader.ts supplies both and
 * retries when GC races a fetch).
 *
 * - {@link readAsOf}: the contents as of `asOf`: every update with `t <= asOf`,
 *   advanced to `asOf` and consolidated (what `ReadHandle.snapshotAndFetch` returns).
 *   Exact when `asOf >= since`; the caller checks.
 * - {@link readRange}: the updates with `lower <= t < upper`, times unchanged, from the
 *   batches that overlap the range. Exact when `since < lower` (no time in the range
 *   was advanced by compaction); the caller checks.
 * - {@link hollowBatchOf}: the batch description inside a txns batch pointer (a
 *   `ProtoBatch`, possibly wrapped in a `ProtoIdBatch`), so an unapplied commit's
 *   parts can be read the same way, without building a `Batch` object.
 *
 * Example: spine `[0,5) [5,9)`, `readRange(state, fetch, 6, 8)` fetches only the
 * parts of `[5,9)` and keeps the updates at 6 and 7.
 */
import { Consolidator } from '../persist/consolidate.js';
import { Proto, checkFormatVersion, decodeMessage } from '../persist/encoding.js';
import { StoredFormatError } from '../persist/errors.js';
import { hollowBatchFromProto, type HollowBatch, type ProtoHollowBatchShape } from '../persist/hollow-batch.js';
import { emptyPartData, type HollowPart, type PartData } from '../persist/part.js';
import type { ShardState } from '../persist/state.js';
import { parseIdBatch } from '../txn/id-batch.js';
import type { FetchPart } from './shard-reader.js';

/** Progress of one read: parts fetched so far out of the parts it needs. */
export type PartProgress = (done: number, total: number) => void;

/** Fetches `parts` one at a time (bounded memory, ordered progress), handing each to `take`. */
async function eachPart(parts: readonly HollowPart[], fetch: FetchPart, take: (data: PartData) => void, progress?: PartProgress): Promise<void> {
  let done = 0;
  progress?.(0, parts.length);
  for (const part of parts) {
    take(await fetch(part));
    progress?.(++done, parts.length);
  }
}

/** The parts of `batches` whose description overlaps `[lower, upper)`. */
function partsOverlapping(batches: readonly HollowBatch[], lower: number, upper: number): HollowPart[] {
  return batches.filter((b) => b.upper > lower && b.lower < upper).flatMap((b) => b.parts);
}

/** The spine's batch descriptions. */
export function spineBatches(state: ShardState): HollowBatch[] {
  return state.spine.map((b) => b.batch);
}

/**
 * Adds the contents of `batches` as of `asOf` to `into` (every `t <= asOf`, at time
 * `asOf`). Shared by a shard's spine and by unapplied txns batches.
 */
export async function addAsOf(into: Consolidator, batches: readonly HollowBatch[], fetch: FetchPart, asOf: number, progress?: PartProgress): Promise<void> {
  const parts = batches.filter((b) => b.lower <= asOf).flatMap((b) => b.parts);
  await eachPart(
    parts,
    fetch,
    (d) => {
      for (let i = 0; i < d.times.length; i++) if (d.times[i]! <= asOf) into.add(d.keys[i]!, d.vals[i]!, asOf, d.diffs[i]!);
    },
    progress,
  );
}

/** The shard's contents as of `asOf`, consolidated, every update at `asOf`. */
export async function readAsOf(state: ShardState, fetch: FetchPart, asOf: number, progress?: PartProgress): Promise<PartData> {
  const c = new Consolidator();
  await addAsOf(c, spineBatches(state), fetch, asOf, progress);
  return c.finish();
}

/** Appends to `out` the updates of `batches` with `lower <= t < upper`, times unchanged. */
export async function readRange(
  batches: readonly HollowBatch[],
  fetch: FetchPart,
  lower: number,
  upper: number,
  out: PartData = emptyPartData(),
): Promise<PartData> {
  if (!(lower < upper)) return out;
  await eachPart(partsOverlapping(batches, lower, upper), fetch, (d) => {
    for (let i = 0; i < d.times.length; i++) {
      const t = d.times[i]!;
      if (t < lower || t >= upper) continue;
      out.keys.push(d.keys[i]!);
      out.vals.push(d.vals[i]!);
      out.times.push(t);
      out.diffs.push(d.diffs[i]!);
    }
  });
  return out;
}

/** The batch a txns pointer (`ProtoIdBatch` or bare `ProtoBatch`) names, checked to belong to `dataId`. */
export function hollowBatchOf(raw: Uint8Array, dataId: string): HollowBatch {
  const p = decodeMessage<{ formatVersion: number; shardId: string; batch: ProtoHollowBatchShape | null }>(
    Proto.Batch,
    parseIdBatch(raw),
    `a txns batch pointer of ${dataId}`,
  );
  checkFormatVersion(p.formatVersion, `a txns batch pointer of ${dataId}`);
  if (p.shardId !== dataId || !p.batch) {
    throw new StoredFormatError(`a txns batch pointer filed under ${dataId} names ${p.batch ? `shard ${p.shardId}` : 'no batch'}`);
  }
  return hollowBatchFromProto(p.batch);
}
