/**
 * Location: a Blob and a Consensus opened together from one URL.
 *
 * Accepted URLs:
 * - `mem://`: a fresh in-memory pair, private to the caller.
 * - `mem://<name>`: the in-memory pair registered under `<name>` in this process,
 *   created on first use. Every open of the same name shares it, so several clients
 *   in one process can talk through one in-memory location. The registry lives on
 *   `globalThis`, so even two copies of this module (say, src and dist) share it.
 * - `file:<dir>` or `file://<absolute dir>`: the embedded default. `<dir>` is created
 *   if missing; consensus is SQLite at `<dir>/consensus.sqlite`, blobs are files in
 *   `<dir>/blob`. Relative `file:` paths resolve against the working directory.
 * - `postgres://…` or `postgresql://…`: consensus in Postgres; the blob store must be
 *   named by a `blob` query parameter holding a blob URL: `file:<dir>` (files directly
 *   in `<dir>`), `mem://` or `mem://<name>` (the blob of that named in-memory
 *   location), or `s3://<bucket>/<prefix>?endpoint=…&region=…` (see `s3-url.ts`; its
 *   parameters may follow unescaped: the outer URL's `endpoint`, `region`, … are handed
 *   to it). These parameters are removed before the URL reaches the Postgres driver.
 * - `file:<dir>?blob=s3://…`: SQLite consensus in `<dir>` as above, blobs in S3 (one
 *   machine's consensus, object storage for the data).
 *
 * Files are private to the owner: the `file:` directories (and any missing parents)
 * are created 0700, blob files and the SQLite database (with its -wal/-shm) 0600.
 * `openLocation(url, { dirMode, fileMode })` overrides that, e.g. `{ dirMode: 0o750,
 * fileMode: 0o640 }` for a group that backs the data up. Existing directories and
 * database files keep their modes.
 *
 * Each location also opens its wake-up channel, `stateChanges` (state-changes.ts):
 * in-process for `mem://` (shared by every open of one `mem://<name>`), a Unix socket
 * in the directory for `file:` (socket-state-changes.ts), LISTEN/NOTIFY for Postgres
 * (postgres-state-changes.ts). A channel that cannot come up does not fail the open:
 * it is a hint, and readers poll while it is down.
 *
 * Closing a Location closes both stores and its channel, except stores shared through a `mem://<name>`
 * registry entry: those stay open and keep their data for the next open.
 *
 * Secrets: a location shows its URL only through {@link redactUrl} (`location.url`,
 * `util.inspect`, every error message here), so a Postgres password never leaves the
 * driver's connection settings.
 *
 * Example:
 * ```ts
 * const a = await openLocation('mem://demo');
 * const b = await openLocation('mem://demo');
 * a.consensus === b.consensus;   // true
 * await openLocation('postgres://u@db/txnwal?blob=file:/var/lib/txnwal/blob');
 * await openLocation('postgres://u@db/txnwal?blob=s3://bucket/txnwal&region=eu-west-1');
 * ```
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Blob } from './blob.js';
import type { Consensus } from './consensus.js';
import { LocationUsageError } from './errors.js';
import { DEFAULT_DIR_MODE, FileBlob, checkMode } from './file-blob.js';
import { makeDirectory } from './make-directory.js';
import { MemBlob } from './mem-blob.js';
import { MemConsensus } from './mem-consensus.js';
import { PostgresConsensus } from './postgres-consensus.js';
import { PostgresStateChanges } from './postgres-state-changes.js';
import { S3Blob } from './s3-blob.js';
import { redactUrl } from './redact-url.js';
import { moveS3Params } from './s3-url.js';
import { SocketStateChanges } from './socket-state-changes.js';
import { SqliteConsensus } from './sqlite-consensus.js';
import { LocalStateChanges, type StateChanges } from './state-changes.js';

/**
 * A Blob and a Consensus opened together from one URL, with the wake-up channel: what a
 * PersistClient runs on.
 *
 * Example:
 * ```ts
 * const location: Location = await openLocation('file:./data');
 * await location.consensus.listKeys();
 * await location.close();
 * ```
 */
export interface Location {
  /** Where batches and rollups are stored (key → bytes). */
  readonly blob: Blob;
  /** Where each shard's state chain is stored (compare-and-set per shard). */
  readonly consensus: Consensus;
  /** The URL this location was opened from, with any password replaced by `***` ({@link redactUrl}). */
  readonly url: string;
  /**
   * The wake-up channel: hints that a key has a new state (state-changes.ts). Optional,
   * so a hand-made Location (a test wrapper) may leave it out; its readers only poll.
   */
  readonly stateChanges?: StateChanges;
  /** Closes both stores (a no-op for stores shared through `mem://<name>`). Idempotent. */
  close(): Promise<void>;
}

