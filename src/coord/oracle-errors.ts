/**
 * Errors of the timestamp oracles, and the input checks that raise them.
 *
 * Every misuse throws a subclass of {@link InvalidUsage} whose message names what was
 * wrong and how to fix the call; nothing is written when one is thrown:
 * - {@link TimestampOracleClosed}: an operation on an oracle after `close()`.
 * - {@link InvalidOracleConfig}: a bad timeline name, location URL or option at open.
 * - `InvalidTimestamp` (from persist): a timestamp that is not a non-negative safe
 *   integer, whether passed to `applyWrite`, returned by `now()`, or the next write
 *   timestamp once the timeline has reached `Number.MAX_SAFE_INTEGER`.
 *
 * Storage faults of the durable oracles are the location layer's
 * `DeterminateError` / `IndeterminateError`, so callers handle them the same way as
 * Consensus faults.
 *
 * Example:
 * ```ts
 * await oracle.close();
 * await oracle.readTs();   // throws TimestampOracleClosed: "…readTs() called after close(); open a new oracle"
 * checkTimeline('');       // throws InvalidOracleConfig: "timeline must be a non-empty string …"
 * ```
 */
import { describeValue } from '../persist/describe-value.js';
import { InvalidTimestamp, InvalidUsage } from '../persist/errors.js';
import { isTimestamp, type Timestamp } from '../persist/time.js';
import type { NowFn } from './timestamp-oracle.js';

/**
 * An oracle used after `close()`.
 *
 * Example:
 * ```ts
 * await oracle.close();
 * await oracle.writeTs();   // throws TimestampOracleClosed
 * ```
 */
export class TimestampOracleClosed extends InvalidUsage {
  /**
   * Builds the message naming the oracle and the call.
   *
   * @param oracle The oracle's class name.
   * @param op The method called after close.
   */
  constructor(oracle: string, op: string) {
    super(`${oracle}.${op}() called after close(); open a new oracle to keep using this timeline`);
  }
}

/**
 * An oracle opened with a bad timeline, URL or option.
 *
 * Example:
 * ```ts
 * await openTimestampOracle('file:./data', { timeline: '' });   // throws InvalidOracleConfig
 * ```
 */
export class InvalidOracleConfig extends InvalidUsage {}

/** Longest accepted timeline name: enough for any label, small enough for any index. */
export const MAX_TIMELINE_LENGTH = 256;

/** Throws {@link InvalidOracleConfig} unless `timeline` is a usable timeline name. */
export function checkTimeline(timeline: unknown): asserts timeline is string {
  if (typeof timeline !== 'string' || timeline.length === 0) {
    throw new InvalidOracleConfig(
      `timeline must be a non-empty string naming the timeline to share (e.g. "default"), got ${describeValue(timeline)}`,
    );
  }
  if (timeline.length > MAX_TIMELINE_LENGTH) {
    throw new InvalidOracleConfig(
      `timeline name is ${timeline.length} characters long; use at most ${MAX_TIMELINE_LENGTH}`,
    );
  }
  // Postgres text cannot hold NUL; refusing it everywhere keeps backends interchangeable.
  if (timeline.includes('\0')) {
    throw new InvalidOracleConfig(`timeline name ${JSON.stringify(timeline)} contains a NUL character; remove it`);
  }
}

/** Throws {@link InvalidOracleConfig} unless `now` is a function. */
export function checkNowFn(now: unknown): asserts now is NowFn {
  if (typeof now !== 'function') {
    throw new InvalidOracleConfig(
      `now must be a function returning the current time as a timestamp (e.g. () => Date.now()), got ${describeValue(now)}`,
    );
  }
}

/**
 * Calls `now()` and checks the result: a clock that returns a fraction, a negative
 * number or a bigint would otherwise poison every later timestamp.
 */
export function readNow(now: NowFn, oracle: string): Timestamp {
  const value: unknown = now();
  if (!isTimestamp(value)) {
    throw new InvalidTimestamp(
      `${oracle}: now() returned ${describeValue(value)}; it must return a non-negative safe integer ` +
        '(e.g. milliseconds since the epoch, Date.now())',
    );
  }
  return value;
}

/** The error for a timeline whose write timestamp cannot grow any further. */
export function timestampsExhausted(oracle: string, current: Timestamp, timeline?: string): InvalidTimestamp {
  const subject = timeline === undefined ? 'the clock' : `timeline ${JSON.stringify(timeline)}`;
  return new InvalidTimestamp(
    `${oracle}: ${subject} is at write timestamp ${current}, and the next one would exceed ` +
      'Number.MAX_SAFE_INTEGER. Timestamps this large come from applyWrite() or now() values that are ' +
      'not milliseconds since the epoch; start a fresh timeline.',
  );
}
