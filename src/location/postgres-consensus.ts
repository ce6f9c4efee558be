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
 * - A committed CaS announces itself: the statement ends in
 *   `pg_notify('txnwal_state_changes', '<seqno> <key>')` on the row it inserted, so
 *   the hint is sent when, and only when, the new version commits, in the same round
 *   trip (postgres-state-changes.ts listens). Option `notify: false` leaves it out
 *   (benchmarks compare the two); so does a key too long for a NOTIFY payload.
 * - bigint columns arrive as strings from pg and are converted to numbers; values
 *   outside the safe-integer range are never written (checked on the way in).
 * - Connections, fault mapping and close are postgres-pool.ts's: a dropped connection
 *   fails only the call using it (never the process), as a DeterminateError when
 *   nothing can have been written (no connection, a read, a statement error the server
 *   rolled back) and an IndeterminateError otherwise; the pool replaces dead
 *   connections by itself, so the store survives a server restart.
 * - The URL (and its password) is never shown: messages, `toString()` and
 *   `util.inspect` name the server by `redactUrl(url)`.
 *
 * Example:
 * ```ts
 * const c = await PostgresConsensus.open('postgres://u@db:5432/txnwal');
 * await c.compareAndSet('s1', undefined, { seqno: 1, data });  // 'committed'
 * await c.compareAndSet('s1', 1, { seqno: 2, data });          // 'committed'
 * await c.close();
 * ```
 */
import type { QueryResult } from 'pg';
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
import { DeterminateError, LocationUsageError, describeError as describe } from './errors.js';
import { PostgresPool, type Statement } from './postgres-pool.js';
import { STATE_CHANGES_CHANNEL } from './postgres-state-changes.js';

/**
 * Options of {@link PostgresConsensus.open}: the pool's size and timeouts, and whether commits
 * NOTIFY.
 *
 * Example:
 * ```ts
 * await PostgresConsensus.open(url, { poolMax: 10, connectTimeoutMs: 2000 });
 * ```
 */
export interface PostgresConsensusOptions {
  /** Most connections the pool opens. Default 50. */
  poolMax?: number;
  /** How long to wait for a new connection before failing (determinately). Default 5000. */
  connectTimeoutMs?: number;
  /** How long close() lets statements in flight finish before cutting them off. Default 1000. */
  closeGraceMs?: number;
  /** Announce each committed compare-and-set with NOTIFY (postgres-state-changes.ts). Default true. */
  notify?: boolean;
  /** Connections kept open once made, however long idle (postgres-pool.ts). Default 4. */
  poolMin?: number;
  /** How long a connection beyond `poolMin` may sit idle before it is closed. Default 60000. */
  idleTimeoutMs?: number;
}

/** NOTIFY payloads must stay under 8000 bytes; hints for longer keys are not sent (readers poll). */
const MAX_NOTIFY_KEY_BYTES = 7000;

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

/** The two CaS statements' inserts; `$1` key, `$2` new seqno, `$3` data, `$4` expected seqno. */
const INSERT_FROM_NOTHING = `
  INSERT INTO consensus (shard, sequence_number, data)
  SELECT $1::text, $2::bigint, $3::bytea
  WHERE NOT EXISTS (SELECT 1 FROM consensus WHERE shard = $1::text)
  ON CONFLICT DO NOTHING`;

const LAST_SEQ = `
  last_seq AS (
    SELECT sequence_number FROM consensus
    WHERE shard = $1::text
    ORDER BY sequence_number DESC
    LIMIT 1
    FOR UPDATE
  )`;

const INSERT_FROM_SEQNO = `
  INSERT INTO consensus (shard, sequence_number, data)
  SELECT $1::text, $2::bigint, $3::bytea
  FROM last_seq
  WHERE last_seq.sequence_number = $4::bigint
  ON CONFLICT DO NOTHING`;

/** Selects one row (and so rowCount 1) per inserted version, announcing it. */
const NOTIFY_INSERTED = `
  SELECT pg_notify('${STATE_CHANGES_CHANNEL}', inserted.sequence_number::text || ' ' || $1::text) FROM inserted`;

