/**
 * KeyLocks: exclusive per-process locks on `(collection, key)`, taken by read-write
 * transactions before they write a key (or, with `getForUpdate`, before they read
 * it), and waited on by blind writes to those keys.
 *
 * Locks are per process: two processes never see each other's locks. What makes
 * transactions safe across processes is validation at commit (a commit re-checks
 * its keys against every commit that landed before it); locks only keep two
 * transactions of one process from doing work that one of them must throw away.
 *
 * Deadlocks cannot happen, by *wait-die*: every holder has an age (a number that
 * grows with each transaction begun). A transaction asking for a key held by a
 * *younger* one waits for it; one asking for a key held by an *older* one fails at
 * once with {@link LockConflict} and should abort and retry (`db.transact` does),
 * keeping its age so it eventually becomes the oldest. Waits only ever go from older
 * to younger, so no cycle of waits can form.
 *
 * Invariants:
 * - A key has at most one holder; `release(holder)` frees every key it holds and
 *   wakes the waiters of those keys (in age order, oldest first).
 * - A wait ends when the key is granted, when its signal aborts, or when the
 *   waiter is released (its transaction ended): it never outlives its transaction.
 * - Blind writers (`waitUnlocked`) hold nothing: they wait until no transaction
 *   holds any of their keys, then proceed without locking.
 *
 * Example:
 * ```ts
 * const locks = new KeyLocks();
 * const t1 = locks.holder(), t2 = locks.holder();   // t1 is older
 * await locks.acquire(t2, 'accounts', 'alice');      // t2 holds alice
 * const p = locks.acquire(t1, 'accounts', 'alice');  // t1 is older: it waits for t2 …
 * locks.release(t2);
 * await p;                                            // … and holds alice now
 * await locks.acquire(t2, 'accounts', 'alice');      // t2 is younger than t1: LockConflict
 * ```
 */
import { abortableWait } from '../persist/wait.js';
import { valueIdentity } from '../operators/row-identity.js';
import { describeKey } from './transaction-errors.js';

/**
 * A transaction asked for a key an older transaction holds (wait-die): abort and retry.
 *
 * `db.transact` retries it for you, keeping the transaction's age so it eventually wins.
 *
 * Example:
 * ```ts
 * await locks.acquire(older, 'accounts', 'alice');
 * await locks.acquire(younger, 'accounts', 'alice');   // throws LockConflict
 * ```
 */
export class LockConflict extends Error {
  /**
   * Builds the message with the key.
   *
   * @param collection The collection of the key.
   * @param key The key that is locked.
   */
  constructor(
    readonly collection: string,
    readonly key: unknown,
  ) {
    super(
      `key ${describeKey(key)} of collection ${JSON.stringify(collection)} is locked by an older transaction of this process; ` +
        'abort this transaction and run it again (db.transact does this for you)',
    );
    this.name = 'LockConflict';
  }
}

/**
 * A transaction ended (committed or aborted) while it waited for a lock.
 *
 * Example:
 * ```ts
 * const wait = locks.acquire(t1, 'accounts', 'alice');   // t2 holds it
 * locks.release(t1);                                     // t1 ended
 * await wait;                                            // rejects with LockWaitEnded
 * ```
 */
export class LockWaitEnded extends Error {
  /**
   * Builds the message with the key waited for.
   *
   * @param collection The collection of the key.
   * @param key The key that was waited for.
   */
  constructor(collection: string, key: unknown) {
    super(`the transaction ended while waiting for key ${describeKey(key)} of collection ${JSON.stringify(collection)}`);
    this.name = 'LockWaitEnded';
  }
}

/**
 * One transaction's identity for locking; older holders have smaller ages.
 *
 * Example:
 * ```ts
 * const t1 = locks.holder();   // { age: 0 }
 * const t2 = locks.holder();   // { age: 1 }: younger
 * ```
 */
export interface LockHolder {
  /** Grows with every holder made; a retried transaction keeps its age. */
  readonly age: number;
}

interface Waiter {
  holder: LockHolder | undefined;
  collection: string;
  key: unknown;
  wake: () => void;
  fail: (err: unknown) => void;
}

interface Lock {
  holder: LockHolder;
  waiters: Waiter[];
}

