/**
 * DurableTimestampOracle: the {@link TimestampOracle} logic shared by the SQLite and
 * Postgres oracles, on top of a {@link TimelineRowStore} that each backend implements
 * with single SQL statements.
 *
 * Storage: one table, one row per timeline:
 * ```
 * timestamp_oracle(timeline text PRIMARY KEY, read_ts integer, write_ts integer)
 * ```
 *
 * Invariants:
 * - **One statement per operation.** Each operation is a single SQL statement, hence
 *   its own atomic transaction: no lock or transaction is held across an `await`, a
 *   crashed process leaves nothing half-done, and several processes (SQLite: on one
 *   machine; Postgres: anywhere) can share a timeline without any coordination but
 *   the database's row locks.
 *   - `writeTs`:   `write_ts = max(write_ts + 1, read_ts + 1, now)`, returning it
 *   - `peekWriteTs`: `SELECT write_ts`
 *   - `readTs`:    `SELECT read_ts` (batched, see batched-read-ts.ts)
 *   - `applyWrite(ts)`: `read_ts = max(read_ts, ts), write_ts = max(write_ts, ts)`
 *   - open: insert the row if missing, else raise both columns to `initialTs`.
 * - `read_ts <= write_ts` always: only `applyWrite` raises `read_ts`, and it raises
 *   `write_ts` with it. So the next write timestamp is above every readable time.
 * - Both columns only ever grow (every update is a max), so concurrent callers in any
 *   order, and retries of `applyWrite`, are safe: it is idempotent.
 * - Stored values stay safe integers: inputs are checked on the way in, and the
 *   `writeTs` statement refuses (updates no row) rather than step past
 *   `Number.MAX_SAFE_INTEGER`.
 * - Durability: a write timestamp is handed out only after its statement committed,
 *   so after a crash and reopen every later one is higher.
 *
 * Worked example (two processes P and Q share timeline "t"; wall clock at 100):
 * ```
 * P: writeTs()        → UPDATE … write_ts = max(0+1, 0+1, 100)   → 100
 * Q: writeTs()        → UPDATE … write_ts = max(100+1, 0+1, 100) → 101
 * Q: applyWrite(101)  → read_ts = 101, write_ts = 101
 * P: readTs()         → 101        (Q's write is visible to P)
 * P: writeTs()        → 102
 * ```
 */
import { InvariantViolation, StoredFormatError } from '../persist/errors.js';
import { assertTimestamp, type Timestamp } from '../persist/time.js';
import { BatchedReadTs } from './batched-read-ts.js';
import { TimestampOracleClosed, checkNowFn, checkTimeline, readNow, timestampsExhausted } from './oracle-errors.js';
import { wallClockMillis, type NowFn, type TimestampOracle, type WriteTimestamp } from './timestamp-oracle.js';

/**
 * The timeline an oracle uses when none is named.
 *
 * Example:
 * ```ts
 * await openTimestampOracle(url);                                  // timeline 'default'
 * await openTimestampOracle(url, { timeline: DEFAULT_TIMELINE });  // the same
 * ```
 */
export const DEFAULT_TIMELINE = 'default';

/**
 * The largest timestamp the durable oracles store.
 *
 * Example:
 * ```ts
 * if (ts > MAX_STORED_TIMESTAMP) throw new Error('out of range');
 * ```
 */
export const MAX_STORED_TIMESTAMP: Timestamp = Number.MAX_SAFE_INTEGER;

/**
 * Options every durable oracle takes: which timeline, which clock, where to start.
 *
 * Example:
 * ```ts
 * await SqliteTimestampOracle.open('./data/oracle.sqlite', { timeline: 'orders', initialTs: 1000 });
 * ```
 */
export interface DurableOracleOptions {
  /** The timeline (row) to use; every oracle opened on the same store and timeline shares it. Default "default". */
  timeline?: string;
  /** The wall clock write timestamps follow when it is ahead. Default `Date.now`. */
  now?: NowFn;
  /** Timestamps start above this: a new timeline begins here, an existing one is raised to it. Default 0. */
  initialTs?: Timestamp;
}

/**
 * Statements issued by one oracle instance, per operation.
 *
 * Example:
 * ```ts
 * const { readTsCalls, readTsQueries } = oracle.statementCounts;   // batching: queries <= calls
 * ```
 */
export interface OracleStatementCounts {
  /** `writeTs()` statements. */
  writeTs: number;
  /** `peekWriteTs()` statements. */
  peekWriteTs: number;
  /** `readTs()` calls, and the queries they cost after batching. */
  readTsCalls: number;
  /** The queries the `readTs()` calls cost. */
  readTsQueries: number;
  /** `applyWrite()` statements. */
  applyWrite: number;
}

/**
 * The timeline row of one backend: each method is ONE statement against the row of the
 * timeline the store was opened for. `undefined` means the row was not found.
 *
 * Implement it to back a {@link DurableTimestampOracle} with another database.
 *
 * Example:
 * ```ts
 * class MyOracle extends DurableTimestampOracle {
 *   static async open(): Promise<MyOracle> { return new MyOracle(new MyRowStore(), { timeline: 'default', now: Date.now }); }
 * }
 * ```
 */
