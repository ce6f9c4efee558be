/**
 * Tuning knobs of the persist layer. The defaults are the reference system's
 * (spec §5, "Persist defaults that matter here"); every field can be overridden
 * per client with `PersistClient.open(url, { config: { … } })`.
 */
import { pino, type Logger } from 'pino';
import { hostname } from 'node:os';
import { checkBoolean, checkNumber, invalidArgument, optionsObject } from './argument-checks.js';
import { InvalidArgument } from './errors.js';

/**
 * An exponential backoff: wait `initialMs`, then multiply by `multiplier` up to `clampMs`.
 *
 * Example:
 * ```ts
 * await PersistClient.open(url, { config: { listenPoll: { initialMs: 5, multiplier: 2, clampMs: 500 } } });
 * ```
 */
export interface RetryParams {
  /** The first wait, in ms. */
  initialMs: number;
  /** How much each wait grows over the one before. */
  multiplier: number;
  /** The longest wait, in ms. */
  clampMs: number;
}

/**
 * Tuning knobs of the persist layer, with the reference system's defaults; override any of them per
 * client.
 *
 * Example:
 * ```ts
 * const client = await PersistClient.open('file:./data', {
 *   config: { readerLeaseDurationMs: 60_000, compaction: false, logger: pino({ level: 'debug' }) },
 * });
 * ```
 */
export interface PersistConfig {
  /** Write a full copy of state to Blob every this many versions. */
  rollupThreshold: number;
  /** Run GC once this many versions accumulated since the last one. */
  gcMinVersions: number;
  /**
   * How long a leased reader may miss heartbeats before another process may expire it (default 15
   * min).
   */
  readerLeaseDurationMs: number;
  /** How long a writer may stay idle before another process may expire it (default 1 h). */
  writerLeaseDurationMs: number;
  /** A listen pushes its since forward at most this often. */
  readerSinceDowngradeIntervalMs: number;
  /** `maybeCompareAndDowngradeSince` moves a critical since at most this often (default 30 s). */
  criticalDowngradeIntervalMs: number;
  /** Parts are cut at about this many encoded bytes. */
  blobTargetSizeBytes: number;
  /** A batch this small (encoded) is kept in shard state instead of Blob… */
  inlineWritesSingleMaxBytes: number;
  /** …as long as all inline parts of the shard stay under this. */
  inlineWritesTotalMaxBytes: number;
  /**
   * How listeners and waiting snapshots poll Consensus for other processes' writes: the
   * fallback behind the location's wake-up channel. While the channel is up a waiter
   * polls every `clampMs` (only a lost hint needs it); while it is down, or for a
   * location without one, from `initialMs` backing off by `multiplier` to `clampMs`.
   */
  listenPoll: RetryParams;
  /** Retries of a failing Blob or Consensus call before giving up with a PersistStorageError. */
  storageRetry: RetryParams & {
    /** Attempts in all, the first included. */
    attempts: number;
  };
  /** Merge spine batches in the background after writes. */
  compaction: boolean;
  /**
   * Run the CPU work of bigger merges (compaction.ts `WORKER_MIN_INPUT_BYTES` or
   * `WORKER_MIN_INPUT_UPDATES`, up to `WORKER_MAX_INPUT_BYTES` of input) in a worker
   * thread the process's clients share, off the thread that writes and reads (default
   * true). False keeps every merge on the main thread.
   */
  compactionWorker: boolean;
  /** Wait for compaction, rollups and GC inside the write that triggered them (tests, benchmarks). */
  awaitMaintenance: boolean;
  /**
   * Recorded in every shard state version this client writes, to tell which machine wrote it
   * (default: `os.hostname()`).
   */
  hostname: string;
  /** The pino logger for warnings (failed heartbeats and maintenance, leaked blobs and batches). */
  logger: Logger;
}

export function defaultConfig(): PersistConfig {
  return {
    rollupThreshold: 128,
    gcMinVersions: 32,
    readerLeaseDurationMs: 15 * 60 * 1000,
    writerLeaseDurationMs: 60 * 60 * 1000,
    readerSinceDowngradeIntervalMs: 1000,
    criticalDowngradeIntervalMs: 30 * 1000,
    blobTargetSizeBytes: 128 * 1024 * 1024,
    inlineWritesSingleMaxBytes: 4096,
    inlineWritesTotalMaxBytes: 1024 * 1024,
    listenPoll: { initialMs: 16, multiplier: 2, clampMs: 1000 },
    storageRetry: { attempts: 6, initialMs: 10, multiplier: 2, clampMs: 1000 },
    compaction: true,
    compactionWorker: true,
    awaitMaintenance: false,
    hostname: hostname(),
    logger: pino({ level: 'silent' }),
  };
}

