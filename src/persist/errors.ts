/**
 * Errors of the persist layer.
 *
 * Expected outcomes are values, not exceptions (an upper mismatch is
 * `{ ok: false, current }`). What throws:
 * - {@link InvalidUsage} and its subclasses: the caller broke a rule. The message
 *   names the rule and how to fix the call; nothing was written.
 * - {@link PersistStorageError}: the backing store failed and retries ran out.
 *   `mayHaveHappened` says whether the operation could still have taken effect.
 * - {@link InvariantViolation}: internal state broke a rule that should be
 *   impossible (the spec's "panic"); the handle should be dropped.
 * - {@link LeaseExpired}: a reader's lease lapsed and the shard may have compacted
 *   past it; open a new reader.
 * - {@link ClientClosed}: the PersistClient was closed while the call waited (a
 *   listen, a snapshot at a future time, `waitForUpperPast`) or before it started.
 */

export class InvalidUsage extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A shard was opened with key/value codecs other than the ones it was created with. */
export class CodecMismatch extends InvalidUsage {}
/** A timestamp or diff that is not a safe integer of the right sign. */
export class InvalidTimestamp extends InvalidUsage {}
/** Frontiers in the wrong order (e.g. `newUpper < expectedUpper`, `upper < lower`). */
export class InvalidBounds extends InvalidUsage {}
/** `[u, u)` with data: there is no time in an empty interval to write at. */
export class InvalidEmptyTimeInterval extends InvalidUsage {}
/** An update added to a batch builder below the builder's lower. */
export class UpdateNotBeyondLower extends InvalidUsage {}
/** An update at or past the upper a batch was finished with. */
export class UpdateBeyondUpper extends InvalidUsage {}
/** A batch whose bounds do not cover the interval it is appended at. */
export class InvalidBatchBounds extends InvalidUsage {}
/** A batch built for (or by a writer of) another shard. */
export class BatchNotFromThisShard extends InvalidUsage {}
/** A rewritten batch appended with an upper other than its own, or a bad rewriteTs call. */
export class InvalidRewrite extends InvalidUsage {}
/** A batch written by a txnwal version this build cannot read. */
export class IncompatibleVersion extends InvalidUsage {}
/** A batch used after it was appended, deleted or made transmittable. */
export class BatchConsumed extends InvalidUsage {}
/** A read at a time below the since: the shard may have been compacted past it. */
export class ReadBelowSince extends InvalidUsage {
  constructor(readonly asOf: number, readonly since: number) {
    super(
      `cannot read at asOf=${asOf}: the since is ${since}, so times below it may have been compacted. ` +
        `Read at asOf >= ${since}, or hold the since back with a reader opened earlier.`,
    );
  }
}
/** A handle used after `expire()`. */
export class HandleExpired extends InvalidUsage {}
/**
 * An argument or option of the wrong kind or out of range (a string where a number
 * belongs, `NaN`, a missing codec…). The message names the argument, what it got
 * and what is allowed.
 */
export class InvalidArgument extends InvalidUsage {}

/** A leased reader missed its heartbeats and was expired by another process. */
export class LeaseExpired extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeaseExpired';
  }
}

/**
 * The PersistClient was closed while the call was pending (or before it ran). Not
 * misuse of the call itself: the wait it was in can no longer end any other way.
 */
export class ClientClosed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClientClosed';
  }
}

/** A broken internal invariant (the reference system panics here). */
export class InvariantViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantViolation';
  }
}

/** Storage kept failing. `mayHaveHappened` is false only when the operation definitely did not happen. */
export class PersistStorageError extends Error {
  constructor(
    message: string,
    readonly mayHaveHappened: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PersistStorageError';
  }
}

/** An object in storage was written by an incompatible format version, or is corrupt. */
export class StoredFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoredFormatError';
  }
}

export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantViolation(typeof message === 'string' ? message : message());
}
