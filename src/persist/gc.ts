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
import { LocationUsageError } from '../location/errors.js';
import type { Machine } from './machine.js';
import { finishGc } from './state-commands.js';
import { seqnoSince } from './state.js';
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
  const versions = await machine.scanAll();
  const s0 = versions[0]?.seqno;
  if (r === undefined || s0 === undefined || r <= s0) {
    await machine.apply('gc_noop', (s) => finishGc(s, 0, state.seqno), { confirmNoop: false });
    return { truncatedBelow: s0 ?? 0, deletedParts: 0, deletedRollups: 0 };
  }
  const truncateAt = r;
  const before = new Set<string>();
  const after = new Set<string>();
  const replayed = await machine.replay(versions, (s) => {
    const into = s.seqno < truncateAt ? before : after;
    for (const b of s.spine) for (const p of b.batch.parts) if (p.key) into.add(p.key);
  });
  if (!replayed) return { truncatedBelow: s0, deletedParts: 0, deletedRollups: 0 };
  let deletedParts = 0;
  for (const key of before) {
    if (after.has(key)) continue;
    await withStorageRetry(cfg, `deleting blob ${key}`, () => blob.delete(key), { write: true });
    deletedParts++;
  }
  await withStorageRetry(
    cfg,
    `truncating state of ${shardId} below ${truncateAt}`,
    async () => {
      try {
        return await consensus.truncate(shardId, truncateAt);
      } catch (err) {
        // Another GC may have truncated further already; that is success.
        if (err instanceof LocationUsageError) return 0;
        throw err;
      }
    },
    { write: true },
  );
  const { result: removed } = await machine.apply('gc_finish', (s) => finishGc(s, truncateAt, state.seqno), {
    confirmNoop: false,
  });
  for (const key of removed) {
    await withStorageRetry(cfg, `deleting rollup ${key}`, () => blob.delete(key), { write: true });
  }
  return { truncatedBelow: truncateAt, deletedParts, deletedRollups: removed.length };
}