const ACCEPTED_FORMS =
  'mem://, mem://<name>, file:<dir>, file:///<absolute dir>, ' +
  'file:<dir>?blob=s3://<bucket>/<prefix>, or postgres://…?blob=<blob url> (also postgresql://)';

const BLOB_PARAM_HELP =
  'add a "blob" query parameter naming the blob store, e.g. ' +
  'postgres://user@host:5432/db?blob=file:/var/lib/txnwal/blob, ?blob=s3://bucket/prefix?region=us-east-1 or ?blob=mem://<name>';

interface MemPair {
  blob: MemBlob;
  consensus: MemConsensus;
  stateChanges: LocalStateChanges;
}

const REGISTRY_KEY = Symbol.for('txnwal.location.memRegistry');

function memRegistry(): Map<string, MemPair> {
  const holder = globalThis as { [REGISTRY_KEY]?: Map<string, MemPair> };
  return (holder[REGISTRY_KEY] ??= new Map());
}

/** The pair for `mem://<name>`, or a fresh private pair for an empty name. */
function memPair(name: string): { pair: MemPair; shared: boolean } {
  const fresh = (): MemPair => ({ blob: new MemBlob(), consensus: new MemConsensus(), stateChanges: new LocalStateChanges() });
  if (name === '') return { pair: fresh(), shared: false };
  const registry = memRegistry();
  let pair = registry.get(name);
  if (!pair) {
    pair = fresh();
    registry.set(name, pair);
  }
  return { pair, shared: true };
}

/**
 * The directory named by a `file:` URL: `file:<dir>` verbatim, `file://…` as a file
 * URL. `fail` builds the error for a malformed one (other layers raise their own types).
 * Public: `txnwal/backend` exports it for backend authors.
 *
 * Example:
 * ```ts
 * fileUrlDir('file:./data');            // '/current/dir/data'
 * fileUrlDir('file:///var/lib/txnwal'); // '/var/lib/txnwal'
 * ```
 */
export function fileUrlDir(url: string, fail: (problem: string) => Error = (m) => new LocationUsageError(m)): string {
  if (url.startsWith('file://')) {
    if (!url.startsWith('file:///')) {
      throw fail(
        `Location URL ${JSON.stringify(redactUrl(url))}: file:// URLs need an absolute path (file:///var/lib/txnwal); ` +
          'for a relative directory use file:<dir>',
      );
    }
    return fileURLToPath(url);
  }
  const dir = url.slice('file:'.length);
  if (dir === '') throw fail(`Location URL ${JSON.stringify(redactUrl(url))}: file: needs a directory, e.g. file:./data`);
  return path.resolve(dir);
}

/**
 * How `file:` stores create directories and files (see the module comment).
 *
 * Example:
 * ```ts
 * await openLocation('file:./data', { dirMode: 0o750, fileMode: 0o640 });
 * ```
 */
export interface LocationOptions {
  /** Mode of directories created for `file:` stores. Default 0o700. */
  dirMode?: number;
  /** Mode of blob files and of a SQLite database file created for `file:` stores. Default 0o600. */
  fileMode?: number;
}

/** One store's share of closing a Location. */
type Closer = () => Promise<void>;

function makeLocation(
  givenUrl: string,
  blob: Blob,
  consensus: Consensus,
  stateChanges: StateChanges,
  closers: Closer[],
): Location {
  let closing: Promise<void> | undefined;
  const url = redactUrl(givenUrl);
  return {
    blob,
    consensus,
    stateChanges,
    url,
    close() {
      // Idempotent, and concurrent closes wait for the same work.
      closing ??= Promise.allSettled(closers.map((c) => c())).then((results) => {
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      });
      return closing;
    },
  };
}

async function openBlobUrl(blobUrl: string, outerUrl: string, opts: LocationOptions): Promise<{ blob: Blob; close: Closer }> {
  if (blobUrl.startsWith('mem://')) {
    const { pair, shared } = memPair(blobUrl.slice('mem://'.length));
    return { blob: pair.blob, close: shared ? async () => undefined : () => pair.blob.close() };
  }
  if (blobUrl.startsWith('file:')) {
    const blob = await FileBlob.open(fileUrlDir(blobUrl), { dirMode: opts.dirMode, fileMode: opts.fileMode });
    return { blob, close: () => blob.close() };
  }
  if (blobUrl.startsWith('s3://')) {
    const blob = await S3Blob.open(blobUrl);
    return { blob, close: () => blob.close() };
  }
  throw new LocationUsageError(
    `Location URL ${JSON.stringify(redactUrl(outerUrl))}: unsupported blob ${JSON.stringify(redactUrl(blobUrl))}; ` +
      'the blob parameter accepts file:<dir>, file:///<absolute dir>, s3://<bucket>/<prefix>, mem:// or mem://<name>',
  );
}

