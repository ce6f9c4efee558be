/**
 * LogicalClock: the in-memory {@link TimestampOracle}, with a way to publish a
 * timestamp atomically with taking it.
 *
 * `getTimestamp(fn)` takes the next write timestamp and runs `fn(ts)` while still
 * holding the clock: nobody can take a higher timestamp until `fn` has finished. A
 * committer that publishes "I am committing at ts" inside `fn` is therefore seen by
 * every transaction that begins at a later timestamp (seed 003: without this, a
 * reader that began at ts+1 could see the commit at ts appear halfway through its
 * own transaction, which breaks snapshot isolation).
 *
 * Invariants: write timestamps strictly increase and follow `now()` when it is
 * ahead; `readTs()` is the highest applied write and never goes back. Callers
 * waiting for the clock get it in the order they asked.
 *
 * Errors: every operation after `close()` rejects with `TimestampOracleClosed` (also
 * one that was still waiting for the clock when `close()` came); a `now()` that
 * returns anything but a non-negative safe integer, or a clock already at
 * `Number.MAX_SAFE_INTEGER`, makes that one call reject with `InvalidTimestamp` and
 * leaves the clock as it was.
 *
 * Worked example:
 * ```
 * const clock = new LogicalClock({ now: () => 0 });
 * await clock.getTimestamp(async (ts) => publishPreparing(ts));  // ts = 1, published before…
 * (await clock.writeTs()).timestamp;                             // …anyone gets 2
 * ```
 */
import { assertTimestamp, stepForward, type Timestamp } from '../persist/time.js';
import { Mutex } from '../persist/wait.js';
import { describeValue } from '../persist/describe-value.js';
import { InvalidOracleConfig, TimestampOracleClosed, checkNowFn, readNow, timestampsExhausted } from './oracle-errors.js';
import { wallClockMillis, type NowFn, type TimestampOracle, type WriteTimestamp } from './timestamp-oracle.js';

export interface LogicalClockOptions {
  /** The wall clock timestamps follow when it is ahead (default `Date.now`). */
  now?: NowFn;
  /** Timestamps handed out start above this (default 0). */
  initialTs?: Timestamp;
}

/**
 * The in-memory timestamp oracle, which can also publish a timestamp atomically with taking it
 * (`getTimestamp(fn)`: nobody gets a higher timestamp until `fn` finished).
 *
 * Example:
 * ```ts
 * const clock = new LogicalClock({ now: () => 0 });
 * await clock.getTimestamp(async (ts) => publishPreparing(ts));   // ts = 1, published before…
 * (await clock.writeTs()).timestamp;                              // …anyone gets 2
 * ```
 */
export class LogicalClock implements TimestampOracle {
  private readonly now: NowFn;
  private readonly lock = new Mutex();
  private lastWrite: Timestamp;
  private lastRead: Timestamp;
  private closed = false;

  /**
   * A clock starting at `initialTs`; throws InvalidOracleConfig for bad options.
   *
   * @param opts `now` (default `Date.now`) and `initialTs` (default 0).
   */
  constructor(opts: LogicalClockOptions = {}) {
    if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
      throw new InvalidOracleConfig(`LogicalClock options must be an object (or omitted), got ${describeValue(opts)}`);
    }
    // Omitted options take their defaults; null is refused.
    this.now = opts.now === undefined ? wallClockMillis : opts.now;
    checkNowFn(this.now);
    const initial = opts.initialTs === undefined ? 0 : opts.initialTs;
    assertTimestamp(initial, 'LogicalClock initialTs');
    this.lastWrite = initial;
    this.lastRead = initial;
  }

  /**
   * Takes the next write timestamp and runs `fn` with it while holding the clock, so
   * whatever `fn` publishes is in place before any higher timestamp is handed out.
   */
  getTimestamp<R>(fn: (ts: Timestamp) => R | Promise<R>): Promise<R> {
    return this.holdingClock('getTimestamp', fn);
  }

  writeTs(): Promise<WriteTimestamp> {
    return this.holdingClock('writeTs', (timestamp) => ({ timestamp, advanceTo: timestamp + 1 }));
  }

  async peekWriteTs(): Promise<Timestamp> {
    this.checkOpen('peekWriteTs');
    return this.lastWrite;
  }

  async readTs(): Promise<Timestamp> {
    this.checkOpen('readTs');
    return this.lastRead;
  }

  async applyWrite(ts: Timestamp): Promise<void> {
    this.checkOpen('applyWrite');
    assertTimestamp(ts, 'applyWrite timestamp');
    if (ts > this.lastRead) this.lastRead = ts;
    if (ts > this.lastWrite) this.lastWrite = ts;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private async holdingClock<R>(op: string, fn: (ts: Timestamp) => R | Promise<R>): Promise<R> {
    this.checkOpen(op);
    return this.lock.run(async () => {
      // Checked again once the clock is ours: close() may have come while we queued.
      this.checkOpen(op);
      return fn(this.allocate());
    });
  }

  private allocate(): Timestamp {
    const now = readNow(this.now, 'LogicalClock');
    if (this.lastWrite >= Number.MAX_SAFE_INTEGER) throw timestampsExhausted('LogicalClock', this.lastWrite);
    // lastWrite >= lastRead always (applyWrite raises both), so this is above readTs() too.
    const next = Math.max(now, stepForward(this.lastWrite));
    this.lastWrite = next;
    return next;
  }

  private checkOpen(op: string): void {
    if (this.closed) throw new TimestampOracleClosed('LogicalClock', op);
  }
}
