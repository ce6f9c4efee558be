/**
 * Errors raised by storage backends (Blob and Consensus).
 *
 * Every storage fault says whether the operation it interrupted *definitely did not
 * happen* ({@link DeterminateError}) or *may have happened* ({@link IndeterminateError}).
 * Callers retry indeterminate failures only where the operation is idempotent or can
 * detect its own earlier success (persist does so with idempotency tokens); a
 * determinate failure is safe to report or retry without further checks.
 *
 * Misuse of an interface (a bad argument, a broken precondition) is not a storage
 * fault: it throws {@link LocationUsageError} and nothing is touched.
 */

/**
 * Base class of storage faults. `determinate` tells whether the operation definitely did not happen.
 *
 * Catch it (or test {@link mayHaveHappened}) to decide whether an interrupted write must be
 * checked for before it is retried.
 *
 * Example:
 * ```ts
 * try {
 *   await blob.set(key, bytes);
 * } catch (err) {
 *   // not determinate: it may have been written, so retry only if the write is idempotent
 *   if (err instanceof ExternalError && !err.determinate) await checkWhetherItLanded(key);
 *   throw err;
 * }
 * ```
 */
export abstract class ExternalError extends Error {
  /** True when the interrupted operation definitely did not happen; false when it may have. */
  abstract readonly determinate: boolean;
  /**
   * Wraps a backend's failure; subclasses fix `determinate`.
   *
   * @param message What failed and, where known, why (the backend's own message goes in `cause`).
   * @param options `cause`: the underlying error (driver, file system).
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The operation definitely did not happen: nothing was written.
 *
 * Backends throw it when they know nothing was written (a refused connection, a rolled-back
 * statement).
 *
 * Example:
 * ```ts
 * throw new DeterminateError(`FileBlob: cannot write ${key}: disk full`, { cause: err });
 * ```
 */
export class DeterminateError extends ExternalError {
  /** Always true: the operation did not happen, so retrying it is safe. */
  readonly determinate = true;
}

/**
 * The operation may or may not have happened (a timeout, a lost connection mid-commit).
 *
 * Callers retry it only where the operation is idempotent or can detect its own success.
 *
 * Example:
 * ```ts
 * throw new IndeterminateError('PostgresConsensus: connection lost during compareAndSet', { cause: err });
 * ```
 */
export class IndeterminateError extends ExternalError {
  /** Always false: the operation may have taken effect. */
  readonly determinate = false;
}

/**
 * A call broke the contract of a Blob or Consensus method (bad key, bad seqno, …). Nothing was
 * touched.
 *
 * Fix the call; retrying it unchanged fails the same way.
 *
 * Example:
 * ```ts
 * await consensus.compareAndSet('s1', 2, { seqno: 2, data });
 * // throws LocationUsageError: new seqno must be strictly greater than expected (expected 2, new 2)
 * ```
 */
export class LocationUsageError extends Error {
  /**
   * Builds the error with the rule that was broken.
   *
   * @param message Which rule the call broke and what to pass instead.
   */
  constructor(message: string) {
    super(message);
    this.name = 'LocationUsageError';
  }
}

/**
 * The message of `err` (or its string form), for wrapping it in another error's message.
 * Public: `txnwal/backend` exports it for backend authors.
 *
 * Example:
 * ```ts
 * throw new DeterminateError(`cannot open ${path}: ${describeError(err)}`, { cause: err });
 * ```
 */
export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * True for errors that say the operation may have happened. Unknown errors count as indeterminate.
 *
 * Example:
 * ```ts
 * catch (err) {
 *   if (mayHaveHappened(err)) await checkWhetherItLanded();   // else: it surely did not happen
 * }
 * ```
 */
export function mayHaveHappened(err: unknown): boolean {
  return !(err instanceof DeterminateError) && !(err instanceof LocationUsageError);
}
