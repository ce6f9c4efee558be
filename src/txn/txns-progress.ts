/**
 * TxnsProgress: the pure frontier logic of the txns-progress operator (spec §2.10),
 * the RxJS `dataSubscribe` operator (operators/data-subscribe.ts) without its glue.
 *
 * It follows two inputs and keeps one output frontier, `progress`:
 * - the physical frontier of a data shard's own read at `asOf` (`onPhysicalProgress`);
 * - the shard's {@link DataRemapEntry}s (`onRemap`): `[physicalUpper, logicalUpper)`
 *   of the shard is known empty.
 *
 * Invariants:
 * - `progress` never goes back and never passes what was read: it is the physical
 *   frontier, lifted to the newest entry's `logicalUpper` once the physical
 *   frontier has reached that entry's `physicalUpper` (by then every update below
 *   `physicalUpper` was delivered, and the rest of the range is empty).
 * - A remap entry whose physical upper is lower than an earlier one's is a broken
 *   invariant of the txns cache and throws.
 * - `finished` becomes true once progress (physical or lifted) reaches `until`, or
 *   the shard is closed (physical frontier `Infinity`). Nothing moves afterwards.
 *
 * Worked example (the spec's): the shard was last written at 3, the txns upper is
 * 6, `asOf` 5.
 * ```
 * onRemap({ physicalUpper: 6, logicalUpper: 6 })   // the read was filled to 6
 * onPhysicalProgress(6)          → progress 6
 * onRemap({ 6, 8 })              → progress 8     (a txn elsewhere committed at 7)
 * onRemap({ 10, 10 })            → progress 8     (a txn touching the shard at 9…)
 * onPhysicalProgress(10)         → progress 10    (…only once its apply is read)
 * ```
 */
import { InvariantViolation } from '../persist/errors.js';
import type { ShardId } from '../persist/shard-id.js';
import { isClosed } from '../persist/time.js';
import type { DataRemapEntry } from './data-remap.js';

export class TxnsProgress {
  private cap = 0;
  private remap: DataRemapEntry = { physicalUpper: 0, logicalUpper: 0 };
  private done = false;

  constructor(
    readonly dataId: ShardId,
    /** Finish once progress reaches this (`Infinity`: never, until the shard closes). */
    readonly until: number = Infinity,
  ) {}

  /** Every update below this has been read. `Infinity` once finished. */
  get progress(): number {
    return this.done ? Infinity : this.cap;
  }

  /** The output frontier before finishing: capped at `until`, never `Infinity` unless the shard closed. */
  get frontier(): number {
    return this.cap;
  }

  get finished(): boolean {
    return this.done;
  }

  /** A new remap entry. */
  onRemap(entry: DataRemapEntry): void {
    if (this.done) return;
    if (entry.physicalUpper < this.remap.physicalUpper) {
      throw new InvariantViolation(
        `remap of ${this.dataId}: physical upper went back from ${this.remap.physicalUpper} to ${entry.physicalUpper}`,
      );
    }
    if (entry.logicalUpper < entry.physicalUpper) {
      throw new InvariantViolation(`remap of ${this.dataId}: logical upper ${entry.logicalUpper} below physical upper ${entry.physicalUpper}`);
    }
    if (entry.logicalUpper > this.remap.logicalUpper) this.remap = entry;
    this.lift();
  }

  /** The physical read's frontier moved to `upper`. */
  onPhysicalProgress(upper: number): void {
    if (this.done) return;
    if (isClosed(upper)) {
      this.cap = Infinity;
      this.done = true;
      return;
    }
    if (upper > this.cap) this.cap = upper;
    this.lift();
  }

  private lift(): void {
    // Everything physical below remap.physicalUpper has been delivered, and
    // [physicalUpper, logicalUpper) is known empty.
    if (this.remap.physicalUpper <= this.cap && this.cap < this.remap.logicalUpper) this.cap = this.remap.logicalUpper;
    if (this.cap >= this.until) {
      this.cap = Math.min(this.cap, this.until);
      this.done = true;
    }
  }
}
