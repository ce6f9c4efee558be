/**
 * Garbage collection: deleting what no reader can reach any more.
 *
 * `seqnoSince` is the oldest state version a leased reader may still fetch parts
 * from. GC picks the newest rollup `r <= seqnoSince`, then:
 * 1. deletes the blobs referenced by versions `< r` and by no version `>= r`;
 * 2. truncates Consensus below `r` (so it always holds a contiguous run of diffs
 *    starting at a rollup);
 * 3. forgets the rollups below `r` in state and deletes their blobs.
 * Each step is idempotent, so GC running twice, or in two processes at once, is safe.
 * Blobs never linked into state (a batch still being built) are never touched.
 *
 * Example: rollups at 1 and 129, readers hold 140, head 160: blobs only in versions
 * 1..128 are deleted, versions 1..128 truncated, rollup 1 deleted.
 */
import type { Machine } from './machine.js';
import { finishGc } from './state-commands.js';
import type { HollowBatch } from './hollow-batch.js';
import { Field, decodeSpineBatch, type StateDiff } from './state-codec.js';
import { seqnoSince, type ShardState } from './state.js';
import { withStorageRetry } from './storage-retry.js';

export interface GcReport {
  truncatedBelow: number;
  deletedParts: number;
  deletedRollups: number;
}

export async function gcShard(machine: Machine): Promise<GcReport> {
  const { cfg, blob, consensus, shardId } = machine;
  const state = (await machine.refresh()) ?? machine.state;
  const holdAt = seqnoSince(state);
  let r: number | undefined;
  for (const s of state.rollups.keys()) if (s <= holdAt && (r === undefined || s > r)) r = s;
  // Cheap check first: most GC passes find no rollup past the earliest live version
  // and need not read (let alone replay) every version.
  const first = await withStorageRetry(cfg, `reading state of ${shardId}`, () => consensus.scan(shardId, 0, 1));
  const versions =
    r !== undefined && first[0] !== undefined && r > first[0].seqno ? await machine.versions.scanAll() : first;
  const s0 = versions[0]?.seqno;
  if (r === undefined || s0 === undefined || r <= s0) {
    // Recorded with the shard's next write, not a write of its own (machine.ts applyDeferred).
    await machine.applyDeferred('gc_noop', (s) => finishGc(s, 0, state.seqno));
    return { truncatedBelow: s0 ?? 0, deletedParts: 0, deletedRollups: 0 };
  }
  const truncateAt = r;
  const loaded = await machine.versions.loadVersions(versions, machine.state);
  if (!loaded) return { truncatedBelow: s0, deletedParts: 0, deletedRollups: 0 };
  const { before, after } = partKeysAround(loaded.first, loaded.diffs, truncateAt);
  let deletedParts = 0;
  for (const key of before) {
    if (after.has(key)) continue;
    await withStorageRetry(cfg, `deleting blob ${key}`, () => blob.delete(key), { write: true });
    deletedParts++;
  }
  // Truncate is idempotent: a GC elsewhere that already truncated as far (or further)
  // makes this a no-op. `truncateAt` is at most the head, so it never throws for misuse.
  await withStorageRetry(
    cfg,
    `truncating state of ${shardId} below ${truncateAt}`,
    () => consensus.truncate(shardId, truncateAt),
    { write: true },
  );
  const { result: removed } = await machine.applyDeferred('gc_finish', (s) => finishGc(s, truncateAt, state.seqno));
  for (const key of removed) {
    await withStorageRetry(cfg, `deleting rollup ${key}`, () => blob.delete(key), { write: true });
  }
  return { truncatedBelow: truncateAt, deletedParts, deletedRollups: removed.length };
}

/**
 * The blob keys of batch parts referenced by some version below `r` (`before`) and
 * by some version at or after it (`after`), from the first version's state and the
 * diffs after it. Only spine-batch entries are decoded: parts are referenced from
 * nowhere else, and a diff inserts or replaces a batch with its full part list.
 */
export function partKeysAround(first: ShardState, diffs: StateDiff[], r: number) {
  const before = new Set<string>();
  const after = new Set<string>();
  const live = new Map<string, string[]>();
  const keysOf = (batch: HollowBatch) => batch.parts.flatMap((p) => (p.key ? [p.key] : []));
  const into = first.seqno < r ? before : after;
  for (const b of first.spine) {
    const keys = keysOf(b.batch);
    live.set(String(b.id), keys);
    for (const k of keys) into.add(k);
  }
  for (const d of diffs) {
    if (d.seqnoTo <= first.seqno) continue;
    const target = d.seqnoTo < r ? before : after;
    for (const f of d.diffs) {
      if (f.field !== Field.BATCHES) continue;
      if (f.to) {
        const keys = keysOf(decodeSpineBatch(f.to).batch);
        live.set(f.key, keys);
        for (const k of keys) target.add(k);
      } else {
        live.delete(f.key);
      }
    }
    // Everything the state at r references is referenced at or after r.
    if (d.seqnoTo === r) for (const keys of live.values()) for (const k of keys) after.add(k);
  }
  return { before, after };
}
