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