/**
 * Exclusive per-process locks on `(collection, key)` for read-write transactions, with wait-die so
 * no deadlock can form: an older transaction waits, a younger one fails with LockConflict.
 *
 * Example:
 * ```ts
 * const locks = new KeyLocks();
 * const t1 = locks.holder(), t2 = locks.holder();   // t1 is older
 * await locks.acquire(t2, 'accounts', 'alice');      // t2 holds alice
 * const p = locks.acquire(t1, 'accounts', 'alice');  // t1 waits for t2 …
 * locks.release(t2);
 * await p;                                            // … and holds alice now
 * ```
 */
export class KeyLocks {
  private nextAge = 0;
  private readonly locks = new Map<string, Lock>();
  private readonly held = new Map<LockHolder, Set<string>>();
  private readonly waiting = new Map<LockHolder, Set<Waiter>>();

  /** A new holder, younger than every one before it. Pass `age` to keep an aborted transaction's age on retry. */
  holder(age?: number): LockHolder {
    return { age: age ?? this.nextAge++ };
  }

  /** How many keys are locked (for tests and metrics). */
  get size(): number {
    return this.locks.size;
  }

  /** Whether `holder` holds the key. */
  holds(holder: LockHolder, collection: string, key: unknown): boolean {
    return this.locks.get(lockId(collection, key))?.holder === holder;
  }

  /**
   * Takes the key for `holder`: at once if free or already its own, after the
   * current holder releases it if that one is younger; rejects with
   * {@link LockConflict} if it is older (wait-die). Resolves with whether it had to wait.
   */
  async acquire(holder: LockHolder, collection: string, key: unknown, signal?: AbortSignal): Promise<boolean> {
    const id = lockId(collection, key);
    for (let waited = false; ; waited = true) {
      const lock = this.locks.get(id);
      if (!lock) {
        this.locks.set(id, { holder, waiters: [] });
        let mine = this.held.get(holder);
        if (!mine) this.held.set(holder, (mine = new Set()));
        mine.add(id);
        return waited;
      }
      if (lock.holder === holder) return waited;
      if (lock.holder.age < holder.age) throw new LockConflict(collection, key);
      await this.waitFor(lock, holder, collection, key, signal);
    }
  }

  /** Resolves once no transaction holds any of `keys` of `collection` (a blind write's wait). */
  async waitUnlocked(collection: string, keys: Iterable<unknown>, signal?: AbortSignal): Promise<void> {
    for (const key of keys) {
      for (;;) {
        const lock = this.locks.get(lockId(collection, key));
        if (!lock) break;
        await this.waitFor(lock, undefined, collection, key, signal);
      }
    }
  }

  /** Frees every key `holder` holds and ends its waits. Idempotent. */
  release(holder: LockHolder): void {
    const waits = this.waiting.get(holder);
    if (waits) {
      this.waiting.delete(holder);
      for (const w of waits) w.fail(new LockWaitEnded(w.collection, w.key));
    }
    const mine = this.held.get(holder);
    if (!mine) return;
    this.held.delete(holder);
    for (const id of mine) {
      const lock = this.locks.get(id);
      if (!lock || lock.holder !== holder) continue;
      this.locks.delete(id);
      // Oldest first: the first waiter to run takes the key, the others wait again.
      // A copy: each wake takes its waiter out of lock.waiters as it runs.
      const waiters = [...lock.waiters].sort((a, b) => (a.holder?.age ?? -1) - (b.holder?.age ?? -1));
      for (const w of waiters) w.wake();
    }
  }

  private waitFor(lock: Lock, holder: LockHolder | undefined, collection: string, key: unknown, signal?: AbortSignal): Promise<void> {
    return abortableWait<void>({
      signal,
      register: (wake, fail) => {
        const waiter: Waiter = { holder, collection, key, wake: () => wake(undefined), fail };
        lock.waiters.push(waiter);
        let mine: Set<Waiter> | undefined;
        if (holder) {
          mine = this.waiting.get(holder);
          if (!mine) this.waiting.set(holder, (mine = new Set()));
          mine.add(waiter);
        }
        return () => {
          const i = lock.waiters.indexOf(waiter);
          if (i >= 0) lock.waiters.splice(i, 1);
          mine?.delete(waiter);
        };
      },
    });
  }
}

function lockId(collection: string, key: unknown): string {
  return `${collection.length}:${collection}${valueIdentity(key)}`;
}
