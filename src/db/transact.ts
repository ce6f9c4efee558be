/**
 * transact: run a read-write transaction function to a commit, running it again
 * on a conflict ({@link ValidationFailed} or {@link LockConflict}), with jittered
 * exponential backoff and a bound on attempts.
 *
 * Invariants:
 * - `fn` runs at most `maxAttempts` times; each run gets a fresh transaction at a
 *   fresh read timestamp, so what it reads is never stale.
 * - A retried transaction keeps its lock age (wait-die), so it becomes the oldest
 *   in its process and stops dying on locks: no transaction starves on locks.
 * - Any other error (one thrown by `fn`, a storage error) aborts the transaction and
 *   propagates unchanged; nothing is retried that might have landed (a commit that
 *   may have happened throws a storage error, which is not a conflict).
 * - After `maxAttempts` conflicts it rejects with {@link TooManyConflicts}, whose
 *   `cause` is the last conflict. Nothing of any attempt was written.
 *
 * Example (a transfer that never overdraws):
 * ```ts
 * const { value, commitTs } = await transact(host, async (tx) => {
 *   const from = (await tx.getForUpdate(accounts, 'alice')) ?? 0;
 *   if (from < 10) return 'insufficient';        // commits nothing
 *   await tx.set(accounts, 'alice', from - 10);
 *   await tx.set(accounts, 'bob', ((await tx.getForUpdate(accounts, 'bob')) ?? 0) + 10);
 *   return 'done';
 * }, { isolation: 'serializable' });
 * ```
 */
import { InvalidUsage } from '../persist/errors.js';
import type { Timestamp } from '../persist/time.js';
import { sleep } from '../persist/wait.js';
import { ReadOutsideArrangement } from './arrangement.js';
import { LockConflict } from './key-locks.js';
import { ReadWriteTransaction, type IsolationLevel, type TransactionHost } from './read-write-transaction.js';
import { TooManyConflicts, ValidationFailed } from './transaction-errors.js';

/**
 * Options of `db.transact` and {@link transact}: the isolation level and how often to retry.
 *
 * Example:
 * ```ts
 * await db.transact(fn, { isolation: 'snapshot', maxAttempts: 20, signal: AbortSignal.timeout(5_000) });
 * ```
 */
export interface TransactOptions {
  /** Default `'serializable'`. */
  isolation?: IsolationLevel;
  /** Runs of `fn` before giving up with TooManyConflicts. Default 10. */
  maxAttempts?: number;
  /** Backoff before the second run, doubling up to `maxBackoffMs`, with full jitter. Default 1 ms. */
  initialBackoffMs?: number;
  /** Default 100 ms. */
  maxBackoffMs?: number;
  /** Stops retrying (and waiting) when it fires. */
  signal?: AbortSignal;
}

/**
 * Whether `err` is a conflict that running the transaction again can resolve: a
 * failed validation, a lock held by an older transaction, or a read timestamp a
 * collection compacted past before this process first read it.
 *
 * Example:
 * ```ts
 * try { await tx.commit(); } catch (err) {
 *   if (isConflict(err)) return runAgain();
 *   throw err;
 * }
 * ```
 */
export function isConflict(err: unknown): err is ValidationFailed | LockConflict | ReadOutsideArrangement {
  return err instanceof ValidationFailed || err instanceof LockConflict || (err instanceof ReadOutsideArrangement && err.asOf < err.since);
}

/**
 * Runs `fn` in a fresh read-write transaction and commits it, running it again (with jittered
 * backoff, keeping its lock age) on a conflict; resolves with `fn`'s value, the commit time and the
 * number of runs. `db.transact` is this over the database.
 *
 * Example:
 * ```ts
 * const { value, commitTs, attempts } = await transact(host, async (tx) => {
 *   const from = (await tx.getForUpdate(accounts, 'alice')) ?? 0;
 *   if (from < 10) return 'insufficient';   // commits nothing
 *   await tx.set(accounts, 'alice', from - 10);
 *   return 'done';
 * });
 * ```
 */
export async function transact<R>(
  host: TransactionHost,
  fn: (tx: ReadWriteTransaction) => Promise<R>,
  opts: TransactOptions = {},
): Promise<{ value: R; commitTs: Timestamp; attempts: number }> {
  const maxAttempts = opts.maxAttempts ?? 10;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    throw new InvalidUsage(`transact: maxAttempts must be a positive integer, got ${String(maxAttempts)}`);
  }
  const initialMs = opts.initialBackoffMs ?? 1;
  const maxMs = opts.maxBackoffMs ?? 100;
  let lockAge: number | undefined;
  let last: unknown;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    opts.signal?.throwIfAborted();
    const tx = await ReadWriteTransaction.begin(host, { isolation: opts.isolation, lockAge });
    lockAge = tx.lockAge;
    try {
      const value = await fn(tx);
      const { commitTs } = await tx.commit();
      return { value, commitTs, attempts: attempt };
    } catch (err) {
      tx.abort();
      if (!isConflict(err)) throw err;
      last = err;
    }
    if (attempt < maxAttempts) {
      const ceiling = Math.min(maxMs, initialMs * 2 ** (attempt - 1));
      await sleep(Math.random() * ceiling, opts.signal);
    }
  }
  throw new TooManyConflicts(maxAttempts, last);
}
