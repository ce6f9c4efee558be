/**
 * Errors of the txn-wal layer. Where the reference system panics on misuse, these
 * are thrown instead, before anything is written, so every store stays intact.
 */
import { InvalidUsage } from '../persist/errors.js';

/**
 * A commit named a data shard that is not registered at the commit's time.
 *
 * Register the shard first (`txns.register(ts, [writer])`), at a time below the commit's.
 *
 * Example:
 * ```ts
 * const txn = txns.begin();
 * await txn.write(unregisteredId, 'a', null, 1);
 * await txn.commitAt(txns, 5);   // throws NotRegistered naming the shard
 * ```
 */
export class NotRegistered extends InvalidUsage {}

/**
 * A commit named a registered data shard that this TxnsHandle did not register.
 *
 * Commit through the TxnsHandle that registered the shard (it holds the shard's writer).
 *
 * Example:
 * ```ts
 * await txnsA.register(1, [writer]);
 * const txn = txnsB.begin();               // another handle on the same txns shard
 * await txn.write(writer.shardId, 'a', null, 1);
 * await txn.commitAt(txnsB, 3);           // throws NotRegisteredWithHandle
 * ```
 */
export class NotRegisteredWithHandle extends InvalidUsage {}

/**
 * Another process changed the txns shard's critical since opaque: this handle has
 * been fenced out and must stop (the reference system halts the process here).
 *
 * Stop using the handle; open a new one only if this process should take over again.
 *
 * Example:
 * ```ts
 * try { await txns.applyLe(ts); } catch (err) {
 *   if (err instanceof Fenced) await shutDown();   // another controller owns the txns shard now
 * }
 * ```
 */
export class Fenced extends Error {
  /**
   * Builds the error naming the txns shard and the opaque that replaced this handle's.
   *
   * @param message Who was fenced, and by which opaque.
   */
  constructor(message: string) {
    super(message);
    this.name = 'Fenced';
  }
}

/**
 * A data shard was registered with a txns shard while another txns shard owns it
 * (see data-shard-claim.ts): two txns shards applying to one data shard lose commits.
 *
 * Example:
 * ```ts
 * await txnsA.register(1, [writer]);
 * await txnsB.register(1, [writer]);   // throws RegisteredWithAnotherTxnsShard { dataId, ownerTxnsId, txnsId }
 * ```
 */
export class RegisteredWithAnotherTxnsShard extends InvalidUsage {
  /**
   * Builds the message with the three shard ids and how to release the claim.
   *
   * @param dataId The data shard that was being registered.
   * @param ownerTxnsId The txns shard that owns it.
   * @param txnsId The txns shard it was being registered with.
   */
  constructor(
    readonly dataId: string,
    readonly ownerTxnsId: string,
    readonly txnsId: string,
  ) {
    super(
      `cannot register data shard ${dataId} with txns shard ${txnsId}: it belongs to txns shard ${ownerTxnsId}, ` +
        'and a data shard may belong to one txns shard only (two would lose each other\'s commits). ' +
        `Register it with ${ownerTxnsId} instead, or first forget it there: forget(ts, [${dataId}]) through a ` +
        `TxnsHandle on ${ownerTxnsId} releases it. That forget also releases a claim left behind by a register ` +
        'on that txns shard that crashed or lost its timestamp race before the shard was ever registered.',
    );
  }
}
