/**
 * The one rule for deleting blobs.
 *
 * A blob is deleted only when a state that was read back proves nothing references
 * it, or by GC (gc.ts, which proves it from the versions it truncates). An operation
 * whose state write *may have landed* never deletes what it wrote: it leaves it. A
 * leaked blob costs storage; deleting a referenced one breaks the shard for good.
 *
 * "May have landed" is known per operation, never guessed from a command's answer: a
 * command that finds its work done ("merge inputs gone", "rollup already recorded")
 * may be seeing *our own* write whose reply was lost. So:
 * - `Machine.apply` returns `uncertain: true` when any compare-and-set attempt of the
 *   operation may have landed, and every error it throws after such an attempt is a
 *   PersistStorageError with `mayHaveHappened: true`;
 * - after a result, {@link deleteUnreferenced} deletes only when the outcome is
 *   certain and the state read back references none of the keys;
 * - after an error, {@link mayHaveLanded} says the blobs must stay.
 */
import type { Blob } from '../location/blob.js';
import type { PersistConfig } from './config.js';
import { mayHaveHappened as locationMayHaveHappened } from '../location/errors.js';
import { ClientClosed, InvalidUsage, PersistStorageError } from './errors.js';
import type { HollowPart } from './part.js';
import type { ShardState } from './state.js';
import { withStorageRetry } from './storage-retry.js';

/** What an operation knows about its own state write. */
export interface WriteOutcome {
  /** Some compare-and-set attempt of the operation may have landed. */
  readonly uncertain: boolean;
  /** The latest state the operation read back (or committed). */
  readonly state: ShardState;
}

/** Every blob key `state` references: its spine's parts and its rollups. */
function referencedKeys(state: ShardState): Set<string> {
  const keys = new Set<string>();
  for (const b of state.spine) for (const p of b.batch.parts) if (p.key) keys.add(p.key);
  for (const k of state.rollups.values()) keys.add(k);
  return keys;
}

/** The blob keys of `parts` (inline parts have none). */
export function partKeys(parts: readonly HollowPart[]): string[] {
  return parts.flatMap((p) => (p.key ? [p.key] : []));
}

/**
 * Deletes those of `keys` (blobs the operation wrote) that `outcome` proves are
 * referenced by nothing; keeps them all when the operation may have landed. Returns
 * whether it deleted. A failed delete only leaks the blob, so it is logged, not thrown.
 */
export async function deleteUnreferenced(
  blob: Blob,
  cfg: PersistConfig,
  keys: Iterable<string>,
  outcome: WriteOutcome,
): Promise<boolean> {
  const wanted = [...keys];
  if (wanted.length === 0) return true;
  if (outcome.uncertain) {
    cfg.logger.debug({ keys: wanted.length }, 'keeping blobs of an operation that may have landed (they may leak)');
    return false;
  }
  const live = referencedKeys(outcome.state);
  for (const key of wanted) {
    if (live.has(key)) continue;
    try {
      await withStorageRetry(cfg, `deleting blob ${key}`, () => blob.delete(key), { write: true });
    } catch (err) {
      cfg.logger.warn({ err, key }, 'could not delete an unreferenced blob; it leaks');
    }
  }
  return true;
}

/**
 * Whether the operation that threw `err` may have written state that references its
 * blobs. Only errors that say it definitely did not happen let them be deleted:
 * misuse (thrown before anything is written), a closed client (refused before it
 * ran; a close during an uncertain write surfaces as a storage error instead),
 * storage errors with `mayHaveHappened: false`, and the location layer's own
 * determinate errors. Anything else — an InvariantViolation, a TypeError from a
 * bug — counts as "may have landed": guessing wrong then leaks a blob, while the
 * other guess could delete one that state references.
 */
export function mayHaveLanded(err: unknown): boolean {
  if (err instanceof InvalidUsage || err instanceof ClientClosed) return false;
  if (err instanceof PersistStorageError) return err.mayHaveHappened;
  return locationMayHaveHappened(err);
}
