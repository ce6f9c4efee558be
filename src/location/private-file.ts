/**
 * createFileIfMissing: makes sure a database file exists before SQLite opens it, so
 * it is created with our mode instead of SQLite's default 0644.
 *
 * SQLite gives the `-wal` and `-shm` files it creates beside a database the mode of
 * the database file itself, so a 0600 database keeps its journal 0600 too. A file
 * that already exists keeps its mode (the operator may have chosen it).
 */
import { promises as fs } from 'node:fs';

/** The mode of SQLite database files unless an option says otherwise: owner only. */
export const DEFAULT_DATABASE_FILE_MODE = 0o600;

export async function createFileIfMissing(file: string, mode: number): Promise<void> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'wx', mode);
  } catch (err) {
    if (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'EEXIST') return;
    throw err;
  }
  try {
    // Exactly `mode`, whatever the umask took away.
    await handle.chmod(mode);
  } finally {
    await handle.close();
  }
}
