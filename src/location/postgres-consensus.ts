/**
 * PostgresConsensus: a {@link Consensus} in a Postgres table, for multi-machine setups.
 *
 * Table: `consensus(shard text, sequence_number bigint, data bytea,
 * PRIMARY KEY (shard, sequence_number))`, created on open if absent.
 *
 * Invariants:
 * - Every compareAndSet is ONE statement (its own implicit transaction) that inserts
 *   the new version only if the current head is `expected`, `ON CONFLICT DO NOTHING`;
 *   it committed iff it inserted a row (rowCount 1). One statement means one round
 *   trip, no client-held transaction, and nothing left half-done by a lost connection.
 *   - expected `undefined`: insert only if the shard has no row at all.
 *   - expected `e`: a CTE locks the current max row `FOR UPDATE` and inserts only if
 *     its seqno is `e`. A concurrent CaS from the same head waits on that lock, and
 *     then either no longer finds the row (truncated) or collides with the winner's
 *     new row on the primary key and does nothing: 'mismatch'.
 * - Caveat, as in Materialize's Postgres consensus: the collision argument needs racing
 *   writers from the same head to propose the SAME new seqno, which persist always
 *   does (head + 1, and one fixed initial seqno). Under READ COMMITTED, two concurrent
 *   CaS from one head to DIFFERENT seqnos (`5 → 6` racing `5 → 9`) can both commit.
 *   Sequential jumps are fine.
 * - bigint columns arrive as strings from pg and are converted to numbers; values
 *   outside the safe-integer range are never written (checked on the way in).
 * - Fault mapping: failing to get a connection means nothing was sent:
 *   DeterminateError. A read that fails is a DeterminateError. A write that fails with
 *   an ordinary server ERROR was rolled back: DeterminateError. A write that fails
 *   any other way (connection lost, server shut down or crashed mid-statement, an
 *   I/O error) may have committed: IndeterminateError.
 *
 * Example:
 * ```ts
 * const c = await PostgresConsensus.open('postgres://u@db:5432/txnwal');
 * await c.compareAndSet('s1', undefined, { seqno: 1, data });  // 'committed'
 * await c.compareAndSet('s1', 1, { seqno: 2, data });          // 'committed'
 * await c.close();
 * ```
 */
import pg from 'pg';
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

export interface PostgresConsensusOptions {
  /** Most connections the pool opens. Default 50. */
  poolMax?: number;
  /** How long to wait for a new connection before failing (determinately). Default 5000. */
  connectTimeoutMs?: number;
}

interface Row {
  sequence_number: string;
  data: Buffer;
}

const CREATE_TABLE = `
  CREATE TABLE IF NOT EXISTS consensus (
    shard text NOT NULL,
    sequence_number bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (shard, sequence_number)
  )`;

/** Named statements: pg prepares each once per connection and reuses the plan. */
const SQL = {
  casFromNothing: {
    name: 'txnwal_consensus_cas_from_nothing',
    text: `
      INSERT INTO consensus (shard, sequence_number, data)
      SELECT $1::text, $2::bigint, $3::bytea
      WHERE NOT EXISTS (SELECT 1 FROM consensus WHERE shard = $1::text)
      ON CONFLICT DO NOTHING`,
  },
  casFromSeqNo: {
    name: 'txnwal_consensus_cas_from_seqno',
    text: `
      WITH last_seq AS (
        SELECT sequence_number FROM consensus
        WHERE shard = $1::text
        ORDER BY sequence_number DESC
        LIMIT 1
        FOR UPDATE
      )
      INSERT INTO consensus (shard, sequence_number, data)
      SELECT $1::text, $2::bigint, $3::bytea
      FROM last_seq
      WHERE last_seq.sequence_number = $4::bigint
      ON CONFLICT DO NOTHING`,
  },
  head: {
    name: 'txnwal_consensus_head',
    text: `
      SELECT sequence_number, data FROM consensus
      WHERE shard = $1::text
      ORDER BY sequence_number DESC
      LIMIT 1`,
  },
  scan: {
    name: 'txnwal_consensus_scan',
    text: `
      SELECT sequence_number, data FROM consensus
      WHERE shard = $1::text AND sequence_number >= $2::bigint
      ORDER BY sequence_number ASC
      LIMIT $3::bigint`,
  },
  truncate: {
    name: 'txnwal_consensus_truncate',
    text: `
      DELETE FROM consensus
      WHERE shard = $1::text AND sequence_number < $2::bigint
        AND EXISTS (SELECT 1 FROM consensus WHERE shard = $1::text AND sequence_number >= $2::bigint)`,
  },
  listKeys: {
    name: 'txnwal_consensus_list_keys',
    text: 'SELECT DISTINCT shard FROM consensus',
  },
} as const;

type Statement = (typeof SQL)[keyof typeof SQL];

function toVersion(row: Row): VersionedData {
  return { seqno: Number(row.sequence_number), data: plainBytes(row.data) };
}

/**
 * True when the server reported an ordinary statement error: the statement's implicit
 * transaction was rolled back and the session lives on. SQLSTATE classes 08
 * (connection), 57P (shutdown), 58 (system/I-O) and XX (internal), and FATAL/PANIC
 * severities, can arrive after the commit already happened, so they do not count.
 */