async function openPostgres(url: string, opts: LocationOptions): Promise<Location> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new LocationUsageError(`Location URL is not a valid Postgres URL: ${(err as Error).message}`);
  }
  let blobUrl = parsed.searchParams.get('blob');
  if (blobUrl === null || blobUrl === '') {
    throw new LocationUsageError(`Postgres location URL has no blob store: ${BLOB_PARAM_HELP}`);
  }
  parsed.searchParams.delete('blob');
  if (blobUrl.startsWith('s3://')) blobUrl = moveS3Params(blobUrl, parsed.searchParams);
  const { blob, close: closeBlob } = await openBlobUrl(blobUrl, url, opts);
  let consensus: PostgresConsensus;
  try {
    consensus = await PostgresConsensus.open(parsed.toString());
  } catch (err) {
    await closeBlob();
    throw err;
  }
  const stateChanges = await PostgresStateChanges.open(parsed.toString());
  return makeLocation(url, blob, consensus, stateChanges, [closeBlob, () => consensus.close(), () => stateChanges.close()]);
}

/**
 * `file:<dir>?blob=s3://…` → the `file:` part and the S3 blob URL; a `file:` URL without
 * `?blob=` comes back whole (a `?` elsewhere is part of the directory name, as always).
 */
function splitFileBlob(url: string): { fileUrl: string; blobUrl?: string } {
  const at = url.indexOf('?blob=');
  if (at < 0) return { fileUrl: url };
  const params = new URLSearchParams(url.slice(at + 1));
  const blobUrl = params.get('blob') ?? '';
  params.delete('blob');
  if (!blobUrl.startsWith('s3://')) {
    throw new LocationUsageError(
      `Location URL ${JSON.stringify(redactUrl(url))}: a file: location keeps its blobs in <dir>/blob; its blob parameter ` +
        'accepts only s3://<bucket>/<prefix>?… (object storage); drop ?blob=… to keep blobs in files',
    );
  }
  return { fileUrl: url.slice(0, at), blobUrl: moveS3Params(blobUrl, params) };
}

async function openFile(url: string, opts: LocationOptions): Promise<Location> {
  const { fileUrl, blobUrl } = splitFileBlob(url);
  const dir = fileUrlDir(fileUrl);
  let blob: Blob;
  if (blobUrl === undefined) {
    // FileBlob.open creates <dir>/blob and so <dir>, before SQLite needs <dir> to exist.
    blob = await FileBlob.open(path.join(dir, 'blob'), { dirMode: opts.dirMode, fileMode: opts.fileMode });
  } else {
    await makeDirectory(dir, checkMode(opts.dirMode ?? DEFAULT_DIR_MODE, 'Location option dirMode'));
    blob = await S3Blob.open(blobUrl);
  }
  let consensus: SqliteConsensus;
  let stateChanges: SocketStateChanges;
  try {
    consensus = await SqliteConsensus.open(path.join(dir, 'consensus.sqlite'), { fileMode: opts.fileMode });
  } catch (err) {
    await blob.close();
    throw err;
  }
  try {
    stateChanges = await SocketStateChanges.open(dir, { fileMode: opts.fileMode });
  } catch (err) {
    await Promise.allSettled([blob.close(), consensus.close()]);
    throw err;
  }
  const closers = [() => blob.close(), () => consensus.close(), () => stateChanges.close()];
  return makeLocation(url, blob, consensus, stateChanges, closers);
}

/**
 * Opens the Location named by `url`; see the module comment for the accepted forms.
 *
 * Most users pass the URL straight to `PersistClient.open` or `openDatabase`; open a Location
 * yourself to share it, wrap it (withFaultInjection) or inspect its stores.
 *
 * Example:
 * ```ts
 * const location = await openLocation('mem://demo');
 * const client = await PersistClient.open(location);
 * ```
 */
export async function openLocation(url: string, opts: LocationOptions = {}): Promise<Location> {
  if (url.startsWith('mem://')) {
    const { pair, shared } = memPair(url.slice('mem://'.length));
    const closers: Closer[] = shared
      ? []
      : [() => pair.blob.close(), () => pair.consensus.close(), () => pair.stateChanges.close()];
    return makeLocation(url, pair.blob, pair.consensus, pair.stateChanges, closers);
  }
  if (url.startsWith('file:')) return openFile(url, opts);
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return openPostgres(url, opts);
  if (url.startsWith('s3://')) {
    throw new LocationUsageError(
      `Location URL ${JSON.stringify(redactUrl(url))} names only a blob store; pair it with a consensus store: ` +
        'postgres://user@host/db?blob=s3://… (many machines), file:<dir>?blob=s3://… (one machine), or mem:// (in-process, for tests)',
    );
  }
  throw new LocationUsageError(`Unsupported location URL ${JSON.stringify(redactUrl(url))}: expected ${ACCEPTED_FORMS}`);
}
