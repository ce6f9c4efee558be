/**
 * Lock assignment: which writes of one group-commit round get their write locks,
 * and which wait. A pure function over the round and a "is this collection free"
 * test; the group committer then takes what it says from {@link WriteLocks}.
 *
 * A round is the writes drained for one group commit, in arrival order. Each write
 * claims its locks one of three ways ({@link LockClaim}):
 * - `brought`: it arrives holding its locks (a read-then-write took them up front);
 *   they become the round's;
 * - `none`: a system write, which needs no locks;
 * - `take`: a blind write, which needs every collection it writes, now, or waits.
 *
 * The round shares its locks: its writes commit at one timestamp, so they cannot
 * conflict with each other. A blind write is granted when each of its collections
 * is already the round's (brought, or taken by an earlier grant) or free outside it
 * (not held, not reserved by a queued `acquire`); the free ones are taken into the
 * round. All or nothing: a write that misses any collection takes none of them and
 * is deferred, with the collections that were not the round's at its turn (the ones
 * to watch for a change of hands).
 *
 * Invariants (the property test checks them):
 * - every `brought` and `none` write is accepted;
 * - a `take` write is accepted iff each of its collections is brought or free; so
 *   the order of the round does not change who is granted (what an earlier grant
 *   takes was free anyway);
 * - no collection is taken twice, and only free collections are taken;
 * - `accepted` lists brought and lock-free writes in arrival order, then granted
 *   blind writes in arrival order; `deferred` keeps arrival order.
 *
 * Worked example (x is held by a read-then-write still reading; y is free; r
 * brought its lock on z):
 * ```ts
 * assignLocks([blind{y}, r{z}, blind{x, y}, blind{z}, internal], claimOf, isFree)
 * // accepted: [r, internal, blind{y}, blind{z}]   take: [y]
 * // deferred: [{ write: blind{x, y}, missing: [x] }]   (y was the round's by then)
 * ```
 */
import type { ShardId } from '../persist/shard-id.js';

/** How a write of the round gets its locks. */
export type LockClaim =
  | { kind: 'brought'; collections: Iterable<ShardId> }
  | { kind: 'none' }
  | { kind: 'take'; collections: Iterable<ShardId> };

export interface LockAssignment<W> {
  /** The writes that commit in this round, in commit order (see the module docs). */
  accepted: W[];
  /** The free collections the round must lock now, each once. */
  take: ShardId[];
  /** Blind writes that wait, in arrival order, each with the collections it did not find the round's. */
  deferred: { write: W; missing: ShardId[] }[];
}

export function assignLocks<W>(
  round: readonly W[],
  claimOf: (write: W) => LockClaim,
  isFree: (collection: ShardId) => boolean,
): LockAssignment<W> {
  const roundHolds = new Set<ShardId>();
  const accepted: W[] = [];
  const blind: { write: W; collections: ShardId[] }[] = [];
  // Brought locks first, whatever their place in the round, so blind writes can share them.
  for (const write of round) {
    const claim = claimOf(write);
    if (claim.kind === 'take') {
      const ids = Array.from(claim.collections);
      // Most writes name one collection: no set needed to make it distinct.
      blind.push({ write, collections: ids.length > 1 ? [...new Set(ids)] : ids });
      continue;
    }
    if (claim.kind === 'brought') for (const id of claim.collections) roundHolds.add(id);
    accepted.push(write);
  }
  const take: ShardId[] = [];
  const deferred: { write: W; missing: ShardId[] }[] = [];
  for (const { write, collections } of blind) {
    // The usual case once the round holds a collection: every later write to it joins.
    if (collections.every((id) => roundHolds.has(id))) {
      accepted.push(write);
      continue;
    }
    const missing = collections.filter((id) => !roundHolds.has(id));
    if (missing.every(isFree)) {
      for (const id of missing) {
        roundHolds.add(id);
        take.push(id);
      }
      accepted.push(write);
    } else {
      deferred.push({ write, missing });
    }
  }
  return { accepted, take, deferred };
}
