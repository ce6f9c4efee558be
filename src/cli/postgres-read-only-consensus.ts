/**
 * PostgresReadOnlyConsensus: the Consensus of a `postgres://` location, opened
 * read-only.
 *
 * `PostgresConsensus.open` creates the `consensus` table when it is missing; a tool
 * that must not change what it inspects cannot use it. This connects with
 * `default_transaction_read_only = on` (so the server itself refuses any write),
 * checks that the `consensus` table exists, and answers reads with the same queries.
 *
 * Invariants:
 * - Nothing is created or written: a database without the table is a
 *   {@link CliError} (not a txnwal store); `compareAndSet` and `truncate` throw.
 * - Messages name the server by its redacted URL: a password never reaches output.
 *
 * Example:
 * ```ts
 * const c = await PostgresReadOnlyConsensus.open('postgres://u:pw@db/txnwal', 'postgres://u:***@db/txnwal');
 * await c.listKeys();   // ['db-catalog/collection/accounts', …]
 * await c.close();
 * ```
 */
import type pg from 'pg';
import { pgModule } from '../location/lazy-modules.js';
import { plainBytes } from '../location/bytes.js';
import { checkScanArgs, type CaSResult, type Consensus, type SeqNo, type VersionedData } from '../location/consensus.js';
import { DeterminateError, LocationUsageError, describeError } from '../location/errors.js';
import { CliError } from './cli-error.js';

interface Row {
  sequence_number: string;
  data: Buffer;
}

function toVersion(row: Row): VersionedData {
  return { seqno: Number(row.sequence_number), data: plainBytes(row.data) };
}

/** A read-only view of a Postgres consensus table (see the module doc). */
export class PostgresReadOnlyConsensus implements Consensus {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly shown: string,
  ) {}

  /**
   * Connects to `url` (a Postgres URL without txnwal's own parameters) read-only;
   * `shown` is the redacted URL for messages. Throws a CliError if the server cannot
   * be reached or the database is not a txnwal store.
   */
  static async open(url: string, shown: string): Promise<PostgresReadOnlyConsensus> {
    const pool = new (pgModule().Pool)({
      connectionString: url,
      max: 4,
      connectionTimeoutMillis: 10_000,
      options: '-c default_transaction_read_only=on',
    });
    // An idle client's error (the server went away) must not crash the process.
    pool.on('error', () => undefined);
    try {
      const res = await pool.query<{ t: string | null }>("SELECT to_regclass('consensus')::text AS t");
      if (res.rows[0]?.t == null) {
        throw new CliError(`${shown} is not a txnwal store: the database has no consensus table; check the URL`);
      }
    } catch (err) {
      await pool.end().catch(() => undefined);
      if (err instanceof CliError) throw err;
      throw new CliError(`cannot read ${shown}: ${describeError(err)}; check that the server is up and the URL, user and password are right`);
    }
    return new PostgresReadOnlyConsensus(pool, shown);
  }

  async head(key: string): Promise<VersionedData | undefined> {
    const rows = await this.query('head', 'SELECT sequence_number, data FROM consensus WHERE shard = $1 ORDER BY sequence_number DESC LIMIT 1', [key]);
    return rows[0] && toVersion(rows[0]);
  }

  async scan(key: string, from: SeqNo, limit: number): Promise<VersionedData[]> {
    checkScanArgs(from, limit);
    const rows = await this.query(
      'scan',
      'SELECT sequence_number, data FROM consensus WHERE shard = $1 AND sequence_number >= $2::bigint ORDER BY sequence_number ASC LIMIT $3::bigint',
      [key, String(from), limit === Infinity ? null : String(limit)],
    );
    return rows.map(toVersion);
  }

  async listKeys(): Promise<string[]> {
    const res = await this.run('listKeys', 'SELECT DISTINCT shard FROM consensus', []);
    return (res.rows as { shard: string }[]).map((r) => r.shard).sort();
  }

  async compareAndSet(key: string): Promise<CaSResult> {
    throw new LocationUsageError(`the txnwal command opened ${this.shown} read-only: it refuses a compare-and-set of ${JSON.stringify(key)}`);
  }

  async truncate(key: string): Promise<number> {
    throw new LocationUsageError(`the txnwal command opened ${this.shown} read-only: it refuses a truncate of ${JSON.stringify(key)}`);
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  private async query(op: string, text: string, values: unknown[]): Promise<Row[]> {
    return (await this.run(op, text, values)).rows as Row[];
  }

  private async run(op: string, text: string, values: unknown[]): Promise<pg.QueryResult> {
    try {
      return await this.pool.query(text, values);
    } catch (err) {
      throw new DeterminateError(`PostgresReadOnlyConsensus: ${op} on ${this.shown} failed: ${describeError(err)}`, { cause: err });
    }
  }
}
