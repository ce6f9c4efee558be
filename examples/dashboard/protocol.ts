/**
 * The dashboard's wire format: what `/events` sends, as JSON in `data:` lines.
 *
 * A client first gets one `event: snapshot` (a {@link Snapshot}: everything the page
 * shows), then `event: delta` frames (a {@link Delta}: only what changed since the
 * previous frame to that client). Invariants:
 * - Applying the deltas, in order, to the snapshot with {@link applyDelta} gives the
 *   server's current {@link Snapshot} (the test checks this).
 * - A delta carries a field only when it changed; `balances` holds only the accounts
 *   whose balance moved; `collections` only the collections whose figures moved,
 *   each with its name and the fields that moved;
 *   `samples` only the one-second samples completed since the previous frame.
 * - Deltas for one client merge ({@link mergeDeltas}) without losing anything: a slow
 *   client gets fewer, larger frames, never a gap.
 *
 * Worked example (one transfer of 7 from b0-acct001 to b2-acct004 at time 1005):
 * ```
 * event: snapshot
 * data: {"frontier":1000,"balances":{"b0-acct001":1000,…100 accounts…},"total":100000,…}
 *
 * event: delta
 * data: {"frontier":1006,"balances":{"b0-acct001":993,"b2-acct004":1007},"perBranch":[24993,25000,25007,25000]}
 * ```
 */

/** One collection as this process's reader and the shard's state see it. */
export interface CollectionFigures {
  name: string;
  shardId: string;
  /** Logical upper: the progress the dashboard's subscription reported for it (all times below are complete). */
  logicalUpper: number;
  /** Physical upper of its data shard (txn-wal advances the logical one without writing the shard). */
  physicalUpper: number;
  /** Since of its data shard: reads as of earlier times are no longer exact. */
  since: number;
}

/** The txns shard and the transactions committed to it but not yet applied to a data shard. */
export interface UnappliedFigures {
  txnsUpper: number;
  txnsSince: number;
  /** Committed batches whose data shard's physical upper is not past them yet. */
  unapplied: number;
  /** Their bytes (the batches as recorded in the txns shard). */
  unappliedBytes: number;
  /** The oldest one's commit timestamp, or null when none. */
  oldestUnappliedTs: number | null;
  /** Applied, but their txns row is not retracted (tidied) yet: the next commit does it. */
  awaitingTidy: number;
}

/** One second of activity, for the charts. */
export interface Sample {
  /** Wall-clock ms at the end of the second. */
  t: number;
  /** Writes this dashboard committed (acknowledged) in that second. */
  commitsPerSec: number;
  /** Distinct commit timestamps the view delivered in that second (any writer, group commits counted once). */
  txnsSeenPerSec: number;
  /** Commit → view lag of the writes acknowledged in that second, or null when there were none. */
  lag: { n: number; p50: number; p99: number; max: number } | null;
}

export interface Snapshot {
  /** The consistent time of everything else: all commits below it are included. */
  frontier: number;
  total: number;
  /** What the total must be: the money deposited when the bank was opened. */
  expectedTotal: number;
  /** Branches in order: their collection name and accounts (the heatmap's layout). */
  branches: { name: string; accounts: string[] }[];
  perBranch: number[];
  balances: Record<string, number>;
  /** total === expectedTotal and no balance below 0, at every frontier so far. */
  invariantOk: boolean;
  /** Frontiers at which the invariant failed (0 when it always held). */
  violations: number;
  /** Writes this dashboard committed since it started. */
  commits: number;
  collections: CollectionFigures[];
  unapplied: UnappliedFigures | null;
  /** The last ~60 one-second samples, oldest first. */
  samples: Sample[];
  /** Whether this dashboard commits transfers (false with --no-transfers). */
  transfers: boolean;
}

/** A collection's figures that changed: its name and only the fields that moved. */
export type CollectionChange = Pick<CollectionFigures, 'name'> & Partial<CollectionFigures>;

export type Delta = Partial<Omit<Snapshot, 'branches' | 'expectedTotal' | 'transfers' | 'collections'>> & {
  collections?: CollectionChange[];
};

/** How many samples a snapshot keeps (the charts' window, in seconds). */
export const SAMPLE_WINDOW = 60;

/** `later` on top of `earlier`: what one frame must carry to replace both. */
export function mergeDeltas(earlier: Delta, later: Delta): Delta {
  const out: Delta = { ...earlier, ...later };
  if (earlier.balances && later.balances) out.balances = { ...earlier.balances, ...later.balances };
  if (earlier.collections && later.collections) out.collections = mergeByName(earlier.collections, later.collections);
  if (earlier.samples && later.samples) out.samples = [...earlier.samples, ...later.samples].slice(-SAMPLE_WINDOW);
  return out;
}

/** The snapshot after `delta` (a new object; `snapshot` is not changed). */
export function applyDelta(snapshot: Snapshot, delta: Delta): Snapshot {
  const out = { ...snapshot, ...delta } as Snapshot;
  if (delta.balances) out.balances = { ...snapshot.balances, ...delta.balances };
  if (delta.collections) out.collections = mergeByName(snapshot.collections, delta.collections) as CollectionFigures[];
  if (delta.samples) out.samples = [...snapshot.samples, ...delta.samples].slice(-SAMPLE_WINDOW);
  return out;
}

/** `base` with each change merged into the entry of its name (appended when new). */
function mergeByName<T extends CollectionChange>(base: readonly T[], changes: readonly CollectionChange[]): T[] {
  const byName = new Map(base.map((c) => [c.name, c]));
  for (const c of changes) byName.set(c.name, { ...byName.get(c.name), ...c } as T);
  return [...byName.values()];
}
