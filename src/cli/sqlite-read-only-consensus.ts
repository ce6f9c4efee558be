/**
 * SqliteReadOnlyConsensus: the Consensus of a `file:` location, opened read-only.
 *
 * `SqliteConsensus.open` creates the database file and its table when they are
 * missing and switches the journal mode: right for a store, wrong for a tool that
 * must not change what it inspects. This opens the existing file with SQLite's own
 * read-only flag (`SQLITE_OPEN_READONLY`, and `fileMustExist`), so SQLite itself
 * refuses every write, and checks that the file holds a txnwal `consensus` table.
 *
 * Invariants:
 * - Nothing is created: a missing file is a {@link CliError}, and so is a file that
 *   is not a SQLite database or has no `consensus` table (not a txnwal store).
 *   (SQLite may open the `-shm` index of a WAL database beside it, as every reader
 *   does; the data is never written.)
 * - `compareAndSet` and `truncate` throw; reads answer as `SqliteConsensus` does.
 *
 * Example:
 * ```ts
 * const c = SqliteReadOnlyConsensus.open('/var/lib/txnwal/consensus.sqlite');
 * await c.head('db-catalog/txns-shard');   // { seqno: 1, data }
 * ```
 */
import Database from 'better-sqlite3';
import { plainBytes } from '../location/bytes.js';
import { checkScanArgs, type CaSResult, type Consensus, type SeqNo, type VersionedData } from '../location/consensus.js';
import { DeterminateError, LocationUsageError, describeError } from '../location/errors.js';
import { CliError } from './cli-error.js';

interface Row {
  seqno: number | bigint;
  data: Buffer | null;
}

function toVersion(row: Row): VersionedData {
  return { seqno: Number(row.seqno), data: row.data ? plainBytes(row.data) : new Uint8Array(0) };
}

/** A read-only view of a SQLite consensus file (see the module doc). */
export class SqliteReadOnlyConsensus implements Consensus {
  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
  ) {}

  /**
   * Opens the existing file at `path` read-only. `store` names the location in
   * error messages. Throws a CliError if it is not a txnwal consensus file.
   */
  static open(path: string, store: string): SqliteReadOnlyConsensus {
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 10000');
      const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'consensus'").get();
      if (table === undefined) {
        throw new CliError(`${store} is not a txnwal store: ${path} has no consensus table; check the URL`);
      }
      return new SqliteReadOnlyConsensus(db, path);
    } catch (err) {
      db?.close();
      if (err instanceof CliError) throw err;
      const code = (err as { code?: unknown }).code;
      if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
        throw new CliError(`${store} is not a txnwal store: ${path} is not a SQLite database (${describeError(err)}); check the URL`);
      }
      throw new CliError(`cannot open ${path} read-only: ${describeError(err)}; check that it exists and is readable`);
    }
  }

  async head(key: string): Promise<VersionedData | undefined> {
    const row = this.read('head', () =>
      this.db
        .prepare<[string], Row>('SELECT sequence_number AS seqno, data FROM consensus WHERE shard = ? ORDER BY sequence_number DESC LIMIT 1')
        .get(key),
    );
    return row && toVersion(row);
  }

  async scan(key: string, from: SeqNo, limit: number): Promise<VersionedData[]> {
    checkScanArgs(from, limit);
    const sqlLimit = limit === Infinity ? -1n : BigInt(limit);
    return this.read('scan', () =>
      this.db
        .prepare<[string, bigint, bigint], Row>(
          'SELECT sequence_number AS seqno, data FROM consensus WHERE shard = ? AND sequence_number >= ? ORDER BY sequence_number ASC LIMIT ?',
        )
        .all(key, BigInt(from), sqlLimit),
    ).map(toVersion);
  }

  async listKeys(): Promise<string[]> {
    return this.read('listKeys', () => this.db.prepare<[], string>('SELECT DISTINCT shard FROM consensus').pluck().all()).sort();
  }

  async compareAndSet(key: string): Promise<CaSResult> {
    throw new LocationUsageError(`the txnwal command opened ${this.path} read-only: it refuses a compare-and-set of ${JSON.stringify(key)}`);
  }

  async truncate(key: string): Promise<number> {
    throw new LocationUsageError(`the txnwal command opened ${this.path} read-only: it refuses a truncate of ${JSON.stringify(key)}`);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private read<T>(op: string, body: () => T): T {
    try {
      return body();
    } catch (err) {
      throw new DeterminateError(`SqliteReadOnlyConsensus: ${op} in ${this.path} failed: ${describeError(err)}`, { cause: err });
    }
  }
}
