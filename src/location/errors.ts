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

/** Base class of storage faults. `determinate` tells whether the operation definitely did not happen. */
export abstract class ExternalError extends Error {
  abstract readonly determinate: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The operation definitely did not happen: nothing was written. */
export class DeterminateError extends ExternalError {
  readonly determinate = true;
}

/** The operation may or may not have happened (a timeout, a lost connection mid-commit). */
export class IndeterminateError extends ExternalError {
  readonly determinate = false;
}

/** A call broke the contract of a Blob or Consensus method (bad key, bad seqno, …). Nothing was touched. */
export class LocationUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocationUsageError';
  }
}

/**
 * The message of `err` (or its string form), for wrapping it in another error's message.
 * Public: `txnwal/backend` exports it for backend authors.
 */
export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True for errors that say the operation may have happened. Unknown errors count as indeterminate. */
export function mayHaveHappened(err: unknown): boolean {
  return !(err instanceof DeterminateError) && !(err instanceof LocationUsageError);
}