export interface TimelineRowStore {
  /** Human-readable name for messages, e.g. `SqliteTimestampOracle(/data/oracle.sqlite)`. */
  readonly name: string;
  /**
   * Sets `write_ts = max(write_ts + 1, read_ts + 1, now)` unless that exceeds
   * {@link MAX_STORED_TIMESTAMP}; returns the new `write_ts`, or `undefined` when no row
   * was updated (missing row, or exhausted).
   */
  allocateWriteTs(now: Timestamp): Promise<Timestamp | undefined>;
  /** The row's `write_ts` (undefined: no row). */
  selectWriteTs(): Promise<Timestamp | undefined>;
  /** The row's `read_ts` (undefined: no row). */
  selectReadTs(): Promise<Timestamp | undefined>;
  /** Raises `read_ts` and `write_ts` to at least `ts`. */
  raiseTo(ts: Timestamp): Promise<void>;
  /** Releases the connection(s). Idempotent. */
  close(): Promise<void>;
}

/** Converts a stored integer (bigint from SQLite, string from Postgres) to a timestamp. */
export function storedTimestamp(value: unknown, what: string): Timestamp {
  const n = typeof value === 'bigint' || typeof value === 'string' ? Number(value) : value;
  // Number() of a bigint or string beyond 2^53 rounds; comparing back catches that.
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || String(n) !== String(value)) {
    throw new StoredFormatError(
      `${what} holds ${String(value)}, which is not a non-negative safe integer; ` +
        'the timestamp_oracle table was written by something other than txnwal',
    );
  }
  return n;
}

/** Checks the options shared by every durable oracle and fills in the defaults. */
export function resolveDurableOptions(options: DurableOracleOptions): {
  timeline: string;
  now: NowFn;
  initialTs: Timestamp;
} {
  // Omitted options take their defaults; null is refused.
  const timeline = options.timeline === undefined ? DEFAULT_TIMELINE : options.timeline;
  checkTimeline(timeline);
  const now = options.now === undefined ? wallClockMillis : options.now;
  checkNowFn(now);
  const initialTs = options.initialTs === undefined ? 0 : options.initialTs;
  assertTimestamp(initialTs, 'initialTs');
  return { timeline, now, initialTs };
}

/**
 * The timestamp oracle over one row per timeline in a SQL table, each operation one statement;
 * shared by {@link SqliteTimestampOracle} and {@link PostgresTimestampOracle}. Several processes
 * may share a timeline.
 *
 * Example:
 * ```ts
 * const oracle: DurableTimestampOracle = await SqliteTimestampOracle.open('./data/oracle.sqlite');
 * oracle.timeline;   // 'default'
 * ```
 */
export abstract class DurableTimestampOracle implements TimestampOracle {
  /** The timeline (row) this oracle uses. */
  readonly timeline: string;
  private readonly now: NowFn;
  private readonly batchedReadTs: BatchedReadTs;
  private readonly counts = { writeTs: 0, peekWriteTs: 0, applyWrite: 0 };
  private closing: Promise<void> | undefined;

  /**
   * For subclasses: the oracle over `store`'s row.
   *
   * @param store The row of the timeline, one statement per method.
   * @param options The timeline's name and the wall clock.
   */
  protected constructor(
    private readonly store: TimelineRowStore,
    options: { timeline: string; now: NowFn },
  ) {
    this.timeline = options.timeline;
    this.now = options.now;
    this.batchedReadTs = new BatchedReadTs(async () => this.present(await this.store.selectReadTs(), 'read_ts'));
  }

  /** Statements this instance issued so far, per operation. */
  get statementCounts(): OracleStatementCounts {
    return {
      ...this.counts,
      readTsCalls: this.batchedReadTs.calls,
      readTsQueries: this.batchedReadTs.queries,
    };
  }

  async writeTs(): Promise<WriteTimestamp> {
    this.checkOpen('writeTs');
    const now = readNow(this.now, this.store.name);
    this.counts.writeTs++;
    const timestamp = await this.store.allocateWriteTs(now);
    if (timestamp === undefined) {
      // No row updated: either the timeline is exhausted or its row is gone. Only this
      // failure path pays for the second statement that tells them apart.
      const current = this.present(await this.store.selectWriteTs(), 'write_ts');
      throw timestampsExhausted(this.store.name, current, this.timeline);
    }
    return { timestamp, advanceTo: timestamp + 1 };
  }

  async peekWriteTs(): Promise<Timestamp> {
    this.checkOpen('peekWriteTs');
    this.counts.peekWriteTs++;
    return this.present(await this.store.selectWriteTs(), 'write_ts');
  }

  readTs(): Promise<Timestamp> {
    try {
      this.checkOpen('readTs');
    } catch (err) {
      return Promise.reject(err);
    }
    return this.batchedReadTs.read();
  }

  async applyWrite(ts: Timestamp): Promise<void> {
    this.checkOpen('applyWrite');
    assertTimestamp(ts, 'applyWrite timestamp');
    this.counts.applyWrite++;
    await this.store.raiseTo(ts);
  }

  close(): Promise<void> {
    this.closing ??= this.store.close();
    return this.closing;
  }

  private checkOpen(op: string): void {
    if (this.closing) throw new TimestampOracleClosed(this.constructor.name, op);
  }

  /** The value of a row that must exist: the oracle created it at open and never deletes it. */
  private present(value: Timestamp | undefined, column: string): Timestamp {
    if (value === undefined) {
      throw new InvariantViolation(
        `${this.store.name}: the row of timeline ${JSON.stringify(this.timeline)} is gone (reading ${column}); ` +
          'someone deleted it from timestamp_oracle. Timestamps handed out before may be handed out again, ' +
          'so the oracle refuses to recreate it: restore the row or use a new timeline.',
      );
    }
    return value;
  }
}
