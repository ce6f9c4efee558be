/**
 * openTimestampOracle: the timestamp oracle that belongs with a location URL, so one
 * URL configures storage and timestamps alike.
 *
 * Accepted URLs (the same forms as `openLocation`):
 * - `mem://`: a fresh private {@link LogicalClock}; the timeline name is irrelevant.
 * - `mem://<name>`: the in-process clock of (`<name>`, timeline), created on first
 *   open; every open of the same pair shares it, like the `mem://<name>` location.
 *   Each open returns its own handle, so closing one leaves the others working. The
 *   clock keeps the `now` of the open that created it.
 * - `file:<dir>` or `file:///<absolute dir>`: {@link SqliteTimestampOracle} at
 *   `<dir>/oracle.sqlite`, beside the location's `consensus.sqlite` and `blob/`.
 *   `<dir>` is created if missing; relative paths resolve against the working
 *   directory.
 * - `postgres://…` or `postgresql://…`: {@link PostgresTimestampOracle} in that
 *   database. A `blob` query parameter (which the location URL carries) is dropped, so
 *   the location URL can be passed as is.
 *
 * Every open with a `initialTs` raises the timeline to it (never lowers it).
 *
 * Example:
 * ```ts
 * const url = 'file:./data';
 * const location = await openLocation(url);         // ./data/consensus.sqlite, ./data/blob
 * const oracle = await openTimestampOracle(url);    // ./data/oracle.sqlite
 * const { timestamp } = await oracle.writeTs();
 * ```
 */
import path from 'node:path';
import { DEFAULT_DIR_MODE } from '../location/file-blob.js';
import { fileUrlDir } from '../location/location.js';
import { makeDirectory } from '../location/make-directory.js';
import { describeValue } from '../persist/describe-value.js';
import { redactUrl } from '../location/redact-url.js';
import type { Timestamp } from '../persist/time.js';
import { resolveDurableOptions, type DurableOracleOptions } from './durable-oracle.js';
import { LogicalClock } from './logical-clock.js';
import { InvalidOracleConfig, TimestampOracleClosed } from './oracle-errors.js';
import { PostgresTimestampOracle, type PostgresTimestampOracleOptions } from './postgres-oracle.js';
import { SqliteTimestampOracle, type SqliteTimestampOracleOptions } from './sqlite-oracle.js';
import type { TimestampOracle, WriteTimestamp } from './timestamp-oracle.js';

/**
 * Options of {@link openTimestampOracle}: the timeline, the clock, and backend-specific settings.
 *
 * Example:
 * ```ts
 * await openTimestampOracle('postgres://u@db/txnwal', { timeline: 'orders', poolMax: 5 });
 * ```
 */
export interface OpenTimestampOracleOptions extends DurableOracleOptions {
  /** SQLite only: how long a statement waits for another process's write lock. */
  busyTimeoutMs?: SqliteTimestampOracleOptions['busyTimeoutMs'];
  /** SQLite only: mode of the database file if the open creates it (default 0o600). */
  fileMode?: SqliteTimestampOracleOptions['fileMode'];
  /** Postgres only: most connections the pool opens. */
  poolMax?: PostgresTimestampOracleOptions['poolMax'];
  /** Postgres only: how long to wait for a connection. */
  connectTimeoutMs?: PostgresTimestampOracleOptions['connectTimeoutMs'];
}

/** The file name of the oracle inside a `file:` location directory. */
export const ORACLE_FILE_NAME = 'oracle.sqlite';

const ACCEPTED_FORMS = 'mem://, mem://<name>, file:<dir>, file:///<absolute dir>, or postgres://… (also postgresql://)';

/**
 * Opens the oracle for the location `url`; see the module comment for the accepted forms.
 *
 * Use the same URL as the location, so storage and timestamps live together.
 *
 * Example:
 * ```ts
 * const oracle = await openTimestampOracle('file:./data');   // ./data/oracle.sqlite
 * const gc = await GroupCommitter.open(txns, oracle);
 * ```
 */