/** Named statements: pg prepares each once per connection and reuses the plan. */
const SQL = {
  casFromNothing: { name: 'txnwal_consensus_cas_from_nothing', text: INSERT_FROM_NOTHING },
  casFromSeqNo: { name: 'txnwal_consensus_cas_from_seqno', text: `WITH ${LAST_SEQ} ${INSERT_FROM_SEQNO}` },
  casFromNothingNotify: {
    name: 'txnwal_consensus_cas_from_nothing_notify',
    text: `WITH inserted AS (${INSERT_FROM_NOTHING} RETURNING sequence_number) ${NOTIFY_INSERTED}`,
  },
  casFromSeqNoNotify: {
    name: 'txnwal_consensus_cas_from_seqno_notify',
    text: `WITH ${LAST_SEQ}, inserted AS (${INSERT_FROM_SEQNO} RETURNING sequence_number) ${NOTIFY_INSERTED}`,
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

function toVersion(row: Row): VersionedData {
  return { seqno: Number(row.sequence_number), data: plainBytes(row.data) };
}

/**
 * A Consensus in a Postgres table (`consensus`, created on open): the backend for several machines.
 * Each compare-and-set is one statement that also sends the wake-up NOTIFY.
 *
 * Example:
 * ```ts
 * const c = await PostgresConsensus.open('postgres://u@db:5432/txnwal');
 * await c.compareAndSet('s1', undefined, { seqno: 1, data });   // 'committed'
 * await c.close();
 * ```
 */
export class PostgresConsensus implements Consensus {
  // Private (#) so that util.inspect of a location or client never reaches the pool.
  readonly #pool: PostgresPool;
  readonly #notify: boolean;

  private constructor(pool: PostgresPool, notify: boolean) {
    this.#pool = pool;
    this.#notify = notify;
  }

  /**
   * Connects to `url`, creates the table if absent; throws a DeterminateError naming the server
   * (never its password) when it cannot.
   */
  static async open(url: string, options: PostgresConsensusOptions = {}): Promise<PostgresConsensus> {
    const pool = new PostgresPool(
      url,
      {
        poolMax: options.poolMax ?? 50,
        poolMin: options.poolMin,
        idleTimeoutMs: options.idleTimeoutMs,
        connectTimeoutMs: options.connectTimeoutMs,
        closeGraceMs: options.closeGraceMs,
      },
      (_op, what) => new LocationUsageError(`${what}: the store is closed`),
    );
    try {
      await pool.createTableRacing('create table consensus', CREATE_TABLE);
    } catch (err) {
      await pool.close();
      throw new DeterminateError(`PostgresConsensus: cannot open ${pool.server}: ${describe(err)}`, { cause: err });
    }
    return new PostgresConsensus(pool, options.notify ?? true);
  }

  async head(key: string): Promise<VersionedData | undefined> {
    const rows = (await this.run('read', 'head', key, SQL.head, [key])).rows as Row[];
    return rows[0] && toVersion(rows[0]);
  }

  async compareAndSet(key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult> {
    checkCompareAndSetArgs(expected, next);
    const data = bufferView(next.data);
    const notify = this.#notify && Buffer.byteLength(key) <= MAX_NOTIFY_KEY_BYTES;
    const result =
      expected === undefined
        ? await this.run('write', 'compareAndSet', key, notify ? SQL.casFromNothingNotify : SQL.casFromNothing, [
            key,
            String(next.seqno),
            data,
          ])
        : await this.run('write', 'compareAndSet', key, notify ? SQL.casFromSeqNoNotify : SQL.casFromSeqNo, [
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

  /** Settles calls in flight (see postgres-pool.ts) and closes every connection. Idempotent. */
  close(): Promise<void> {
    return this.#pool.close();
  }

  /** What util.inspect and String() show: the server without its password. */
  toString(): string {
    return `PostgresConsensus(${this.#pool.server})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  private run(
    kind: 'read' | 'write',
    op: string,
    key: string | undefined,
    statement: Statement,
    values: unknown[],
  ): Promise<QueryResult> {
    const what = key === undefined ? op : `${op} ${JSON.stringify(key)}`;
    return this.#pool.run(kind, op, `PostgresConsensus: ${what}`, statement, values);
  }
}
