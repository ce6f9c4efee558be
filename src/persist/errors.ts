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

/**
 * The caller broke a rule of the API: the message names the rule and how to fix the call; nothing
 * was written.
 *
 * Catch `InvalidUsage` to handle every misuse at once; the subclasses only say which rule
 * (InvalidTimestamp, UpdateBeyondUpper, …, exported from `txnwal/backend`).
 *
 * Example:
 * ```ts
 * try {
 *   await writer.compareAndAppend([['a', null, 5, 1]], 0, 1);
 * } catch (err) {
 *   if (err instanceof InvalidUsage) console.error(err.message);   // UpdateBeyondUpper: time 5 is not below the new upper 1 …
 * }
 * ```
 */
export class InvalidUsage extends Error {
  /**
   * Builds the error; `name` is the concrete subclass's name.
   *
   * @param message Which rule was broken and what to do instead.
   */
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A shard was opened with key/value codecs other than the ones it was created with.
 *
 * Example:
 * ```ts
 * await client.openWriter(id, { key: Codecs.string, val: Codecs.unit });
 * await client.openWriter(id, { key: Codecs.json(), val: Codecs.unit });   // throws CodecMismatch naming both
 * ```
 */
export class CodecMismatch extends InvalidUsage {}
/**
 * A timestamp or diff that is not a safe integer of the right sign.
 *
 * Example:
 * ```ts
 * await writer.compareAndAppend([['a', null, 1.5, 1]], 0, 2);   // throws InvalidTimestamp
 * ```
 */
export class InvalidTimestamp extends InvalidUsage {}
/**
 * Frontiers in the wrong order (e.g. `newUpper < expectedUpper`, `upper < lower`).
 *
 * Example:
 * ```ts
 * await writer.compareAndAppend([], 5, 3);   // throws InvalidBounds: newUpper 3 < expectedUpper 5
 * ```
 */
export class InvalidBounds extends InvalidUsage {}
/**
 * `[u, u)` with data: there is no time in an empty interval to write at.
 *
 * Example:
 * ```ts
 * await writer.compareAndAppend([['a', null, 4, 1]], 4, 4);   // throws InvalidEmptyTimeInterval
 * ```
 */
export class InvalidEmptyTimeInterval extends InvalidUsage {}
/**
 * An update added to a batch builder below the builder's lower.
 *
 * Example:
 * ```ts
 * const b = await writer.builder(5);
 * await b.add('a', null, 3, 1);   // throws UpdateNotBeyondLower
 * ```
 */
export class UpdateNotBeyondLower extends InvalidUsage {}
/**
 * An update at or past the upper a batch was finished with.
 *
 * Example:
 * ```ts
 * await writer.compareAndAppend([['a', null, 9, 1]], 0, 5);   // throws UpdateBeyondUpper
 * ```
 */
export class UpdateBeyondUpper extends InvalidUsage {}
/**
 * A batch whose bounds do not cover the interval it is appended at.
 *
 * Example:
 * ```ts
 * const b = await writer.batch([['a', null, 0, 1]], 0, 1);
 * await writer.compareAndAppendBatch([b], 3, 4);   // throws InvalidBatchBounds: [0, 1) does not cover [3, 4)
 * ```
 */
export class InvalidBatchBounds extends InvalidUsage {}
/**
 * A batch built for (or by a writer of) another shard.
 *
 * Example:
 * ```ts
 * const b = await writerOfA.batch(rows, 0, 1);
 * await writerOfB.compareAndAppendBatch([b], 0, 1);   // throws BatchNotFromThisShard
 * ```
 */
export class BatchNotFromThisShard extends InvalidUsage {}
/**
 * A rewritten batch appended with an upper other than its own, or a bad rewriteTs call.
 *
 * Example:
 * ```ts
 * const b = await writer.batch(rows, 0, 1);
 * b.rewriteTs(7, 8);
 * await writer.compareAndAppendBatch([b], 7, 9);   // throws InvalidRewrite: the batch was rewritten to upper 8
 * ```
 */
export class InvalidRewrite extends InvalidUsage {}
/**
 * A batch written by a txnwal version this build cannot read.
 *
 * Example:
 * ```ts
 * writer.batchFromTransmittable(bytesFromANewerBuild);   // throws IncompatibleVersion
 * ```
 */
export class IncompatibleVersion extends InvalidUsage {}
/**
 * A batch used after it was appended, deleted or made transmittable.
 *
 * Example:
 * ```ts
 * await writer.compareAndAppendBatch([b], 0, 1);
 * await writer.compareAndAppendBatch([b], 1, 2);   // throws BatchConsumed: it was already appended
 * ```
 */
export class BatchConsumed extends InvalidUsage {}
/**
 * A read at a time below the since: the shard may have been compacted past it.
 *
 * Read at the since or later, or keep a reader open to hold the since back.
 *
 * Example:
 * ```ts
 * await reader.downgradeSince(10);
 * await reader.snapshotAndFetch(5);   // throws ReadBelowSince { asOf: 5, since: 10 } (once the shard's since passed 5)
 * ```
 */
export class ReadBelowSince extends InvalidUsage {
  /**
   * Builds the message from the two times.
   *
   * @param asOf The time the read asked for.
   * @param since The since that was past it.
   */
  constructor(readonly asOf: number, readonly since: number) {
    super(
      `cannot read at asOf=${asOf}: the since is ${since}, so times below it may have been compacted. ` +
        `Read at asOf >= ${since}, or hold the since back with a reader opened earlier.`,
    );
  }
}
/**
 * A handle used after `expire()`.
 *
 * Example:
 * ```ts
 * await writer.expire();
 * await writer.compareAndAppend(rows, 1, 2);   // throws HandleExpired
 * ```
 */
export class HandleExpired extends InvalidUsage {}
/**
 * An argument or option of the wrong kind or out of range (a string where a number
 * belongs, `NaN`, a missing codec…). The message names the argument, what it got
 * and what is allowed.
 *
 *
 * Example:
 * ```ts
 * await client.openWriter(id, { key: Codecs.string });   // throws InvalidArgument: codecs.val is missing
 * ```
 */
export class InvalidArgument extends InvalidUsage {}

/**
 * A leased reader missed its heartbeats and was expired by another process.
 *
 * Open a new reader; the data it held back may have been compacted.
 *
 * Example:
 * ```ts
 * try { await listen.next(); } catch (err) {
 *   if (err instanceof LeaseExpired) listen = await (await client.openLeasedReader(id, codecs)).listen(since);
 * }
 * ```
 */
export class LeaseExpired extends Error {
  /**
   * Builds the error with the reader, the shard and how long the lease was.
   *
   * @param message What lapsed and what to do.
   */
  constructor(message: string) {
    super(message);
    this.name = 'LeaseExpired';
  }
}

/**
 * The PersistClient was closed while the call was pending (or before it ran). Not
 * misuse of the call itself: the wait it was in can no longer end any other way.
 *
 *
 * Example:
 * ```ts
 * const pending = reader.snapshotAndFetch(1_000);   // waits for the upper to pass 1000
 * await client.close();
 * await pending;                                    // rejects with ClientClosed
 * ```
 */
export class ClientClosed extends Error {
  /**
   * Builds the error with the call that was cut short.
   *
   * @param message Which call was pending and what to do (open a new client).
   */
  constructor(message: string) {
    super(message);
    this.name = 'ClientClosed';
  }
}

/**
 * A broken internal invariant (the reference system panics here).
 *
 * Drop the handle (or client) it came from; it is a bug, and the message is worth reporting.
 *
 * Example:
 * ```ts
 * catch (err) {
 *   if (err instanceof InvariantViolation) { await client.close(); throw err; }
 * }
 * ```
 */
export class InvariantViolation extends Error {
  /**
   * Builds the error with the rule that broke.
   *
   * @param message The invariant and the values that broke it.
   */
  constructor(message: string) {
    super(message);
    this.name = 'InvariantViolation';
  }
}

/**
 * Storage kept failing. `mayHaveHappened` is false only when the operation definitely did not happen.
 *
 * Thrown once storage retries (`storageRetry`) run out. Check `mayHaveHappened` before you
 * retry a write that is not idempotent.
 *
 * Example:
 * ```ts
 * try {
 *   await writer.compareAndAppend(rows, upper, upper + 1);
 * } catch (err) {
 *   if (err instanceof PersistStorageError && err.mayHaveHappened) upper = await writer.fetchRecentUpper();
 * }
 * ```
 */
export class PersistStorageError extends Error {
  /**
   * Builds the error from the last storage failure.
   *
   * @param message What kept failing.
   * @param mayHaveHappened Whether the operation may still have taken effect.
   * @param options `cause`: the last storage error.
   */
  constructor(
    message: string,
    /** False only when the operation definitely did not happen. */
    readonly mayHaveHappened: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PersistStorageError';
  }
}

/**
 * An object in storage was written by an incompatible format version, or is corrupt.
 *
 * Reading it again will not help: restore the object from a backup, or upgrade txnwal.
 *
 * Example:
 * ```ts
 * await reader.snapshotAndFetch(0);   // throws StoredFormatError when a part's bytes are corrupt
 * ```
 */
export class StoredFormatError extends Error {
  /**
   * Builds the error naming the object and what was wrong with it.
   *
   * @param message Which object, and what was wrong with it.
   */
  constructor(message: string) {
    super(message);
    this.name = 'StoredFormatError';
  }
}

export function invariant(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantViolation(typeof message === 'string' ? message : message());
}
