/**
 * FileBlob: a {@link Blob} stored as one file per key in a single flat directory.
 *
 * Invariants:
 * - A key maps to exactly one file name: every `/` becomes `∕` (U+2215 DIVISION SLASH),
 *   so keys like `s1/p1` stay in one directory. Keys that could not round-trip, or
 *   could be confused with the helper files below, are rejected with
 *   LocationUsageError: empty keys, keys containing `∕` or NUL, keys starting with
 *   `.`, keys ending in `.tmp` or `.bak`, and names too long for the file system.
 * - `set` is atomic and durable: write `<name>.<random>.tmp`, fsync it, rename it over
 *   `<name>`, fsync the directory. rename(2) is atomic, so a reader (in any process)
 *   sees the old file or the whole new one; the random suffix keeps concurrent
 *   writers of one key from sharing a temp file.
 * - In tombstone mode `delete` renames `<name>` to `<name>.bak` instead of unlinking it,
 *   and `restore` links it back. The link is no-clobber: if the key was set again
 *   meanwhile, the newer value wins and restore just succeeds.
 * - Listing skips `.tmp` (in-flight or abandoned writes) and `.bak` (tombstones), and
 *   throws on anything else that is not a file named by a valid key: a stranger in the
 *   directory means the directory is not what we think it is.
 * - Fault mapping: on reads (get, list) an fs error means nothing happened
 *   (DeterminateError), except ENOENT on get, which is just "absent". On writes
 *   (set, delete, restore) a failure may come after the rename or unlink took effect,
 *   so it is an IndeterminateError. Messages name the key and the path; `cause` holds
 *   the fs error.
 * - Data stays private to the owner: directories this store creates are 0700 and
 *   every file it writes is 0600, exactly (set after creation, whatever the umask).
 *   `dirMode` / `fileMode` override that (e.g. 0o750 / 0o640 for a group that backs
 *   the data up); directories that already exist keep their mode.
 *
 * Example:
 * ```ts
 * const b = await FileBlob.open('/var/lib/txnwal/blob');
 * await b.set('s1/p1', bytes);       // writes /var/lib/txnwal/blob/s1∕p1
 * await b.listKeysAndMetadata('s1/', (k, n) => console.log(k, n)); // s1/p1 <size>
 * ```
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Blob } from './blob.js';
import { bufferView, plainBytes } from './bytes.js';
import { DeterminateError, IndeterminateError, LocationUsageError, describeError as describe } from './errors.js';
import { makeDirectory } from './make-directory.js';

/**
 * Options of {@link FileBlob.open}: tombstones and the permission modes of what it creates.
 *
 * Example:
 * ```ts
 * const blob = await FileBlob.open('/var/lib/txnwal/blob', { dirMode: 0o750, fileMode: 0o640 });
 * ```
 */
export interface FileBlobOptions {
  /** Deletes keep a `<name>.bak` tombstone so `restore` can undelete. Default false. */
  tombstone?: boolean;
  /** Mode of the directories the store creates. Default 0o700 (owner only). */
  dirMode?: number;
  /** Mode of the files the store writes. Default 0o600 (owner only). */
  fileMode?: number;
}

/**
 * Owner-only by default: blobs hold the data itself.
 *
 * Example:
 * ```ts
 * await FileBlob.open(dir, { dirMode: DEFAULT_DIR_MODE });   // the same as leaving it out
 * ```
 */
export const DEFAULT_DIR_MODE = 0o700;
/**
 * Owner-only by default: blob files and the SQLite database hold the data itself.
 *
 * Example:
 * ```ts
 * await FileBlob.open(dir, { fileMode: DEFAULT_FILE_MODE });   // the same as leaving it out
 * ```
 */
export const DEFAULT_FILE_MODE = 0o600;

