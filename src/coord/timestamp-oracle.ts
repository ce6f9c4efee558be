/**
 * TimestampOracle: who picks the timestamp of a write, and the latest time that is
 * safe to read at.
 *
 * Invariants every implementation keeps (the conformance suite checks them):
 * - `writeTs()` hands out strictly increasing timestamps, each above every
 *   timestamp handed out before and above `readTs()`; when the wall clock (`now()`)
 *   is ahead, the timestamp follows it.
 * - `readTs()` never goes backwards and is at least every timestamp passed to
 *   `applyWrite`.
 * - `applyWrite(ts)` records that a write at `ts` is complete: afterwards
 *   `readTs() >= ts` and `peekWriteTs() >= ts`.
 * - `peekWriteTs()` is the last write timestamp handed out (or applied), without
 *   allocating a new one.
 *
 * Worked example (wall clock frozen at 100):
 * ```
 * writeTs()        → { timestamp: 100, advanceTo: 101 }
 * writeTs()        → { timestamp: 101, advanceTo: 102 }   (the clock did not move)
 * readTs()         → 0 … until the write is applied:
 * applyWrite(101)
 * readTs()         → 101
 * ```
 */
import type { Timestamp } from '../persist/time.js';

/**
 * A timestamp to write at, and the upper a write at it should advance collections to.
 *
 * Example:
 * ```ts
 * const { timestamp, advanceTo } = await oracle.writeTs();
 * await txn.commitAt(txns, timestamp);   // collections' uppers move to advanceTo
 * ```
 */
export interface WriteTimestamp {
  /** The timestamp to write at. */
  timestamp: Timestamp;
  /** `timestamp + 1`. */
  advanceTo: Timestamp;
}

/**
 * Who picks the timestamp of a write, and the latest time that is safe to read at. Implementations:
 * {@link LogicalClock} (in memory), the SQLite and Postgres oracles (durable);
 * `openTimestampOracle(url)` picks the one that belongs with a location.
 *
 * Example:
 * ```ts
 * const oracle: TimestampOracle = await openTimestampOracle('file:./data');
 * const { timestamp } = await oracle.writeTs();
 * // … commit at `timestamp` …
 * await oracle.applyWrite(timestamp);
 * await oracle.readTs();   // >= timestamp
 * ```
 */
export interface TimestampOracle {
  /** A fresh write timestamp, strictly above every one handed out before and above `readTs()`. */
  writeTs(): Promise<WriteTimestamp>;
  /** The most recent write timestamp, without allocating one. */
  peekWriteTs(): Promise<Timestamp>;
  /** The latest timestamp at which every applied write is visible. */
  readTs(): Promise<Timestamp>;
  /** Marks the write at `ts` complete: `readTs()` becomes at least `ts`. */
  applyWrite(ts: Timestamp): Promise<void>;
  /** Releases connections or timers held by this oracle. Idempotent. */
  close(): Promise<void>;
}

/** The wall clock in milliseconds since the epoch, as timestamps default to. */
export type NowFn = () => Timestamp;

export const wallClockMillis: NowFn = () => Date.now();
