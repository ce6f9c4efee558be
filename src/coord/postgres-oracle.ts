/**
 * PostgresTimestampOracle: a durable {@link TimestampOracle} in a Postgres table, shared
 * by every process, on any machine, that opens the same database and timeline.
 *
 * Invariants (beyond those of durable-oracle.ts):
 * - Each operation is ONE statement, its own implicit transaction, over a pooled
 *   connection: no client-held transaction, nothing half-done after a lost connection.
 * - `writeTs` is `UPDATE … SET write_ts = GREATEST(write_ts + 1, read_ts + 1, $now)
 *   RETURNING write_ts`. Concurrent updates of the row queue on its row lock, and under
 *   READ COMMITTED each waiter re-evaluates the SET on the row the previous one
 *   committed, so every caller gets a distinct, higher timestamp.
 * - `applyWrite(ts)` updates only when `ts` is above a column, so applying an old
 *   timestamp takes no row lock and writes nothing.
 * - bigint columns arrive from pg as strings; they are converted and checked to be
 *   safe integers (nothing larger is ever written: inputs are checked, and `writeTs`
 *   refuses to step past `Number.MAX_SAFE_INTEGER`).
 * - `readTs` is batched (batched-read-ts.ts): N concurrent callers cost at most two
 *   round trips, and each still sees every `applyWrite` that finished before its call.
 * - Connections, faults and close are postgres-pool.ts's: no connection, a failed read,
 *   or an ordinary statement error (rolled back) did nothing: `DeterminateError`. A
 *   write that failed any other way (connection lost mid-statement, server shutdown)
 *   may have committed: `IndeterminateError`. A dropped connection fails only the call
 *   using it, never the process, and the pool replaces it, so the oracle survives a
 *   server restart. The URL's password is never shown (`redactUrl`).
 *
 * Example:
 * ```ts
 * const oracle = await PostgresTimestampOracle.open('postgres://u@db:5432/txnwal', { timeline: 'orders' });
 * const { timestamp, advanceTo } = await oracle.writeTs();
 * // … commit at `timestamp`, advancing collections to `advanceTo` …
 * await oracle.applyWrite(timestamp);
 * await oracle.close();
 * ```
 */
import type { QueryResult } from 'pg';
import { DeterminateError, describeError as describe } from '../location/errors.js';
import { PostgresPool, type Statement } from '../location/postgres-pool.js';
import type { Timestamp } from '../persist/time.js';
import {
  DurableTimestampOracle,
  MAX_STORED_TIMESTAMP,
  resolveDurableOptions,
  storedTimestamp,
  type DurableOracleOptions,
  type TimelineRowStore,
} from './durable-oracle.js';
import { TimestampOracleClosed } from './oracle-errors.js';
import type { NowFn } from './timestamp-oracle.js';

export interface PostgresTimestampOracleOptions extends DurableOracleOptions {
  /** Most connections the pool opens. Default 10 (readTs batching keeps the need low). */
  poolMax?: number;
  /** How long to wait for a new connection before failing (determinately). Default 5000. */
  connectTimeoutMs?: number;
  /** How long close() lets statements in flight finish before cutting them off. Default 1000. */
  closeGraceMs?: number;
}

const CREATE_TABLE = `
  CREATE TABLE IF NOT EXISTS timestamp_oracle (
    timeline text NOT NULL PRIMARY KEY,
    read_ts bigint NOT NULL,
    write_ts bigint NOT NULL
  )`;

/** Named statements: pg prepares each once per connection and reuses the plan. */
const SQL = {
  ensureRow: {
    name: 'txnwal_oracle_ensure_row',
    // Raise-only: reopening with a lower initialTs must not move a timeline back.
    text: `
      INSERT INTO timestamp_oracle AS t (timeline, read_ts, write_ts) VALUES ($1::text, $2::bigint, $2::bigint)
      ON CONFLICT (timeline) DO UPDATE SET
        read_ts = GREATEST(t.read_ts, EXCLUDED.read_ts),
        write_ts = GREATEST(t.write_ts, EXCLUDED.write_ts)
      WHERE t.read_ts < EXCLUDED.read_ts OR t.write_ts < EXCLUDED.write_ts`,
  },
  allocateWriteTs: {
    name: 'txnwal_oracle_allocate_write_ts',
    text: `
      UPDATE timestamp_oracle SET write_ts = GREATEST(write_ts + 1, read_ts + 1, $2::bigint)
      WHERE timeline = $1::text AND GREATEST(write_ts + 1, read_ts + 1, $2::bigint) <= $3::bigint
      RETURNING write_ts`,
  },
  selectWriteTs: {
    name: 'txnwal_oracle_select_write_ts',
    text: 'SELECT write_ts FROM timestamp_oracle WHERE timeline = $1::text',
  },
  selectReadTs: {
    name: 'txnwal_oracle_select_read_ts',
    text: 'SELECT read_ts FROM timestamp_oracle WHERE timeline = $1::text',
  },
  raiseTo: {
    name: 'txnwal_oracle_raise_to',
    text: `
      UPDATE timestamp_oracle SET read_ts = GREATEST(read_ts, $2::bigint), write_ts = GREATEST(write_ts, $2::bigint)
      WHERE timeline = $1::text AND (read_ts < $2::bigint OR write_ts < $2::bigint)`,
  },
} as const;

