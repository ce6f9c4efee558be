/**
 * Errors of the txn-wal layer. Where the reference system panics on misuse, these
 * are thrown instead, before anything is written, so every store stays intact.
 */
import { InvalidUsage } from '../persist/errors.js';

/** A commit named a data shard that is not registered at the commit's time. */
export class NotRegistered extends InvalidUsage {}

/** A commit named a registered data shard that this TxnsHandle did not register. */
export class NotRegisteredWithHandle extends InvalidUsage {}

/**
 * Another process changed the txns shard's critical since opaque: this handle has
 * been fenced out and must stop (the reference system halts the process here).
 */
export class Fenced extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Fenced';
  }
}

/**
 * A data shard was registered with a txns shard while another txns shard owns it
 * (see data-shard-claim.ts): two txns shards applying to one data shard lose commits.
 */
export class RegisteredWithAnotherTxnsShard extends InvalidUsage {
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
