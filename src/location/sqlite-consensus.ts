/**
 * SqliteConsensus: a {@link Consensus} in one SQLite file, the embedded default.
 *
 * Invariants:
 * - Safe for several connections and several processes on one machine (not on a
 *   network file system: SQLite's locks need a local one). WAL journal mode lets
 *   readers run beside the single writer; `synchronous = FULL` fsyncs the WAL at every
 *   commit, so a committed CaS survives power loss; a busy timeout makes a connection
 *   wait for another's write lock instead of failing at once. Opening retries its
 *   set-up (WAL switch, table) while other processes open the same fresh file, within
 *   the same timeout, so simultaneous first opens all succeed.
 * - Every write (compareAndSet, truncate) is one `BEGIN IMMEDIATE` transaction, which
 *   takes the write lock up front: the head read inside it cannot go stale before the
 *   insert, so the check-then-insert is atomic across processes.
 * - better-sqlite3 is synchronous and each transaction begins and ends inside one
 *   call, so no transaction stays open across an `await`: two instances in one
 *   process never wait on each other's locks.
 * - Fault mapping: a failure before COMMIT rolls the transaction back, so it is a
 *   DeterminateError. A failed COMMIT is indeterminate (the WAL frame may be on disk),
 *   unless the transaction is visibly still open and we roll it back ourselves.
 * - A database file this store creates is 0600 (owner only), and so are the `-wal`
 *   and `-shm` files SQLite creates beside it; option `fileMode` overrides that. An
 *   existing file keeps its mode.
 *
 * Example:
 * ```ts
 * const c = await SqliteConsensus.open('/var/lib/txnwal/consensus.sqlite');
 * await c.compareAndSet('s1', undefined, { seqno: 1, data });   // 'committed'
 * // meanwhile, in another process on the same file:
 * await c2.compareAndSet('s1', undefined, { seqno: 1, data });  // 'mismatch'
 * ```
 */
import Database from 'better-sqlite3';
import { bufferView, plainBytes } from './bytes.js';
import {
  checkCompareAndSetArgs,
  checkScanArgs,
  checkSeqNo,
  checkTruncateTarget,
  type CaSResult,
  type Consensus,
  type SeqNo,
  type VersionedData,
} from './consensus.js';
import { DeterminateError, IndeterminateError, LocationUsageError, describeError as describe } from './errors.js';
import { checkMode } from './file-blob.js';
import { DEFAULT_DATABASE_FILE_MODE, createFileIfMissing } from './private-file.js';
import { setUpSqliteDatabase } from './sqlite-setup.js';

/**
 * Options of {@link SqliteConsensus.open}.
 *
 * Example:
 * ```ts
 * await SqliteConsensus.open('./data/consensus.sqlite', { busyTimeoutMs: 30_000 });
 * ```
 */
export interface SqliteConsensusOptions {
  /** How long a connection waits for another one's write lock. Default 10 s. */
  busyTimeoutMs?: number;
  /** Mode of the database file if this open creates it. Default 0o600 (owner only). */
  fileMode?: number;
}