/** @internal Shared with the Postgres timestamp oracle. */
export function isRolledBackStatementError(err: unknown): boolean {
  if (!(err instanceof pg.DatabaseError)) return false;
  const code = err.code ?? '';
  if (/^(08|57P|58|XX)/.test(code)) return false;
  return err.severity !== 'FATAL' && err.severity !== 'PANIC';
}

/** @internal A connection pool set up the way every Postgres store here wants it. */
export function openPool(url: string, opts: { poolMax: number; connectTimeoutMs?: number }): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolMax,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    // Detects connections that died silently (a dropped NAT entry, a dead host).
    keepAlive: true,
  });
  // An idle pooled connection can fail (server restart); the pool then drops it.
  // Without a listener that 'error' event would crash the process.
  pool.on('error', () => undefined);
  return pool;
}

export class PostgresConsensus implements Consensus {
  private closed = false;

  private constructor(private readonly pool: pg.Pool) {}

  static async open(url: string, options: PostgresConsensusOptions = {}): Promise<PostgresConsensus> {
    const pool = openPool(url, { poolMax: options.poolMax ?? 50, connectTimeoutMs: options.connectTimeoutMs });
    try {
      await createTableRacing(pool, CREATE_TABLE);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new DeterminateError(`PostgresConsensus: cannot open ${redact(url)}: ${describe(err)}`, { cause: err });
    }
    return new PostgresConsensus(pool);
  }

  async head(key: string): Promise<VersionedData | undefined> {
    const rows = (await this.run('read', 'head', key, SQL.head, [key])).rows as Row[];
    return rows[0] && toVersion(rows[0]);
  }

  async compareAndSet(key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult> {
    checkCompareAndSetArgs(expected, next);
    const data = bufferView(next.data);
    const result =
      expected === undefined
        ? await this.run('write', 'compareAndSet', key, SQL.casFromNothing, [key, String(next.seqno), data])
        : await this.run('write', 'compareAndSet', key, SQL.casFromSeqNo, [
            key,
            String(next.seqno),
            data,
            String(expected),
          ]);
    return result.rowCount === 1 ? 'committed' : 'mismatch';
  }

  async scan(key: string, from: SeqNo, limit: number): Promise<VersionedData[]> {
    checkScanArgs(from, limit);
    // LIMIT NULL is LIMIT ALL.
    const sqlLimit = limit === Infinity ? null : String(limit);
    const result = await this.run('read', 'scan', key, SQL.scan, [key, String(from), sqlLimit]);
    return (result.rows as Row[]).map(toVersion);
  }

  async truncate(key: string, seqno: SeqNo): Promise<number> {
    checkSeqNo(seqno);
    const result = await this.run('write', 'truncate', key, SQL.truncate, [key, String(seqno)]);
    const deleted = result.rowCount ?? 0;
    if (deleted > 0) return deleted;
    // Nothing deleted: either a legal no-op (already truncated) or misuse. The head
    // tells which; truncate never deletes the head, so it cannot vanish meanwhile.
    checkTruncateTarget(key, seqno, (await this.head(key))?.seqno);
    return 0;
  }

  async listKeys(): Promise<string[]> {
    const result = await this.run('read', 'listKeys', undefined, SQL.listKeys, []);
    return (result.rows as { shard: string }[]).map((r) => r.shard).sort();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private async run(
    kind: 'read' | 'write',
    op: string,
    key: string | undefined,
    statement: Statement,
    values: unknown[],
  ): Promise<pg.QueryResult> {
    if (this.closed) throw new LocationUsageError('PostgresConsensus: used after close');
    const what = key === undefined ? op : `${op} ${JSON.stringify(key)}`;
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      // No connection, so the statement was never sent.
      throw new DeterminateError(`PostgresConsensus: ${what} failed to connect: ${describe(err)}`, { cause: err });
    }
    try {
      const result = await client.query({ name: statement.name, text: statement.text, values });
      client.release();
      return result;
    } catch (err) {
      const rolledBack = isRolledBackStatementError(err);
      // A connection that failed other than by a statement error is suspect: drop it.
      client.release(rolledBack ? undefined : err instanceof Error ? err : new Error(String(err)));
      const message = `PostgresConsensus: ${what} failed: ${describe(err)}`;
      if (kind === 'read' || rolledBack) throw new DeterminateError(message, { cause: err });
      throw new IndeterminateError(message, { cause: err });
    }
  }
}

/**
 * @internal Runs a `CREATE TABLE IF NOT EXISTS`, tolerating the race between several
 * processes opening a fresh database at once: IF NOT EXISTS checks the catalog before
 * inserting into it, so the loser fails on the catalog's unique indexes instead, as
 * 23505 (unique_violation), 42P07 (duplicate_table) or 42710 (duplicate_object: 'type
 * "consensus" already exists', from the table's row type). By the time it fails the
 * winner has committed, so one more attempt finds the table; a few attempts also
 * cover a winner that rolled back.
 */
export async function createTableRacing(pool: pg.Pool, createTableSql: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query(createTableSql);
      return;
    } catch (err) {
      const code = err instanceof pg.DatabaseError ? err.code : undefined;
      const lostRace = code === '23505' || code === '42P07' || code === '42710';
      if (!lostRace || attempt >= 5) throw err;
    }
  }
}

/** @internal `url` without its password, for error messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}