/** Throws LocationUsageError unless `mode` is a permission mode (an integer 0..0o777). */
export function checkMode(mode: unknown, what: string): number {
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new LocationUsageError(`${what} must be a permission mode, an integer from 0 to 0o777 (e.g. 0o600), got ${String(mode)}`);
  }
  return mode;
}

const DIVISION_SLASH = '\u2215';
const TMP_SUFFIX = '.tmp';
const BAK_SUFFIX = '.bak';
/** `.` + 12 hex digits + `.tmp`: the longest suffix we ever append to a key's file name. */
const RANDOM_TMP_SUFFIX_LENGTH = 1 + 12 + TMP_SUFFIX.length;
/** NAME_MAX on Linux, macOS and the usual file systems, in bytes. */
const NAME_MAX = 255;

/** Why `key` cannot be stored, or undefined if it can. */
function keyProblem(key: string): string | undefined {
  if (key.length === 0) return 'keys must not be empty';
  if (key.includes(DIVISION_SLASH)) return 'keys must not contain U+2215 (it encodes "/")';
  if (key.includes('\0')) return 'keys must not contain NUL';
  if (key.startsWith('.')) return 'keys must not start with "."';
  if (key.endsWith(TMP_SUFFIX) || key.endsWith(BAK_SUFFIX)) return 'keys must not end in .tmp or .bak';
  if (Buffer.byteLength(encodeKey(key)) + RANDOM_TMP_SUFFIX_LENGTH > NAME_MAX) return 'key is too long';
  return undefined;
}

function encodeKey(key: string): string {
  return key.replaceAll('/', DIVISION_SLASH);
}

