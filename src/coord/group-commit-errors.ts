/**
 * Errors of group commit.
 *
 * Misuse is an {@link InvalidUsage} subclass, thrown (or rejected) before the write
 * joins any group, so it never affects anybody else's write. A failure of the commit
 * itself rejects every write of that group with {@link GroupCommitFailed}; a failure
 * *after* the commit landed rejects with {@link CommittedButUnconfirmed}, which says
 * the write is durable.
 *
 * Example:
 * ```ts
 * try {
 *   await committer.submitWrite({ [d0]: [['a', null, 1]] });
 * } catch (err) {
 *   if (err instanceof GroupCommitFailed && !err.mayHaveHappened) retryLater();
 * }
 * ```
 */
import { mayHaveLanded } from '../persist/blob-deletion.js';
import { InvalidUsage } from '../persist/errors.js';
import type { ShardId } from '../persist/shard-id.js';
import type { Timestamp } from '../persist/time.js';

/**
 * A write named a collection that is not registered in the txns shard (through this committer's
 * handle).
 *
 * Example:
 * ```ts
 * await committer.submitWrite({ [newShardId()]: [['a', null, 1]] });   // throws UnknownCollection
 * ```
 */
export class UnknownCollection extends InvalidUsage {
  /**
   * Builds the message with the collection, the txns shard and how to register it.
   *
   * @param collection The collection (data shard) the write named.
   * @param txnsId The committer's txns shard.
   */
  constructor(
    readonly collection: ShardId,
    txnsId: ShardId,
  ) {
    super(
      `cannot write to collection ${collection}: it is not registered in txns shard ${txnsId} ` +
        `(as seen by the committer's TxnsHandle); register it first, through the same handle ` +
        `(committer.register([writer]) or txns.register(ts, [writer]))`,
    );
  }
}

/**
 * A user write (or read-then-write) was submitted while the committer is in read-only mode.
 *
 * Example:
 * ```ts
 * const gc = await GroupCommitter.open(txns, oracle, { readOnly: true });
 * await gc.submitWrite({ [d0]: [['a', null, 1]] });   // throws WriteInReadOnlyMode
 * ```
 */
export class WriteInReadOnlyMode extends InvalidUsage {
  /**
   * Builds the message naming the refused call.
   *
   * @param op The call that was refused.
   */
  constructor(op: string) {
    super(
      `cannot ${op} while the group committer is in read-only mode: only system writes are accepted ` +
        `(and buffered); call leaveReadOnly() first`,
    );
  }
}

/**
 * Work was submitted after `close()`.
 *
 * Example:
 * ```ts
 * await gc.close();
 * await gc.submitWrite({ [d0]: [['a', null, 1]] });   // throws CommitterClosed
 * ```
 */
export class CommitterClosed extends InvalidUsage {
  /**
   * Builds the message naming the refused call.
   *
   * @param op The call that was refused.
   */
  constructor(op: string) {
    super(`cannot ${op}: the group committer was closed; open a new one with GroupCommitter.open()`);
  }
}

/**
 * A read-then-write operation read or wrote a collection it did not lock.
 *
 * Example:
 * ```ts
 * await gc.readThenWrite([A], async (readTs, read) => {
 *   await read(B);   // throws OutsideLockedCollections: B is not locked
 * });
 * ```
 */
export class OutsideLockedCollections extends InvalidUsage {
  /**
   * Builds the message with the collection and the ones that are locked.
   *
   * @param what Whether the function read or wrote it.
   * @param collection The collection it was not allowed to touch.
   * @param locked The collections it did lock.
   */
  constructor(what: 'read' | 'write', collection: ShardId, locked: Iterable<ShardId>) {
    super(
      `a read-then-write operation tried to ${what} collection ${collection}, which it did not lock ` +
        `(it locked: ${[...locked].join(', ') || 'nothing'}); list every collection it reads or writes ` +
        `in readThenWrite(collections, …)`,
    );
  }
}

/**
 * The group commit a write belonged to failed: none of the group's writes were committed (see
 * `mayHaveHappened`).
 *
 * Resubmit the write only when `mayHaveHappened` is false; otherwise read first.
 *
 * Example:
 * ```ts
 * try {
 *   await gc.submitWrite({ [d0]: [['a', null, 1]] });
 * } catch (err) {
 *   if (err instanceof GroupCommitFailed && !err.mayHaveHappened) await gc.submitWrite({ [d0]: [['a', null, 1]] });
 * }
 * ```
 */
export class GroupCommitFailed extends Error {
  /** False only when the cause proves nothing was written (misuse, or a storage error that says so). */
  readonly mayHaveHappened: boolean;

  /**
   * Builds the error from the commit's failure.
   *
   * @param attemptedTs The timestamp the group tried to commit at, if it got one.
   * @param groupSize How many writes the group held.
   * @param cause Why the commit failed.
   */
  constructor(
    readonly attemptedTs: Timestamp | undefined,
    readonly groupSize: number,
    cause: unknown,
  ) {
    // Only a cause that says nothing was written makes a resubmit safe.
    const maybe = mayHaveLanded(cause);
    const at = attemptedTs === undefined ? '' : ` at ${attemptedTs}`;
    super(
      `the group commit${at} of ${groupSize} write(s) failed: ${(cause as Error)?.message ?? String(cause)}; ` +
        (maybe
          ? 'it may have landed: read the collections before retrying'
          : 'nothing of it was written, so it is safe to submit again'),
      { cause },
    );
    this.name = 'GroupCommitFailed';
    this.mayHaveHappened = maybe;
  }
}

/**
 * The write IS committed (durable, at `commitTs`), but a step after the commit
 * failed: marking the timestamp applied in the oracle, or applying the commit to the
 * data shards (with `ack: 'apply'`). The next group commit applies it; do not submit
 * it again.
 *
 *
 * Example:
 * ```ts
 * try { await gc.submitWrite(writes); } catch (err) {
 *   if (err instanceof CommittedButUnconfirmed) log.warn(`durable at ${err.commitTs}; ${err.step} failed`);
 * }
 * ```
 */
export class CommittedButUnconfirmed extends Error {
  /**
   * Builds the error from the step's failure.
   *
   * @param commitTs The timestamp the write is committed at.
   * @param step The step after the commit that failed: telling the oracle, or the apply.
   * @param cause Why it failed.
   */
  constructor(
    readonly commitTs: Timestamp,
    readonly step: 'oracle' | 'apply',
    cause: unknown,
  ) {
    super(
      `the write was committed at ${commitTs}, but ${step === 'oracle' ? 'telling the timestamp oracle' : 'applying it'} ` +
        `failed: ${(cause as Error)?.message ?? String(cause)}; it is durable and will be applied later — do not submit it again`,
      { cause },
    );
    this.name = 'CommittedButUnconfirmed';
  }
}
