/**
 * Tuning knobs of the persist layer. The defaults are the reference system's
 * (spec §5, "Persist defaults that matter here"); every field can be overridden
 * per client with `PersistClient.open(url, { config: { … } })`.
 */
import { pino, type Logger } from 'pino';
import { hostname } from 'node:os';

export interface RetryParams {
  initialMs: number;
  multiplier: number;
  clampMs: number;
}

export interface PersistConfig {
  /** Write a full copy of state to Blob every this many versions. */
  rollupThreshold: number;
  /** Run GC once this many versions accumulated since the last one. */
  gcMinVersions: number;
  readerLeaseDurationMs: number;
  writerLeaseDurationMs: number;
  /** A listen pushes its since forward at most this often. */
  readerSinceDowngradeIntervalMs: number;
  criticalDowngradeIntervalMs: number;
  /** Parts are cut at about this many encoded bytes. */
  blobTargetSizeBytes: number;
  /** A batch this small (encoded) is kept in shard state instead of Blob… */
  inlineWritesSingleMaxBytes: number;
  /** …as long as all inline parts of the shard stay under this. */
  inlineWritesTotalMaxBytes: number;
  /** How listeners and waiting snapshots poll Consensus for other processes' writes. */
  listenPoll: RetryParams;
  /** Retries of a failing Blob or Consensus call before giving up with a PersistStorageError. */
  storageRetry: RetryParams & { attempts: number };
  /** Merge spine batches in the background after writes. */
  compaction: boolean;
  /** Wait for compaction, rollups and GC inside the write that triggered them (tests, benchmarks). */
  awaitMaintenance: boolean;
  hostname: string;
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
    awaitMaintenance: false,
    hostname: hostname(),
    logger: pino({ level: 'silent' }),
  };
}

export function resolveConfig(overrides: Partial<PersistConfig> | undefined): PersistConfig {
  return { ...defaultConfig(), ...(overrides ?? {}) };
}
