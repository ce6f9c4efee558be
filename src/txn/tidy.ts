/**
 * Tidy: the retractions that clean applied batch pointers out of the txns shard.
 *
 * A tidy maps each applied batch's raw bytes to the row it retracts: the original
 * commit time and the data shard. It is attached to a later transaction
 * (`txn.tidy(t)`) and written at that transaction's commit time.
 *
 * A tidy is safe to drop (the next `applyLe` by anyone produces one covering every
 * applied but untidied batch), to commit late, or to commit twice: retractions are
 * filtered against the txns cache at commit time, so a row is never retracted more
 * than once.
 *
 * Example:
 * ```ts
 * const tidy = await (await txn.commitAt(txns, 5)).apply.apply(txns);
 * const next = txns.begin();
 * next.tidy(tidy);          // retracts the pointers committed at 5
 * ```
 */
import { bytesKey } from '../location/bytes.js';
import type { ShardId } from '../persist/shard-id.js';

/**
 * One applied batch pointer to retract from the txns shard: what a {@link Tidy} holds.
 *
 * Example:
 * ```ts
 * for (const r of tidy.retractions.values()) console.log(r.dataId);
 * ```
 */
export interface Retraction {
  /** The exact bytes of the committed batch pointer. */
  readonly raw: Uint8Array;
  /** Its original commit time, as 8 timestamp bytes. */
  readonly ts: Uint8Array;
  /** The data shard the batch was applied to. */
  readonly dataId: ShardId;
}

/**
 * The retractions that clean applied batch pointers out of the txns shard: attach one to a later
 * transaction (`txn.tidy(t)`). Safe to drop, commit late or commit twice.
 *
 * Example:
 * ```ts
 * const res = await txn.commitAt(txns, 5);
 * if (res.ok) {
 *   const tidy = await res.apply.apply(txns);
 *   const next = txns.begin();
 *   next.tidy(tidy);   // retracts the pointers committed at 5 when `next` commits
 * }
 * ```
 */
export class Tidy {
  /** Keyed by `bytesKey(raw)`: one retraction per batch pointer. */
  readonly retractions = new Map<string, Retraction>();

  /** A tidy holding `retractions` (one per batch pointer). */
  static of(retractions: Iterable<Retraction>): Tidy {
    const t = new Tidy();
    for (const r of retractions) t.retractions.set(bytesKey(r.raw), r);
    return t;
  }

  /** Adds the other tidy's retractions to this one (a set union). */
  merge(other: Tidy): void {
    for (const [k, r] of other.retractions) this.retractions.set(k, r);
  }

  /** How many batch pointers it retracts. */
  get size(): number {
    return this.retractions.size;
  }

  /** True when it retracts nothing. */
  isEmpty(): boolean {
    return this.retractions.size === 0;
  }
}
