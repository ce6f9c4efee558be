/**
 * openReadOnlyLocation: a location's Blob and Consensus for reading only, opened
 * without creating or changing anything.
 *
 * `openLocation` (location/location.ts) is for stores: it creates a missing `file:`
 * directory, the SQLite file and the Postgres table, and starts a wake-up channel
 * (a socket file in the directory). The `txnwal` command must leave the store as it
 * found it, so it opens the same URL forms through this:
 * - `file:<dir>` (and `file:///<abs>`): `<dir>` must exist and hold
 *   `consensus.sqlite` (opened with SQLite's read-only flag) and `blob/`;
 * - `file:<dir>?blob=s3://…`: the same consensus, blobs in S3;
 * - `postgres://…?blob=<file:<dir> | s3://…>` (also `postgresql://`): a read-only
 *   session on a database that must already hold the `consensus` table.
 * `mem://` is refused: an in-memory location lives inside the process that made it.
 *
 * Invariants:
 * - Nothing is created: no directory, no file, no table, no socket. Every problem
 *   (a malformed URL, a missing directory, a directory that is not a txnwal store)
 *   is a {@link CliError} naming it and what to do.
 * - Writes are refused by construction: the blob is wrapped in {@link ReadOnlyBlob},
 *   and both consensus views refuse compare-and-set and truncate (and their storage
 *   is opened read-only underneath).
 *
 * Example:
 * ```ts
 * const loc = await openReadOnlyLocation('file:./data');
 * await loc.consensus.listKeys();
 * await loc.close();
 * ```
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Blob } from '../location/blob.js';
import type { Consensus } from '../location/consensus.js';
import { FileBlob } from '../location/file-blob.js';
import { fileUrlDir } from '../location/location.js';
import { redactUrl } from '../location/redact-url.js';
import { S3Blob } from '../location/s3-blob.js';
import { moveS3Params } from '../location/s3-url.js';
import { CliError } from './cli-error.js';
import { PostgresReadOnlyConsensus } from './postgres-read-only-consensus.js';
import { ReadOnlyBlob } from './read-only-blob.js';
import { SqliteReadOnlyConsensus } from './sqlite-read-only-consensus.js';

/** A location opened for reading: its stores, its redacted URL, and close. */
export interface ReadOnlyLocation {
  readonly blob: Blob;
  readonly consensus: Consensus;
  /** The URL with any password replaced by `***`: the only form that goes into output. */
  readonly url: string;
  close(): Promise<void>;
}

const FORMS = 'file:<dir>, file:///<absolute dir>, file:<dir>?blob=s3://<bucket>/<prefix>, or postgres://…?blob=<file:<dir> or s3://…>';

async function statOrUndefined(p: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await fs.stat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new CliError(`cannot read ${p}: ${(err as Error).message}; check its permissions`);
  }
}

/** An existing directory, or a CliError saying what is there instead. */
async function existingDirectory(dir: string, what: string): Promise<void> {
  const stat = await statOrUndefined(dir);
  if (!stat) throw new CliError(`${what} ${dir} does not exist; check the path (the txnwal command never creates a store)`);
  if (!stat.isDirectory()) throw new CliError(`${what} ${dir} is not a directory; check the path`);
}

async function openFileBlobDir(dir: string, what: string): Promise<Blob> {
  await existingDirectory(dir, what);
  return FileBlob.open(dir);
}

async function openS3Blob(blobUrl: string): Promise<Blob> {
  try {
    return await S3Blob.open(blobUrl);
  } catch (err) {
    throw new CliError(`cannot open the blob store ${redactUrl(blobUrl)}: ${(err as Error).message}`);
  }
}

async function openFile(url: string, shown: string): Promise<{ blob: Blob; consensus: Consensus }> {
  const at = url.indexOf('?blob=');
  const fileUrl = at < 0 ? url : url.slice(0, at);
  let blobUrl: string | undefined;
  if (at >= 0) {
    const params = new URLSearchParams(url.slice(at + 1));
    blobUrl = params.get('blob') ?? '';
    params.delete('blob');
    if (!blobUrl.startsWith('s3://')) {
      throw new CliError(`${shown}: a file: location's blob parameter accepts only s3://<bucket>/<prefix>; drop ?blob=… to read blobs from <dir>/blob`);
    }
    blobUrl = moveS3Params(blobUrl, params);
  }
  const dir = fileUrlDir(fileUrl, (m) => new CliError(m));
  await existingDirectory(dir, 'the store directory');
  const sqlite = path.join(dir, 'consensus.sqlite');
  if (!(await statOrUndefined(sqlite))?.isFile()) {
    throw new CliError(`${shown} is not a txnwal store: ${dir} has no consensus.sqlite; check the path`);
  }
  let blob: Blob;
  if (blobUrl === undefined) {
    if (!(await statOrUndefined(path.join(dir, 'blob')))?.isDirectory()) {
      throw new CliError(`${shown} is not a txnwal store: ${dir} has no blob directory; check the path`);
    }
    blob = await FileBlob.open(path.join(dir, 'blob'));
  } else {
    blob = await openS3Blob(blobUrl);
  }
  try {
    return { blob, consensus: SqliteReadOnlyConsensus.open(sqlite, shown) };
  } catch (err) {
    await blob.close();
    throw err;
  }
}

async function openPostgres(url: string, shown: string): Promise<{ blob: Blob; consensus: Consensus }> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new CliError(`${shown} is not a valid Postgres URL (${(err as Error).message}); expected postgres://user@host:5432/db?blob=…`);
  }
  let blobUrl = parsed.searchParams.get('blob');
  if (blobUrl === null || blobUrl === '') {
    throw new CliError(`${shown} names no blob store; add ?blob=file:<dir> or ?blob=s3://<bucket>/<prefix>, as the store was opened with`);
  }
  parsed.searchParams.delete('blob');
  let blob: Blob;
  if (blobUrl.startsWith('s3://')) {
    blobUrl = moveS3Params(blobUrl, parsed.searchParams);
    blob = await openS3Blob(blobUrl);
  } else if (blobUrl.startsWith('file:')) {
    blob = await openFileBlobDir(fileUrlDir(blobUrl, (m) => new CliError(m)), 'the blob directory');
  } else {
    throw new CliError(`${shown}: the blob parameter must be file:<dir> or s3://<bucket>/<prefix> (an in-memory blob cannot be read from another process)`);
  }
  try {
    return { blob, consensus: await PostgresReadOnlyConsensus.open(parsed.toString(), shown) };
  } catch (err) {
    await blob.close();
    throw err;
  }
}

/** Opens `url` for reading only; see the module doc for the accepted forms. */
export async function openReadOnlyLocation(url: string): Promise<ReadOnlyLocation> {
  const shown = redactUrl(url);
  let stores: { blob: Blob; consensus: Consensus };
  if (url.startsWith('file:')) stores = await openFile(url, shown);
  else if (url.startsWith('postgres://') || url.startsWith('postgresql://')) stores = await openPostgres(url, shown);
  else if (url.startsWith('mem://')) {
    throw new CliError(`${shown}: an in-memory location lives inside the process that opened it; the txnwal command reads ${FORMS}`);
  } else {
    throw new CliError(`unsupported location URL ${JSON.stringify(shown)}: expected ${FORMS}`);
  }
  const blob = new ReadOnlyBlob(stores.blob);
  const { consensus } = stores;
  let closing: Promise<void> | undefined;
  return {
    blob,
    consensus,
    url: shown,
    close() {
      closing ??= Promise.allSettled([blob.close(), consensus.close()]).then(() => undefined);
      return closing;
    },
  };
}
