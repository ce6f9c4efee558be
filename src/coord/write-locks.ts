/**
 * WriteLocks: exclusive per-collection write locks (a collection is a data ShardId),
 * always taken as a whole set.
 *
 * Invariants:
 * - No collection is held by two guards at once.
 * - A set is granted whole or not at all: nobody ever holds part of a set while
 *   waiting for the rest, so waiting can never form a cycle (no deadlock).
 * - Waiters of `acquire` are served in arrival order, and a waiter *reserves* the
 *   collections it waits for: a later `acquire` or `tryAcquire` touching any of them
 *   does not jump ahead, even when that collection is free. A large set is
 *   therefore not starved by a stream of small sets that overlap it.
 * - Every change that can make a set available (a release, or a waiter leaving the
 *   queue without being granted) wakes the `nextChange` watchers of the collections
 *   involved: this is how deferred writes learn to retry.
 *
 * Two ways to take locks, matching the two kinds of writers of group commit:
 * - `tryAcquire(ids)`: never waits; the group committer takes the locks of blind
 *   writes this way and defers a write whose set is not available.
 * - `acquire(ids)`: waits until the whole set is free; read-then-write operations
 *   take their locks this way, up front, before they read.
 *
 * Worked example:
 * ```ts
 * const locks = new WriteLocks();
 * const g1 = locks.tryAcquire([a, b]);     // guard over {a, b}
 * locks.tryAcquire([b, c]);                // undefined: b is held, and c is NOT taken
 * const p = locks.acquire([b, c]);         // queued; reserves b and c
 * locks.tryAcquire([c]);                   // undefined: c is reserved by the queued waiter
 * const woken = locks.nextChange([c]);
 * g1.release();                            // p resolves with a guard over {b, c}; `woken` resolves
 * ```
 */
import { InvalidUsage } from '../persist/errors.js';
import { abortError, abortableWait } from '../persist/wait.js';
import { assertShardId, type ShardId } from '../persist/shard-id.js';

interface QueuedAcquire {
  readonly ids: ReadonlySet<ShardId>;
  grant(guard: WriteLockGuard): void;
}

export class WriteLocks {
  private readonly held = new Set<ShardId>();
  private readonly queue: QueuedAcquire[] = [];
  private readonly watchers = new Map<ShardId, Set<() => void>>();

  /** Grants every collection of `ids` now, or nothing (returns undefined) if any is held or reserved. */
  tryAcquire(ids: Iterable<ShardId>): WriteLockGuard | undefined {
    const set = lockSet(ids);
    if (!this.isAvailable(set, this.reserved())) return undefined;
    return this.grant(set);
  }

  /**
   * Waits until every collection of `ids` is free and no earlier waiter wants any of
   * them, then grants the whole set at once. Rejects with the signal's reason if it
   * fires first, holding nothing.
   */
  acquire(ids: Iterable<ShardId>, opts: { signal?: AbortSignal } = {}): Promise<WriteLockGuard> {
    const set = lockSet(ids);
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const now = this.tryAcquire(set);
    if (now) return Promise.resolve(now);
    return abortableWait<WriteLockGuard>({
      signal,
      register: (grant) => {
        const waiter: QueuedAcquire = { ids: set, grant };
        this.queue.push(waiter);
        // Runs once the wait settled. Still queued means it was not granted (aborted):
        // its reservations are gone, so later waiters and deferred writes may proceed.
        return () => {
          const at = this.queue.indexOf(waiter);
          if (at < 0) return;
          this.queue.splice(at, 1);
          this.grantWaiters();
          this.wake(set);
        };
      },
    });
  }

  /**
   * Resolves at the next release of, or lost reservation on, any collection of
   * `ids` (once). A deferred write waits on this before trying its locks again; the
   * retry is optimistic, so a wake-up does not promise the set is available.
   */
  nextChange(ids: Iterable<ShardId>, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const set = lockSet(ids);
    return abortableWait({
      signal: opts.signal,
      register: (fire) => {
        for (const id of set) {
          let s = this.watchers.get(id);
          if (!s) this.watchers.set(id, (s = new Set()));
          s.add(fire);
        }
        return () => {
          for (const id of set) {
            const s = this.watchers.get(id);
            s?.delete(fire);
            if (s?.size === 0) this.watchers.delete(id);
          }
        };
      },
    });
  }

