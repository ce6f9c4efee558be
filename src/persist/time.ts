/**
 * Timestamps, diffs and frontiers.
 *
 * A timestamp is a non-negative safe integer. A frontier over this total order is a
 * single number: "upper u" means every time `< u` is sealed, "since s" means reads at
 * `asOf >= s` are exact. The empty (closed) frontier is `Infinity`: nothing can be
 * written any more. A diff is a (possibly negative) safe integer.
 *
 * Example: a shard with upper 5 holds updates at times 0..4; appending `[5, 8)` moves
 * it to 8; appending `[8, Infinity)` closes it.
 */
import { describeValue } from './describe-value.js';
import { InvalidTimestamp } from './errors.js';

export type Timestamp = number;
export type Diff = number;
/** A frontier: a timestamp, or `Infinity` for the closed frontier. */
export type Frontier = number;

export const CLOSED: Frontier = Infinity;

export function isTimestamp(t: unknown): t is Timestamp {
  return typeof t === 'number' && Number.isSafeInteger(t) && t >= 0;
}

export function assertTimestamp(t: unknown, what = 'timestamp'): asserts t is Timestamp {
  if (!isTimestamp(t)) {
    throw new InvalidTimestamp(
      `${what} must be a non-negative safe integer (0 ≤ t ≤ ${Number.MAX_SAFE_INTEGER}), got ${describeValue(t)}`,
    );
  }
}

export function assertFrontier(f: unknown, what = 'frontier'): asserts f is Frontier {
  if (f === Infinity) return;
  if (!isTimestamp(f)) {
    throw new InvalidTimestamp(
      `${what} must be a non-negative safe integer or Infinity (closed), got ${describeValue(f)}`,
    );
  }
}

export function assertDiff(d: unknown, what = 'diff'): asserts d is Diff {
  if (typeof d !== 'number' || !Number.isSafeInteger(d)) {
    throw new InvalidTimestamp(`${what} must be a safe integer, got ${describeValue(d)}`);
  }
}

/** The least time after `t`. */
export function stepForward(t: Timestamp): Timestamp {
  if (t >= Number.MAX_SAFE_INTEGER) {
    throw new InvalidTimestamp(`cannot step past timestamp ${t}: the next time is not a safe integer`);
  }
  return t + 1;
}

/** Whether `f` is the closed (empty) frontier: nothing more can be written below it. */
export function isClosed(f: Frontier): boolean {
  return f === Infinity;
}
