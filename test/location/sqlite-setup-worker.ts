/**
 * Child-process half of the SQLite set-up race (run by sqlite-setup.test.ts as
 * `node --import tsx sqlite-setup-worker.ts`).
 *
 * Prints `ready`, then for each line `<file>` on stdin opens a connection to that
 * (fresh) file, sets it up as the stores do, closes it and answers `ok` or
 * `error <code> <message>`. The parent sends every child the same file at once, so the
 * children race to switch it to WAL and create the table.
 */
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { setUpSqliteDatabase } from '../../src/location/sqlite-setup.js';

const SCHEMA = 'CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID';

process.stdout.write('ready\n');
for await (const file of createInterface({ input: process.stdin })) {
  let db: Database.Database | undefined;
  try {
    db = new Database(file);
    await setUpSqliteDatabase(db, SCHEMA, 10_000);
    db.prepare('INSERT OR IGNORE INTO t VALUES (?, ?)').run(String(process.pid), Buffer.from('x'));
    process.stdout.write('ok\n');
  } catch (err) {
    const e = err as { code?: string; message?: string };
    process.stdout.write(`error ${e.code ?? '?'} ${e.message ?? String(err)}\n`);
  } finally {
    db?.close();
  }
}
