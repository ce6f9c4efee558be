/**
 * Reading a collection's *logical* contents (what `db.snapshot` and
 * `db.subscribe$` return) without a reader: its data shard's physical batches plus
 * the committed batches the txns shard still points at.
 *
 * Why that is the whole collection: a registered data shard is written only by
 * applies, and an apply of the commit at `ts` moves the shard's physical upper past
 * `ts` (txn-wal takes the upper being past `ts` as proof it was applied). So every
 * commit below the txns upper is either applied (`ts < physical upper`: read from
 * the data shard) or still pointed at by the txns shard (`ts >= physical upper`: read
 * from its batch). A pointer is tidied only after its apply, so reading the txns view
 * FIRST and the data shard AFTER can only find a commit in both places (then the
 * physical upper says which one counts), never in neither.
 *
 * - A registered shard's logical upper is the txns upper; a shard not registered
 *   (forgotten) is read physically, its upper the physical one.
 * - Reads at `asOf` need `since <= asOf < logical upper`; otherwise a CliError says
 *   from which time (or below which time) the collection is readable.
 * - {@link collectionRange} reads `[lower, upper)` exactly when `since < lower`, and
 *   otherwise says the range was compacted (the tail then falls back to comparing
 *   contents, tail-follower.ts).
 *
 * Example: commits at 3 (applied) and 5 (not applied), txns upper 6, physical upper
 * 4. `collectionAsOf(view, data, 5)` reads the shard as of 5 (the write at 3) and the
 * txns pointer of 5; as of 6 it is a CliError (complete only below 6).
 */
import { Consolidator } from '../persist/consolidate.js';
import type { HollowBatch } from '../persist/hollow-batch.js';
import { emptyPartData, type PartData } from '../persist/part.js';
import type { ShardId } from '../persist/shard-id.js';
import { CliError } from './cli-error.js';
import type { ShardReader } from './shard-reader.js';
import { addAsOf, hollowBatchOf, readRange, spineBatches, type PartProgress } from './shard-updates.js';
import type { TxnsView } from './txns-view.js';

/** A committed batch the txns shard still points at (not tidied; maybe not applied). */
export interface PendingBatch {
  readonly ts: number;
  readonly batch: HollowBatch;
}

/** Whether `dataId` is registered at the view's upper. */
export function isRegistered(view: TxnsView, dataId: ShardId): boolean {
  return view.upper > 0 && view.cache.registeredAtProgress(dataId, view.upper);
}

/** The upper reads of `dataId` see: the txns upper when registered, else the physical upper. */
export function logicalUpper(view: TxnsView, dataId: ShardId, physicalUpper: number): number {
  return isRegistered(view, dataId) ? Math.max(view.upper, physicalUpper) : physicalUpper;
}

/** The untidied batch pointers of `dataId`, oldest first. */
export function pendingBatches(view: TxnsView, dataId: ShardId): PendingBatch[] {
  return view.cache
    .unappliedBatchList()
    .filter((b) => b.dataId === dataId)
    .map((b) => ({ ts: b.ts, batch: hollowBatchOf(b.raw, dataId) }));
}

/** A clear line for a read outside `[since, upper)`, or undefined when `asOf` is readable. */
function outOfRange(name: string, asOf: number, since: number, upper: number): CliError | undefined {
  if (asOf < since) {
    return new CliError(`--as-of ${asOf} is below the since of collection ${JSON.stringify(name)}: it is readable as of ${since} or later; pass --as-of ${since} or more`);
  }
  if (asOf >= upper) {
    return new CliError(
      `--as-of ${asOf} is not complete yet for collection ${JSON.stringify(name)}: it is complete below ${upper}; pass --as-of ${Math.max(upper - 1, 0)} or less${upper === 0 ? ' (nothing is readable yet)' : ''}`,
    );
  }
  return undefined;
}

/**
 * The logical contents of collection `name` (data shard `dataId`, read by `data`;
 * undefined when the shard was never created) as of `asOf`, consolidated, every
 * update at `asOf`.
 */
export async function collectionAsOf(
  view: TxnsView,
  data: ShardReader | undefined,
  name: string,
  dataId: ShardId,
  asOf: number,
  progress?: PartProgress,
): Promise<PartData> {
  if (!data) {
    const bad = outOfRange(name, asOf, 0, logicalUpper(view, dataId, 0));
    if (bad) throw bad;
    return emptyPartData();
  }
  const pending = pendingBatches(view, dataId);
  return data.read(async (state, fetch) => {
    const { since, upper } = state.meta;
    const bad = outOfRange(name, asOf, since, logicalUpper(view, dataId, upper));
    if (bad) throw bad;
    const c = new Consolidator();
    const unapplied = pending.filter((p) => p.ts >= upper && p.ts <= asOf).map((p) => p.batch);
    const batches = [...spineBatches(state), ...unapplied];
    await addAsOf(c, batches, fetch, asOf, progress);
    return c.finish();
  });
}

/** What {@link collectionRange} found: the updates, or that compaction passed the range's lower bound. */
export type RangeRead = { kind: 'exact'; updates: PartData } | { kind: 'compacted'; since: number };

/**
 * The updates of `dataId` with `lower <= t < upper` (`upper <=` the view's upper),
 * times exact, when the shard's since is still below `lower`.
 */
export async function collectionRange(view: TxnsView, data: ShardReader | undefined, dataId: ShardId, lower: number, upper: number): Promise<RangeRead> {
  if (!data) return { kind: 'exact', updates: emptyPartData() };
  const pending = pendingBatches(view, dataId);
  return data.read(async (state, fetch) => {
    const { since, upper: physical } = state.meta;
    if (!(since < lower)) return { kind: 'compacted', since };
    const out = await readRange(spineBatches(state), fetch, lower, Math.min(upper, physical));
    const unapplied = pending.filter((p) => p.ts >= physical).map((p) => p.batch);
    await readRange(unapplied, fetch, Math.max(lower, physical), upper, out);
    return { kind: 'exact', updates: out };
  });
}
