/**
 * Setting up a SQLite connection for a store several processes share: WAL, fsync at
 * every commit, the store's tables, and a busy timeout — robust to processes that open
 * one fresh file at the same moment. Used by SqliteConsensus and SqliteTimestampOracle.
 *
 * Invariant: when it returns, the file is in WAL mode, the schema exists and the
 * connection waits up to `busyTimeoutMs` for another's write lock; when it throws, it
 * has waited up to `busyTimeoutMs` for locks and the error is SQLite's own.
 *
 * Example:
 * ```ts
 * const db = new Database(file);
 * await setUpSqliteDatabase(db, 'CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)', 10_000);
 * ```
 */
import type Database from 'better-sqlite3';

/** How long one set-up attempt lets SQLite's own busy handler wait (it blocks the thread). */
const SET_UP_ATTEMPT_BUSY_MS = 20;

/**
 * Switches a new connection to WAL with fsync at every commit and runs `schema` (which
 * must be idempotent: CREATE … IF NOT EXISTS), retrying while another connection holds
 * a lock, for up to `busyTimeoutMs` in all.
 *
 * Why a loop of our own: processes opening one fresh file at once race to switch it to
 * WAL and create the table, and some of the locks that takes answer SQLITE_BUSY at once,
 * without asking the busy handler (SQLite does so where waiting could deadlock, and while
 * another connection recovers the WAL). Each attempt is short and the waits between
 * them are timers, so the event loop runs while we wait — unlike SQLite's busy handler,
 * which sleeps on the thread, so a lock held by another connection in this same process
 * could never be released during it.
 */
export async function setUpSqliteDatabase(db: Database.Database, schema: string, busyTimeoutMs: number): Promise<void> {
  const deadline = Date.now() + busyTimeoutMs;
  db.pragma(`busy_timeout = ${Math.min(SET_UP_ATTEMPT_BUSY_MS, busyTimeoutMs)}`);
  for (let attempt = 0; ; attempt++) {
    try {
      // The journal mode is kept in the file: only the first opener needs to switch it,
      // and switching takes an exclusive lock that reading does not.
      if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec(schema);
      break;
    } catch (err) {
      const remaining = deadline - Date.now();
      if (!isLockContention(err) || remaining <= 0) throw err;
      const backoff = Math.min(2 ** attempt, 50) * (0.5 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, Math.min(backoff, remaining)));
    }
  }
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
}

/** SQLITE_BUSY and its extended codes (…_RECOVERY, …_SNAPSHOT), and SQLITE_LOCKED. */
function isLockContention(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