interface Row {
  seqno: number;
  data: Buffer | null;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS consensus (
    shard TEXT NOT NULL,
    sequence_number INTEGER NOT NULL,
    data BLOB,
    PRIMARY KEY (shard, sequence_number)
  ) WITHOUT ROWID`;

function toVersion(row: Row): VersionedData {
  return { seqno: Number(row.seqno), data: row.data ? plainBytes(row.data) : new Uint8Array(0) };
}

/**
 * A Consensus in one SQLite file (WAL, fsync at every commit): the embedded default, safe for
 * several processes on one machine.
 *
 * Example:
 * ```ts
 * const c = await SqliteConsensus.open('./data/consensus.sqlite');
 * await c.compareAndSet('s1', undefined, { seqno: 1, data });   // 'committed'
 * await c.close();
 * ```
 */
export class SqliteConsensus implements Consensus {
  // Prepared once: statement compilation is most of the cost of a small query.
  private readonly stmts: ReturnType<typeof prepareStatements>;

  private constructor(
    private readonly db: Database.Database,
    /** The database file. */
    readonly path: string,
  ) {
    this.stmts = prepareStatements(db);
  }

  /** Opens (creating if needed) the database file at `path`. */
  static async open(path: string, options: SqliteConsensusOptions = {}): Promise<SqliteConsensus> {
    const fileMode = checkMode(options.fileMode ?? DEFAULT_DATABASE_FILE_MODE, 'SqliteConsensus option fileMode');
    const busyTimeoutMs = options.busyTimeoutMs ?? 10_000;
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
      throw new LocationUsageError(`SqliteConsensus option busyTimeoutMs must be a safe integer >= 0, got ${String(busyTimeoutMs)}`);
    }
    let db: Database.Database | undefined;
    try {
      if (path !== ':memory:' && path !== '') await createFileIfMissing(path, fileMode);
      db = new Database(path);
      await setUpSqliteDatabase(db, SCHEMA, busyTimeoutMs);
      return new SqliteConsensus(db, path);
    } catch (err) {
      db?.close();
      throw new DeterminateError(`SqliteConsensus: cannot open ${path}: ${describe(err)}`, { cause: err });
    }
  }

  async head(key: string): Promise<VersionedData | undefined> {
    const row = this.read('head', key, () => this.stmts.head.get(key));
    return row && toVersion(row);
  }

  async compareAndSet(key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult> {
    checkCompareAndSetArgs(expected, next);
    return this.write('compareAndSet', key, () => {
      const current = this.stmts.head.get(key)?.seqno;
      if ((current === undefined ? undefined : Number(current)) !== expected) return 'mismatch';
      this.stmts.insert.run(key, BigInt(next.seqno), bufferView(next.data));
      return 'committed';
    });
  }

  async scan(key: string, from: SeqNo, limit: number): Promise<VersionedData[]> {
    checkScanArgs(from, limit);
    // SQLite reads a negative LIMIT as "no limit".
    const sqlLimit = limit === Infinity ? -1n : BigInt(limit);
    return this.read('scan', key, () => this.stmts.scan.all(key, BigInt(from), sqlLimit)).map(toVersion);
  }

  async truncate(key: string, seqno: SeqNo): Promise<number> {
    checkSeqNo(seqno);
    return this.write('truncate', key, () => {
      const head = this.stmts.head.get(key);
      checkTruncateTarget(key, seqno, head === undefined ? undefined : Number(head.seqno));
      return this.stmts.truncate.run(key, BigInt(seqno)).changes;
    });
  }

  async listKeys(): Promise<string[]> {
    return this.read('listKeys', undefined, () => this.stmts.listKeys.all()).sort();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private read<T>(op: string, key: string | undefined, body: () => T): T {
    this.checkOpen();
    try {
      return body();
    } catch (err) {
      throw new DeterminateError(this.message(op, key, err), { cause: err });
    }
  }

  /**
   * Runs `body` in a BEGIN IMMEDIATE transaction and commits. LocationUsageErrors from
   * `body` roll back and pass through; storage faults are mapped as described above.
   */
  private write<T>(op: string, key: string, body: () => T): T {
    this.checkOpen();
    try {
      this.stmts.begin.run();
    } catch (err) {
      // Typically SQLITE_BUSY after the busy timeout: nothing was started.
      throw new DeterminateError(this.message(op, key, err), { cause: err });
    }
    let result: T;
    try {
      result = body();
    } catch (err) {
      this.rollbackQuietly();
      if (err instanceof LocationUsageError) throw err;
      throw new DeterminateError(this.message(op, key, err), { cause: err });
    }
    try {
      this.stmts.commit.run();
    } catch (err) {
      // SQLite leaves the transaction open after some COMMIT failures (e.g. BUSY); if
      // so, rolling it back ourselves makes the outcome certain.
      if (this.db.inTransaction && this.rollbackQuietly()) {
        throw new DeterminateError(this.message(op, key, err), { cause: err });
      }
      throw new IndeterminateError(this.message(op, key, err), { cause: err });
    }
    return result;
  }

  /** Rolls back the open transaction; true iff none is open afterwards. */
  private rollbackQuietly(): boolean {
    try {
      if (this.db.inTransaction) this.stmts.rollback.run();
    } catch {
      // Reported by the caller's error; the connection state decides below.
    }
    return !this.db.inTransaction;
  }

  private checkOpen(): void {
    if (!this.db.open) throw new LocationUsageError('SqliteConsensus: used after close');
  }

  private message(op: string, key: string | undefined, err: unknown): string {
    const what = key === undefined ? op : `${op} ${JSON.stringify(key)}`;
    return `SqliteConsensus: ${what} in ${this.path} failed: ${describe(err)}`;
  }
}

function prepareStatements(db: Database.Database) {
  return {
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    head: db.prepare<[string], Row>(
      'SELECT sequence_number AS seqno, data FROM consensus WHERE shard = ? ORDER BY sequence_number DESC LIMIT 1',
    ),
    insert: db.prepare<[string, bigint, Buffer]>(
      'INSERT INTO consensus (shard, sequence_number, data) VALUES (?, ?, ?)',
    ),
    scan: db.prepare<[string, bigint, bigint], Row>(
      'SELECT sequence_number AS seqno, data FROM consensus WHERE shard = ? AND sequence_number >= ? ' +
        'ORDER BY sequence_number ASC LIMIT ?',
    ),
    truncate: db.prepare<[string, bigint]>('DELETE FROM consensus WHERE shard = ? AND sequence_number < ?'),
    listKeys: db.prepare<[], string>('SELECT DISTINCT shard FROM consensus').pluck(),
  };
}
