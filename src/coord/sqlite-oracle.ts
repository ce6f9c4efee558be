/**
 * SqliteTimestampOracle: a durable {@link TimestampOracle} in one SQLite file, shared by
 * every process on the machine that opens the same file (the `file:<dir>` location
 * keeps it at `<dir>/oracle.sqlite`).
 *
 * Invariants (beyond those of durable-oracle.ts):
 * - Each operation is ONE autocommit statement (`UPDATE … RETURNING`, `SELECT`, or an
 *   upsert at open). An autocommit write takes SQLite's write lock before reading the
 *   row, waiting up to the busy timeout for another connection's lock, so the
 *   read-modify-write of `write_ts` is atomic across processes.
 * - WAL journal mode, so `readTs` / `peekWriteTs` never wait for a writer;
 *   `synchronous = FULL`, so a handed-out write timestamp survives power loss and is
 *   never handed out again.
 * - The table is STRICT: SQLite refuses to store anything but integers in the
 *   timestamp columns, and they are read back as bigints and checked to be safe
 *   integers, so no precision is lost silently.
 * - better-sqlite3 runs statements synchronously, so no statement is ever in flight
 *   across an `await`: closing never races a statement of this instance.
 * - Faults: a read that fails, or a write that could not get the lock (SQLITE_BUSY),
 *   did nothing: `DeterminateError`. Any other failed write may have committed:
 *   `IndeterminateError` (harmless for this oracle: a lost write timestamp is a gap,
 *   and `applyWrite` is idempotent).
 *
 * A database file this oracle creates is 0600 (owner only), and SQLite gives its
 * `-wal`/`-shm` files the same mode; option `fileMode` overrides that.
 *
 * Example:
 * ```ts
 * const oracle = await SqliteTimestampOracle.open('/var/lib/txnwal/oracle.sqlite', { timeline: 'orders' });
 * const { timestamp } = await oracle.writeTs();   // e.g. 1718000000000 (follows Date.now)
 * // … commit at `timestamp` …
 * await oracle.applyWrite(timestamp);
 * await oracle.readTs();                          // ≥ timestamp, in every process
 * await oracle.close();
 * ```
 */
import Database from 'better-sqlite3';
import { DeterminateError, IndeterminateError, describeError as describe } from '../location/errors.js';
import { checkMode } from '../location/file-blob.js';
import { DEFAULT_DATABASE_FILE_MODE, createFileIfMissing } from '../location/private-file.js';
import { setUpSqliteDatabase } from '../location/sqlite-setup.js';
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