export async function openTimestampOracle(
  url: string,
  options: OpenTimestampOracleOptions = {},
): Promise<TimestampOracle> {
  if (typeof url !== 'string') {
    throw new InvalidOracleConfig(
      `openTimestampOracle: the location must be a URL string (${ACCEPTED_FORMS}), got ${describeValue(url)}`,
    );
  }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOracleConfig(`openTimestampOracle: options must be an object (or omitted), got ${describeValue(options)}`);
  }
  for (const [key, min] of [['busyTimeoutMs', 0], ['poolMax', 1], ['connectTimeoutMs', 0]] as const) {
    const v: unknown = options[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= min)) {
      throw new InvalidOracleConfig(`openTimestampOracle: option ${key} must be a safe integer >= ${min}, got ${describeValue(v)}`);
    }
  }
  if (url.startsWith('mem://')) return openMemClock(url.slice('mem://'.length), options);
  if (url.startsWith('file:')) {
    const dir = oracleDir(url);
    // Like openLocation: the directory is created on first use, owner-only.
    await makeDirectory(dir, DEFAULT_DIR_MODE);
    return SqliteTimestampOracle.open(path.join(dir, ORACLE_FILE_NAME), options);
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (err) {
      throw new InvalidOracleConfig(
        `openTimestampOracle: ${JSON.stringify(redactUrl(url))} is not a valid Postgres URL (${(err as Error).message}); ` +
          'expected postgres://user:password@host:port/database',
      );
    }
    // The location's blob store is none of the oracle's business.
    parsed.searchParams.delete('blob');
    return PostgresTimestampOracle.open(parsed.toString(), options);
  }
  throw new InvalidOracleConfig(
    `openTimestampOracle: unsupported location URL ${JSON.stringify(redactUrl(url))}; expected ${ACCEPTED_FORMS}`,
  );
}

/** The directory of a `file:` URL, by the same rules as `openLocation`. */
function oracleDir(url: string): string {
  return fileUrlDir(url, (problem) => new InvalidOracleConfig(`openTimestampOracle: ${problem}`));
}

const REGISTRY_KEY = Symbol.for('txnwal.coord.memClocks');

/** Clocks of `mem://<name>` locations, keyed by name then timeline; on globalThis like the location registry. */
function clockRegistry(): Map<string, Map<string, LogicalClock>> {
  const holder = globalThis as { [REGISTRY_KEY]?: Map<string, Map<string, LogicalClock>> };
  return (holder[REGISTRY_KEY] ??= new Map());
}

async function openMemClock(name: string, options: OpenTimestampOracleOptions): Promise<TimestampOracle> {
  const { timeline, now, initialTs } = resolveDurableOptions(options);
  if (name === '') return new LogicalClock({ now, initialTs });
  const registry = clockRegistry();
  let byTimeline = registry.get(name);
  if (byTimeline === undefined) registry.set(name, (byTimeline = new Map()));
  let clock = byTimeline.get(timeline);
  if (clock === undefined) {
    clock = new LogicalClock({ now, initialTs });
    byTimeline.set(timeline, clock);
  } else {
    await clock.applyWrite(initialTs);
  }
  return new SharedClockHandle(clock);
}

/**
 * One opener's view of a shared in-process clock: the clock itself is never closed
 * (other handles and later opens still use it), only this handle is.
 */
export class SharedClockHandle implements TimestampOracle {
  private closed = false;

  constructor(private readonly clock: LogicalClock) {}

  /** {@link LogicalClock.getTimestamp} on the shared clock. */
  getTimestamp<R>(fn: (ts: Timestamp) => R | Promise<R>): Promise<R> {
    return this.guard('getTimestamp', () => this.clock.getTimestamp(fn));
  }

  writeTs(): Promise<WriteTimestamp> {
    return this.guard('writeTs', () => this.clock.writeTs());
  }

  peekWriteTs(): Promise<Timestamp> {
    return this.guard('peekWriteTs', () => this.clock.peekWriteTs());
  }

  readTs(): Promise<Timestamp> {
    return this.guard('readTs', () => this.clock.readTs());
  }

  applyWrite(ts: Timestamp): Promise<void> {
    return this.guard('applyWrite', () => this.clock.applyWrite(ts));
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private async guard<R>(op: string, body: () => Promise<R>): Promise<R> {
    if (this.closed) throw new TimestampOracleClosed('LogicalClock', op);
    return body();
  }
}