class PostgresTimelineRow implements TimelineRowStore {
  readonly name: string;
  // Private (#) so that util.inspect of the oracle never reaches the pool.
  readonly #pool: PostgresPool;

  constructor(
    pool: PostgresPool,
    private readonly timeline: string,
  ) {
    this.#pool = pool;
    this.name = `PostgresTimestampOracle(${pool.server})`;
  }

  async ensureRow(initialTs: Timestamp): Promise<void> {
    await this.run('write', 'open', SQL.ensureRow, [String(initialTs)]);
  }

  async allocateWriteTs(now: Timestamp): Promise<Timestamp | undefined> {
    const result = await this.run('write', 'writeTs', SQL.allocateWriteTs, [
      String(now),
      String(MAX_STORED_TIMESTAMP),
    ]);
    return this.column(result, 'write_ts');
  }

  async selectWriteTs(): Promise<Timestamp | undefined> {
    return this.column(await this.run('read', 'peekWriteTs', SQL.selectWriteTs, []), 'write_ts');
  }

  async selectReadTs(): Promise<Timestamp | undefined> {
    return this.column(await this.run('read', 'readTs', SQL.selectReadTs, []), 'read_ts');
  }

  async raiseTo(ts: Timestamp): Promise<void> {
    await this.run('write', 'applyWrite', SQL.raiseTo, [String(ts)]);
  }

  /** Settles calls in flight (see postgres-pool.ts) and closes every connection. Idempotent. */
  close(): Promise<void> {
    return this.#pool.close();
  }

  private column(result: QueryResult, column: 'read_ts' | 'write_ts'): Timestamp | undefined {
    const row = result.rows[0] as Record<string, unknown> | undefined;
    return row === undefined ? undefined : storedTimestamp(row[column], `${this.name} ${column}`);
  }

  /** Runs one statement with the timeline as `$1` and `values` after it. */
  private run(kind: 'read' | 'write', op: string, statement: Statement, values: unknown[]): Promise<QueryResult> {
    const what = `${this.name}: ${op} on timeline ${JSON.stringify(this.timeline)}`;
    return this.#pool.run(kind, op, what, statement, [this.timeline, ...values]);
  }
}

/**
 * The durable timestamp oracle in a Postgres table, for processes on several machines.
 *
 * Example:
 * ```ts
 * const oracle = await PostgresTimestampOracle.open('postgres://u@db/txnwal', { timeline: 'default' });
 * await oracle.readTs();
 * await oracle.close();
 * ```
 */
export class PostgresTimestampOracle extends DurableTimestampOracle {
  private constructor(row: PostgresTimelineRow, options: { timeline: string; now: NowFn }) {
    super(row, options);
  }

  /**
   * Connects to the database at `url`, creating the table and the timeline row as
   * needed. Several processes may open the same fresh database at once.
   */
  static async open(url: string, options: PostgresTimestampOracleOptions = {}): Promise<PostgresTimestampOracle> {
    const { timeline, now, initialTs } = resolveDurableOptions(options);
    // A batched readTs queued before close() runs after it: report misuse, not a fault.
    const pool = new PostgresPool(
      url,
      { poolMax: options.poolMax ?? 10, connectTimeoutMs: options.connectTimeoutMs, closeGraceMs: options.closeGraceMs },
      (op) => new TimestampOracleClosed('PostgresTimestampOracle', op),
    );
    const row = new PostgresTimelineRow(pool, timeline);
    try {
      await pool.createTableRacing('create table timestamp_oracle', CREATE_TABLE);
    } catch (err) {
      await pool.close();
      // CREATE TABLE IF NOT EXISTS changes nothing worth knowing about, landed or not.
      throw new DeterminateError(`PostgresTimestampOracle: cannot open ${pool.server}: ${describe(err)}`, {
        cause: err,
      });
    }
    try {
      await row.ensureRow(initialTs);
    } catch (err) {
      await pool.close();
      throw err;
    }
    return new PostgresTimestampOracle(row, { timeline, now });
  }
}