export interface SqliteTimestampOracleOptions extends DurableOracleOptions {
  /** How long a statement waits for another connection's write lock. Default 10 s. */
  busyTimeoutMs?: number;
  /** Mode of the database file if this open creates it (its -wal/-shm follow). Default 0o600 (owner only). */
  fileMode?: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS timestamp_oracle (
    timeline TEXT NOT NULL PRIMARY KEY,
    read_ts INTEGER NOT NULL,
    write_ts INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID`;

function prepareStatements(db: Database.Database) {
  return {
    // Raise-only: reopening with a lower initialTs must not move a timeline back.
    ensureRow: db.prepare<{ timeline: string; ts: bigint }>(`
      INSERT INTO timestamp_oracle (timeline, read_ts, write_ts) VALUES (@timeline, @ts, @ts)
      ON CONFLICT (timeline) DO UPDATE SET
        read_ts = MAX(read_ts, excluded.read_ts),
        write_ts = MAX(write_ts, excluded.write_ts)
      WHERE read_ts < excluded.read_ts OR write_ts < excluded.write_ts`),
    allocateWriteTs: db
      .prepare<{ timeline: string; now: bigint; max: bigint }, bigint>(`
        UPDATE timestamp_oracle SET write_ts = MAX(write_ts + 1, read_ts + 1, @now)
        WHERE timeline = @timeline AND MAX(write_ts + 1, read_ts + 1, @now) <= @max
        RETURNING write_ts`)
      .pluck()
      .safeIntegers(),
    selectWriteTs: db
      .prepare<{ timeline: string }, bigint>('SELECT write_ts FROM timestamp_oracle WHERE timeline = @timeline')
      .pluck()
      .safeIntegers(),
    selectReadTs: db
      .prepare<{ timeline: string }, bigint>('SELECT read_ts FROM timestamp_oracle WHERE timeline = @timeline')
      .pluck()
      .safeIntegers(),
    // The WHERE skips the write entirely (no lock, no WAL frame) for an old timestamp.
    raiseTo: db.prepare<{ timeline: string; ts: bigint }>(`
      UPDATE timestamp_oracle SET read_ts = MAX(read_ts, @ts), write_ts = MAX(write_ts, @ts)
      WHERE timeline = @timeline AND (read_ts < @ts OR write_ts < @ts)`),
  };
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

class SqliteTimelineRow implements TimelineRowStore {
  readonly name: string;
  private readonly stmts: ReturnType<typeof prepareStatements>;

  constructor(
    private readonly db: Database.Database,
    readonly path: string,
    private readonly timeline: string,
  ) {
    this.name = `SqliteTimestampOracle(${path})`;
    this.stmts = prepareStatements(db);
  }

  ensureRow(initialTs: Timestamp): void {
    this.write('open', () => this.stmts.ensureRow.run({ timeline: this.timeline, ts: BigInt(initialTs) }));
  }

  async allocateWriteTs(now: Timestamp): Promise<Timestamp | undefined> {
    const rows = this.write('writeTs', () =>
      // all(): steps the statement to completion, so the autocommit transaction ends here.
      this.stmts.allocateWriteTs.all({
        timeline: this.timeline,
        now: BigInt(now),
        max: BigInt(MAX_STORED_TIMESTAMP),
      }),
    );
    return rows.length === 0 ? undefined : storedTimestamp(rows[0], `${this.name} write_ts`);
  }

  async selectWriteTs(): Promise<Timestamp | undefined> {
    const value = this.read('peekWriteTs', () => this.stmts.selectWriteTs.get({ timeline: this.timeline }));
    return value === undefined ? undefined : storedTimestamp(value, `${this.name} write_ts`);
  }

  async selectReadTs(): Promise<Timestamp | undefined> {
    const value = this.read('readTs', () => this.stmts.selectReadTs.get({ timeline: this.timeline }));
    return value === undefined ? undefined : storedTimestamp(value, `${this.name} read_ts`);
  }

  async raiseTo(ts: Timestamp): Promise<void> {
    this.write('applyWrite', () => this.stmts.raiseTo.run({ timeline: this.timeline, ts: BigInt(ts) }));
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private read<T>(op: string, body: () => T): T {
    this.checkOpen(op);
    try {
      return body();
    } catch (err) {
      throw new DeterminateError(this.message(op, err), { cause: err });
    }
  }

  private write<T>(op: string, body: () => T): T {
    this.checkOpen(op);
    try {
      return body();
    } catch (err) {
      const message = this.message(op, err);
      if (isBusy(err)) throw new DeterminateError(message, { cause: err });
      throw new IndeterminateError(message, { cause: err });
    }
  }

  /** A batched readTs queued before close() runs after it: report that as misuse, not a fault. */
  private checkOpen(op: string): void {
    if (!this.db.open) throw new TimestampOracleClosed('SqliteTimestampOracle', op);
  }

  private message(op: string, err: unknown): string {
    return `${this.name}: ${op} on timeline ${JSON.stringify(this.timeline)} failed: ${describe(err)}`;
  }
}

/**
 * The durable timestamp oracle in a SQLite file (`oracle.sqlite` beside a `file:` location), safe
 * for several processes on one machine.
 *
 * Example:
 * ```ts
 * const oracle = await SqliteTimestampOracle.open('./data/oracle.sqlite');
 * const { timestamp } = await oracle.writeTs();
 * await oracle.applyWrite(timestamp);
 * await oracle.close();
 * ```
 */
export class SqliteTimestampOracle extends DurableTimestampOracle {
  private constructor(
    row: SqliteTimelineRow,
    options: { timeline: string; now: NowFn },
    /** The database file. */
    readonly path: string,
  ) {
    super(row, options);
  }

  /** Opens (creating the file, table and timeline row as needed) the oracle in the SQLite file at `path`. */
  static async open(path: string, options: SqliteTimestampOracleOptions = {}): Promise<SqliteTimestampOracle> {
    const { timeline, now, initialTs } = resolveDurableOptions(options);
    const fileMode = checkMode(options.fileMode ?? DEFAULT_DATABASE_FILE_MODE, 'SqliteTimestampOracle option fileMode');
    let db: Database.Database | undefined;
    try {
      if (path !== ':memory:' && path !== '') await createFileIfMissing(path, fileMode);
      db = new Database(path);
      await setUpSqliteDatabase(db, SCHEMA, Math.max(0, Math.trunc(options.busyTimeoutMs ?? 10_000)));
    } catch (err) {
      db?.close();
      throw new DeterminateError(
        `SqliteTimestampOracle: cannot open ${path}: ${describe(err)}; check that its directory exists and is writable`,
        { cause: err },
      );
    }
    const row = new SqliteTimelineRow(db, path, timeline);
    try {
      row.ensureRow(initialTs);
    } catch (err) {
      db.close();
      throw err;
    }
    return new SqliteTimestampOracle(row, { timeline, now }, path);
  }
}
