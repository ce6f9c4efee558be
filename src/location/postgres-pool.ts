/**
 * PostgresPool: the connection pool every Postgres store here (consensus, timestamp
 * oracle) runs its statements through, and the one place that turns connection
 * faults into location errors.
 *
 * Invariants:
 * - **Every pg client has an 'error' listener for its whole life**, idle or checked
 *   out. pg emits 'error' on a client whose connection drops (pg_terminate_backend, a
 *   server restart, a network fault), also while it is checked out: e.g. when the
 *   server's FATAL arrives in the same packet as the end of the statement before, so
 *   after the statement settled and before the client is back in the pool. pg-pool
 *   listens only on idle clients, and an 'error' without a listener is thrown, which
 *   would end the process. The listener here only marks the client dead.
 * - A statement runs on one checked-out client, which then goes back with
 *   `release()` after a success or an ordinary statement error (the session is fine),
 *   and with `release(err)` after any other failure, so the pool discards that
 *   connection and opens a fresh one on demand. That is how the pool recovers from a
 *   server restart without being reopened.
 * - Outcomes: a client found dead at check-out is discarded and another taken (nothing
 *   was sent on it). No connection at all: DeterminateError. A failed read:
 *   DeterminateError. A write the server failed with an ordinary statement error was
 *   rolled back: DeterminateError. Any other write failure (connection lost, server
 *   shut down mid-statement) may have committed: IndeterminateError.
 * - `close()` settles everything: calls waiting for a connection reject at once with
 *   the owner's closed error; statements in flight get `closeGraceMs` to finish, then
 *   their connections are cut and they reject as above (a write: IndeterminateError).
 *   It resolves once every connection is gone. Later calls reject with the closed error.
 * - The URL, and so the password, stays in private fields and in pg's own options,
 *   where it is made non-enumerable: `util.inspect` of an owner never shows it, and
 *   messages name the server by {@link redactUrl}.
 */
import type pg from 'pg';
import { pgModule } from './lazy-modules.js';
import { DeterminateError, IndeterminateError, describeError as describe } from './errors.js';
import { redactUrl } from './redact-url.js';

export interface PostgresPoolOptions {
  /** Most connections the pool opens. */
  poolMax: number;
  /** How long to wait for a new connection before failing (determinately). Default 5000. */
  connectTimeoutMs?: number;
  /** How long close() lets statements in flight finish before cutting them off. Default 1000. */
  closeGraceMs?: number;
  /** Connections kept open however long they sit idle, once made. Default {@link WARM_CONNECTIONS}. */
  poolMin?: number;
  /** How long a connection beyond `poolMin` may sit idle before it is closed. Default 60000. */
  idleTimeoutMs?: number;
}

/**
 * Connections the pool keeps open once made, idle or not. A new connection costs a
 * server process fork, authentication and re-preparing the named statements (5–20 ms on
 * a busy machine): more than the whole budget for delivering a commit to a woken
 * reader, which needs 2–4 statements at once (the txns and data shards' state, a since
 * downgrade). pg-pool's default closes every connection idle for 10 s, so at one commit
 * every few seconds each wake-up paid for new connections.
 */
export const WARM_CONNECTIONS = 4;

/** The `application_name` of every connection the pool opens. */
export const APPLICATION_NAME = 'txnwal';

/** A statement: named ones are prepared once per connection and their plan reused. */
export interface Statement {
  readonly name?: string;
  readonly text: string;
}

/**
 * Builds the error for a call made after close, or still waiting for a connection when
 * close came. `op` is the operation (`head`), `what` the whole call for messages.
 */
export type ClosedError = (op: string, what: string) => Error;

/** Check-outs in a row that may find a dead client before a call gives up. */
const MAX_DEAD_CHECKOUTS = 3;

/**
 * True when the server reported an ordinary statement error: the statement's implicit
 * transaction was rolled back and the session lives on. SQLSTATE classes 08
 * (connection), 57P (shutdown), 58 (system/I-O) and XX (internal), and FATAL/PANIC
 * severities, can arrive after the commit already happened, so they do not count.
 */
export function isRolledBackStatementError(err: unknown): boolean {
  if (!(err instanceof pgModule().DatabaseError)) return false;
  const code = err.code ?? '';
  if (/^(08|57P|58|XX)/.test(code)) return false;
  return err.severity !== 'FATAL' && err.severity !== 'PANIC';
}

