/**
 * The errors of read-write transactions. Both conflicts are expected outcomes of
 * concurrency, not bugs: `db.transact` retries them; code that runs transactions by
 * hand catches them, aborts and runs the transaction again (or, for
 * ValidationFailed from a lock, refreshes the read timestamp and reads again).
 */
import type { Timestamp } from '../persist/time.js';

/**
 * Another transaction changed a key this one read or writes, after this one's
 * read timestamp: what was read no longer holds. Names the key and the time of
 * the conflicting commit. Nothing of this transaction was written.
 *
 * `db.transact` retries it for you.
 *
 * Example:
 * ```ts
 * try {
 *   await tx.commit();
 * } catch (err) {
 *   if (err instanceof ValidationFailed) console.log(`${err.key} changed at ${err.conflictTs}`);   // run it again
 * }
 * ```
 */
export class ValidationFailed extends Error {
  /**
   * Builds the message with the key, both times and how the key was used.
   *
   * @param collection The collection of the key.
   * @param key The key that changed.
   */
  constructor(
    readonly collection: string,
    readonly key: unknown,
    /** When the conflicting commit landed. */
    readonly conflictTs: Timestamp,
    /** The transaction's read timestamp. */
    readonly readTs: Timestamp,
    /** Whether the key was written ('write') or only read ('read', serializable only) by this transaction. */
    readonly use: 'read' | 'write',
  ) {
    super(
      `validation failed: key ${describeKey(key)} of collection ${JSON.stringify(collection)} was changed at ${conflictTs}, ` +
        `after this transaction's read timestamp ${readTs} (it ${use === 'read' ? 'read' : 'writes'} that key); ` +
        'nothing was written. Run the transaction again, or call refreshReadTs() and read again',
    );
    this.name = 'ValidationFailed';
  }
}

/**
 * The transaction was already committed or aborted.
 *
 * Example:
 * ```ts
 * await tx.commit();
 * await tx.set('accounts', 'alice', null);   // throws TransactionClosed: begin a new one
 * ```
 */
export class TransactionClosed extends Error {
  /**
   * Builds the message with the call and how the transaction ended.
   *
   * @param op The call that was refused.
   * @param how Whether the transaction was committed or aborted.
   */
  constructor(op: string, how: 'committed' | 'aborted') {
    super(`cannot ${op}: the transaction was already ${how}; begin a new one`);
    this.name = 'TransactionClosed';
  }
}

/**
 * `db.transact` gave up: the transaction kept conflicting. `cause` is the last conflict.
 *
 * Example:
 * ```ts
 * await db.transact(fn, { maxAttempts: 3 });   // throws TooManyConflicts { attempts: 3, cause: the last conflict }
 * ```
 */
export class TooManyConflicts extends Error {
  /**
   * Builds the message with the number of attempts.
   *
   * @param attempts How many times the transaction ran.
   * @param cause The last conflict.
   */
  constructor(
    readonly attempts: number,
    cause: unknown,
  ) {
    super(`the transaction conflicted ${attempts} times in a row and was not committed; nothing of it was written`, { cause });
    this.name = 'TooManyConflicts';
  }
}

/** For messages: a key as JSON where it can be. */
export function describeKey(key: unknown): string {
  try {
    if (key instanceof Uint8Array) return `bytes(${key.byteLength})`;
    return JSON.stringify(key) ?? String(key);
  } catch {
    return String(key);
  }
}