  /** Whether `id` is currently held. */
  isHeld(id: ShardId): boolean {
    return this.held.has(id);
  }

  /** Whether `tryAcquire` could take `id` now: nobody holds it and no queued `acquire` reserves it. */
  isFree(id: ShardId): boolean {
    return !this.held.has(id) && !this.queue.some((w) => w.ids.has(id));
  }

  /** How many `acquire` calls are waiting. */
  get waiting(): number {
    return this.queue.length;
  }

  /** @internal Called by a guard's `release()`. */
  releaseIds(ids: ReadonlySet<ShardId>): void {
    for (const id of ids) {
      if (!this.held.delete(id)) throw new InvalidUsage(`write lock on ${id} released but it was not held; release each guard once`);
    }
    this.grantWaiters();
    this.wake(ids);
  }

  private grant(set: ReadonlySet<ShardId>): WriteLockGuard {
    for (const id of set) this.held.add(id);
    return new WriteLockGuard(this, set);
  }

  /** Grants queued waiters in order; a waiter still waiting reserves its ids against later ones. */
  private grantWaiters(): void {
    const reserved = new Set<ShardId>();
    for (let i = 0; i < this.queue.length; ) {
      const w = this.queue[i]!;
      if (this.isAvailable(w.ids, reserved)) {
        this.queue.splice(i, 1);
        w.grant(this.grant(w.ids));
        continue;
      }
      for (const id of w.ids) reserved.add(id);
      i++;
    }
  }

  private reserved(): Set<ShardId> {
    const out = new Set<ShardId>();
    for (const w of this.queue) for (const id of w.ids) out.add(id);
    return out;
  }

  private isAvailable(set: ReadonlySet<ShardId>, reserved: ReadonlySet<ShardId>): boolean {
    for (const id of set) if (this.held.has(id) || reserved.has(id)) return false;
    return true;
  }

  private wake(ids: Iterable<ShardId>): void {
    const fired = new Set<() => void>();
    for (const id of ids) for (const f of this.watchers.get(id) ?? []) fired.add(f);
    for (const f of fired) f();
  }
}

/**
 * Holds a set of write locks until `release()`. `absorb` moves another guard's locks
 * into this one, so a group commit can release every lock it gathered at once.
 */
export class WriteLockGuard {
  private owned: Set<ShardId>;
  private released = false;

  /** @internal Created by {@link WriteLocks}. */
  constructor(
    private readonly locks: WriteLocks,
    ids: ReadonlySet<ShardId>,
  ) {
    this.owned = new Set(ids);
  }

  /** The collections this guard holds. */
  get ids(): ReadonlySet<ShardId> {
    return this.owned;
  }

  get isReleased(): boolean {
    return this.released;
  }

  covers(id: ShardId): boolean {
    return !this.released && this.owned.has(id);
  }

  /** Takes over `other`'s locks; `other` is left released and empty. Both must come from the same WriteLocks. */
  absorb(other: WriteLockGuard): void {
    if (this.released || other.released) {
      throw new InvalidUsage('cannot merge a released write lock guard; merge guards before releasing them');
    }
    if (other.locks !== this.locks) throw new InvalidUsage('cannot merge write lock guards of two different WriteLocks');
    for (const id of other.owned) this.owned.add(id);
    other.owned = new Set();
    other.released = true;
  }

  /** Releases every lock; waiters and deferred writes are woken. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    const ids = this.owned;
    this.owned = new Set();
    this.locks.releaseIds(ids);
  }
}

/** An empty guard to gather locks into with `absorb`. */
export function emptyGuard(locks: WriteLocks): WriteLockGuard {
  return new WriteLockGuard(locks, new Set());
}

function lockSet(ids: Iterable<ShardId>): ReadonlySet<ShardId> {
  const set = new Set<ShardId>();
  for (const id of ids) {
    assertShardId(id, 'write lock collection id');
    set.add(id);
  }
  return set;
}