/** The socket under a pg client, to cut a statement off at close (pg has no public handle for it). */
function socketOf(client: pg.PoolClient): { destroy(): void } | undefined {
  return (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
}

export class PostgresPool {
  /** The server, for messages: the URL with its password redacted. */
  readonly server: string;
  readonly #pool: pg.Pool;
  readonly #closedError: ClosedError;
  readonly #closeGraceMs: number;
  /** Clients whose connection failed: pg emitted 'error' on them. */
  readonly #dead = new WeakSet<pg.PoolClient>();
  /** Clients running a statement now. */
  readonly #active = new Set<pg.PoolClient>();
  /** Rejects each call still waiting for a connection (close() uses them). */
  readonly #waiting = new Set<(err: Error) => void>();
  #closing: Promise<void> | undefined;

  constructor(url: string, opts: PostgresPoolOptions, closedError: ClosedError) {
    this.server = redactUrl(url);
    this.#closedError = closedError;
    this.#closeGraceMs = opts.closeGraceMs ?? 1000;
    this.#pool = new (pgModule().Pool)({
      connectionString: url,
      max: opts.poolMax,
      min: Math.min(opts.poolMax, opts.poolMin ?? WARM_CONNECTIONS),
      idleTimeoutMillis: opts.idleTimeoutMs ?? 60_000,
      // Names our sessions in pg_stat_activity, for operators (and for the pool's tests).
      application_name: APPLICATION_NAME,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      // Detects connections that died silently (a dropped NAT entry, a dead host).
      keepAlive: true,
      // Idle connections do not keep the process alive (a program that forgets close() still exits).
      allowExitOnIdle: true,
    });
    // pg reads the options it was given, enumerable or not; inspect shows only enumerable ones.
    Object.defineProperty(this.#pool.options, 'connectionString', { enumerable: false });
    // pg-pool re-emits an idle client's failure here (and drops the client).
    this.#pool.on('error', () => undefined);
    // 'connect' fires once per new client, before anyone can use it: see the module comment.
    this.#pool.on('connect', (client) => {
      client.on('error', () => this.#dead.add(client));
    });
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Runs `statement` on one pooled connection. `op` names the operation and `what`
   * the call in messages (e.g. `PostgresConsensus: head "k"`); `kind` decides the
   * outcome of a failure (see the module comment).
   */
  async run(
    kind: 'read' | 'write',
    op: string,
    what: string,
    statement: Statement,
    values: unknown[],
  ): Promise<pg.QueryResult> {
    if (this.closed) throw this.#closedError(op, what);
    const client = await this.#checkOut(op, what);
    this.#active.add(client);
    try {
      const result = await client.query({ name: statement.name, text: statement.text, values });
      client.release();
      return result;
    } catch (err) {
      const rolledBack = isRolledBackStatementError(err);
      // A connection that failed other than by a statement error is suspect: drop it.
      client.release(rolledBack ? undefined : err instanceof Error ? err : new Error(String(err)));
      const cut = this.closed ? ' (the store was closed while the statement was in flight)' : '';
      const message = `${what} failed: ${describe(err)}${cut}`;
      if (kind === 'read' || rolledBack) throw new DeterminateError(message, { cause: err });
      throw new IndeterminateError(message, { cause: err });
    } finally {
      this.#active.delete(client);
    }
  }

  /**
   * Runs a `CREATE TABLE IF NOT EXISTS`, tolerating the race between several
   * processes opening a fresh database at once: IF NOT EXISTS checks the catalog
   * before inserting into it, so the loser fails on the catalog's unique indexes
   * instead, as 23505 (unique_violation), 42P07 (duplicate_table) or 42710
   * (duplicate_object: 'type "consensus" already exists', from the table's row type).
   * By the time it fails the winner has committed, so one more attempt finds the
   * table; a few attempts also cover a winner that rolled back.
   */
  async createTableRacing(what: string, createTableSql: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.run('write', 'open', what, { text: createTableSql }, []);
        return;
      } catch (err) {
        const cause = (err as Error).cause;
        const code = cause instanceof pgModule().DatabaseError ? cause.code : undefined;
        const lostRace = code === '23505' || code === '42P07' || code === '42710';
        if (!lostRace || attempt >= 5) throw err;
      }
    }
  }

  /** Settles every call and closes every connection; see the module comment. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // Each waiter turns this into its own closed error (#connect).
    for (const reject of this.#waiting) reject(new Error('closed'));
    this.#waiting.clear();
    const ended = this.#pool.end();
    let grace: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      ended.then(() => true),
      new Promise<boolean>((resolve) => (grace = setTimeout(() => resolve(false), this.#closeGraceMs))),
    ]);
    clearTimeout(grace);
    // Their statements reject ("connection terminated") and release the clients, which ends the pool.
    if (!finished) for (const client of this.#active) socketOf(client)?.destroy();
    await ended;
  }

  /** A live client, or a DeterminateError (nothing was sent) / the closed error. */
  async #checkOut(op: string, what: string): Promise<pg.PoolClient> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.#connect(op, what);
      if (!this.#dead.has(client)) return client;
      // It died after the pool handed it out: nothing was sent on it yet.
      client.release(new Error('connection lost before use'));
      if (attempt >= MAX_DEAD_CHECKOUTS) {
        throw new DeterminateError(`${what} failed: ${attempt} connections in a row were lost before use`);
      }
    }
  }

  /** pool.connect(), abandoned with the closed error if close() comes first. */
  async #connect(op: string, what: string): Promise<pg.PoolClient> {
    let abandon!: (err: Error) => void;
    const abandoned = new Promise<never>((_, reject) => (abandon = reject));
    this.#waiting.add(abandon);
    let connecting: Promise<pg.PoolClient> | undefined;
    try {
      // pg parses the connection settings here and may throw at once (a bad port, a missing sslcert file).
      connecting = this.#pool.connect();
      return await Promise.race([connecting, abandoned]);
    } catch (err) {
      if (this.closed) {
        // A client that arrives after all goes straight back (and the ending pool drops it).
        connecting?.then(
          (client) => client.release(),
          () => undefined,
        );
        throw this.#closedError(op, what);
      }
      // No connection, so the statement was never sent.
      throw new DeterminateError(`${what} failed to connect: ${describe(err)}`, { cause: err });
    } finally {
      this.#waiting.delete(abandon);
    }
  }
}