function decodeName(name: string): string {
  return name.replaceAll(DIVISION_SLASH, '/');
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

export class FileBlob implements Blob {
  private closed = false;

  private constructor(
    /** Absolute path of the directory holding one file per key. */
    readonly dir: string,
    private readonly tombstone: boolean,
    private readonly fileMode: number,
  ) {}

  /** Opens (creating if needed) the blob directory `dir`. */
  static async open(dir: string, options: FileBlobOptions = {}): Promise<FileBlob> {
    const abs = path.resolve(dir);
    const dirMode = checkMode(options.dirMode ?? DEFAULT_DIR_MODE, 'FileBlob option dirMode');
    const fileMode = checkMode(options.fileMode ?? DEFAULT_FILE_MODE, 'FileBlob option fileMode');
    try {
      await makeDirectory(abs, dirMode);
      const stat = await fs.stat(abs);
      if (!stat.isDirectory()) throw new Error('not a directory');
    } catch (err) {
      throw new DeterminateError(`FileBlob: cannot open blob directory ${abs}: ${describe(err)}`, { cause: err });
    }
    return new FileBlob(abs, options.tombstone ?? false, fileMode);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const file = this.fileOf(key);
    try {
      return plainBytes(await fs.readFile(file));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw new DeterminateError(this.message('get', key, file, err), { cause: err });
    }
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    const file = this.fileOf(key);
    const tmp = `${file}.${randomBytes(6).toString('hex')}${TMP_SUFFIX}`;
    try {
      // 'wx': a fresh file, never someone else's temp file.
      const handle = await fs.open(tmp, 'wx', this.fileMode);
      try {
        // The umask may have cleared bits of the mode: set it exactly.
        await handle.chmod(this.fileMode);
        await handle.writeFile(bufferView(value));
        // Data must be on disk before the rename makes it visible, or a crash could
        // leave the key naming a file with missing contents.
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(tmp, file);
      // Makes the rename itself durable.
      await this.syncDir();
    } catch (err) {
      // Best effort: after a successful rename the temp file is gone and this is a no-op.
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw new IndeterminateError(this.message('set', key, file, err), { cause: err });
    }
  }

  async delete(key: string): Promise<number | undefined> {
    const file = this.fileOf(key);
    try {
      let size: number;
      try {
        size = (await fs.stat(file)).size;
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return undefined;
        throw err;
      }
      try {
        if (this.tombstone) await fs.rename(file, file + BAK_SUFFIX);
        else await fs.unlink(file);
      } catch (err) {
        // A concurrent delete won the race; to this caller the key was already gone.
        if (errnoCode(err) === 'ENOENT') return undefined;
        throw err;
      }
      await this.syncDir();
      return size;
    } catch (err) {
      throw new IndeterminateError(this.message('delete', key, file, err), { cause: err });
    }
  }

  async listKeysAndMetadata(prefix: string, fn: (key: string, sizeBytes: number) => void): Promise<void> {
    this.checkOpen();
    const found: { key: string; file: string }[] = [];
    try {
      for (const entry of await fs.readdir(this.dir, { withFileTypes: true })) {
        const name = entry.name;
        if (name.endsWith(TMP_SUFFIX) || name.endsWith(BAK_SUFFIX)) continue;
        const key = decodeName(name);
        const problem = entry.isFile() ? keyProblem(key) : 'not a regular file';
        if (problem !== undefined) {
          throw new Error(`unexpected entry ${JSON.stringify(name)} (${problem})`);
        }
        if (key.startsWith(prefix)) found.push({ key, file: path.join(this.dir, name) });
      }
      const sizes = await Promise.all(
        found.map(({ file }) =>
          fs.stat(file).then(
            (s) => s.size,
            (err: unknown) => {
              // Deleted since readdir: no longer live, so not listed.
              if (errnoCode(err) === 'ENOENT') return undefined;
              throw err;
            },
          ),
        ),
      );
      found.forEach(({ key }, i) => {
        const size = sizes[i];
        if (size !== undefined) fn(key, size);
      });
    } catch (err) {
      throw new DeterminateError(
        `FileBlob: listing prefix ${JSON.stringify(prefix)} in ${this.dir} failed: ${describe(err)}`,
        { cause: err },
      );
    }
  }

  async restore(key: string): Promise<void> {
    const file = this.fileOf(key);
    try {
      await fs.stat(file);
      return; // Live already: restore is a no-op.
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') {
        throw new DeterminateError(this.message('restore', key, file, err), { cause: err });
      }
    }
    if (this.tombstone) {
      try {
        // link(2), unlike rename(2), fails instead of replacing a file that a
        // concurrent set just created: the newer value must win.
        await fs.link(file + BAK_SUFFIX, file);
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'EEXIST') return; // Set concurrently: the key exists, which is all restore promises.
        if (code !== 'ENOENT') {
          throw new IndeterminateError(this.message('restore', key, file, err), { cause: err });
        }
        throw new DeterminateError(
          `FileBlob: cannot restore ${JSON.stringify(key)}: neither ${file} nor its tombstone exists`,
          { cause: err },
        );
      }
      try {
        await fs.unlink(file + BAK_SUFFIX);
        await this.syncDir();
      } catch (err) {
        // The key is live again; a leftover tombstone is harmless (listing skips it).
        throw new IndeterminateError(this.message('restore', key, file, err), { cause: err });
      }
      return;
    }
    throw new DeterminateError(`FileBlob: cannot restore ${JSON.stringify(key)}: ${file} does not exist`);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** The file for `key`; throws LocationUsageError for unusable keys or after close. */
  private fileOf(key: string): string {
    this.checkOpen();
    const problem = keyProblem(key);
    if (problem !== undefined) throw new LocationUsageError(`FileBlob: bad key ${JSON.stringify(key)}: ${problem}`);
    return path.join(this.dir, encodeKey(key));
  }

  private checkOpen(): void {
    if (this.closed) throw new LocationUsageError('FileBlob: used after close');
  }

  private async syncDir(): Promise<void> {
    const handle = await fs.open(this.dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  private message(op: string, key: string, file: string, err: unknown): string {
    return `FileBlob: ${op} ${JSON.stringify(key)} at ${file} failed: ${describe(err)}`;
  }
}