/**
 * The defaults with `overrides` on top, every field checked: a `NaN`, a string or a
 * negative number where a count or duration belongs would otherwise surface much
 * later (`storageRetry.attempts: NaN` retried forever). `listenPoll` and
 * `storageRetry` may be given in part; the missing fields keep their defaults.
 * Unknown fields are refused, so a misspelt option does not silently do nothing.
 */
export function resolveConfig(overrides: Partial<PersistConfig> | undefined): PersistConfig {
  // An explicit `undefined` means "the default", as an omitted field does.
  const given = Object.fromEntries(
    Object.entries(optionsObject(overrides, 'PersistClient option config')).filter(([, v]) => v !== undefined),
  ) as Partial<PersistConfig>;
  for (const key of Object.keys(given)) {
    if (!(key in CHECKS)) {
      throw new InvalidArgument(
        `PersistClient option config.${key} is not a persist config field; the fields are ${Object.keys(CHECKS).join(', ')}`,
      );
    }
  }
  const defaults = defaultConfig();
  const cfg: PersistConfig = {
    ...defaults,
    ...given,
    listenPoll: { ...defaults.listenPoll, ...nested(given.listenPoll, 'listenPoll') },
    storageRetry: { ...defaults.storageRetry, ...nested(given.storageRetry, 'storageRetry') },
  };
  for (const [key, check] of Object.entries(CHECKS)) check(cfg[key as keyof PersistConfig], `config.${key}`);
  return cfg;
}

function nested<T extends object>(v: T | undefined, field: string): Partial<T> {
  return optionsObject(v, `PersistClient option config.${field}`);
}

const count = (min: number) => (v: unknown, what: string) => void checkNumber(v, what, { min });
const durationMs = (v: unknown, what: string) => void checkNumber(v, what, { min: 0, fractional: true });

function checkRetry(v: unknown, what: string, withAttempts: boolean): void {
  const r = v as RetryParams & { attempts?: number };
  if (withAttempts) checkNumber(r.attempts, `${what}.attempts`, { min: 1 });
  checkNumber(r.initialMs, `${what}.initialMs`, { min: 0, fractional: true });
  checkNumber(r.multiplier, `${what}.multiplier`, { min: 1, fractional: true });
  checkNumber(r.clampMs, `${what}.clampMs`, { min: 0, fractional: true });
  for (const key of Object.keys(r)) {
    if (!['initialMs', 'multiplier', 'clampMs', ...(withAttempts ? ['attempts'] : [])].includes(key)) {
      throw new InvalidArgument(`${what}.${key} is not a field of ${what}`);
    }
  }
}

const LOGGER_METHODS = ['debug', 'info', 'warn', 'error'] as const;

/** One check per config field (also the list of the fields). */
const CHECKS: Record<keyof PersistConfig, (v: unknown, what: string) => void> = {
  rollupThreshold: count(1),
  gcMinVersions: count(1),
  readerLeaseDurationMs: (v, what) => void checkNumber(v, what, { min: 0, minExclusive: true, fractional: true }),
  writerLeaseDurationMs: (v, what) => void checkNumber(v, what, { min: 0, minExclusive: true, fractional: true }),
  readerSinceDowngradeIntervalMs: durationMs,
  criticalDowngradeIntervalMs: durationMs,
  blobTargetSizeBytes: count(1),
  inlineWritesSingleMaxBytes: count(0),
  inlineWritesTotalMaxBytes: count(0),
  listenPoll: (v, what) => checkRetry(v, what, false),
  storageRetry: (v, what) => checkRetry(v, what, true),
  compaction: (v, what) => void checkBoolean(v, what),
  compactionWorker: (v, what) => void checkBoolean(v, what),
  awaitMaintenance: (v, what) => void checkBoolean(v, what),
  hostname: (v, what) => {
    if (typeof v !== 'string') throw invalidArgument(what, 'a string', v);
  },
  logger: (v, what) => {
    const l = v as Record<string, unknown> | null;
    if (typeof l !== 'object' || l === null || LOGGER_METHODS.some((m) => typeof l[m] !== 'function')) {
      throw invalidArgument(what, `a pino Logger (an object with ${LOGGER_METHODS.join(', ')} methods)`, v);
    }
  },
};
