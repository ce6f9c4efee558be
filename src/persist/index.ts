/**
 * The persist layer: durable, timestamped shards over a Blob and a Consensus.
 *
 * An explicit list: the client, handles, codecs, ids, times and errors that the
 * layers above and the public entry points use.
 */
export { Batch, BatchBuilder, decodeTransmittableBatch, type TransmittableBatch } from './batch.js';
export {
  PersistClient,
  type OpenCriticalSinceOptions,
  type OpenReaderOptions,
  type OpenWriterOptions,
  type PersistClientOptions,
} from './client.js';
export { Codecs, codecSchema, type Codec, type ShardCodecs } from './codec.js';
export { type PersistConfig, type RetryParams, defaultConfig } from './config.js';
export {
  BatchConsumed,
  BatchNotFromThisShard,
  ClientClosed,
  CodecMismatch,
  HandleExpired,
  IncompatibleVersion,
  InvalidArgument,
  InvalidBatchBounds,
  InvalidBounds,
  InvalidEmptyTimeInterval,
  InvalidRewrite,
  InvalidTimestamp,
  InvalidUsage,
  InvariantViolation,
  LeaseExpired,
  PersistStorageError,
  ReadBelowSince,
  StoredFormatError,
  UpdateBeyondUpper,
  UpdateNotBeyondLower,
} from './errors.js';
export { type Listen, type ListenEvent, type Subscribe } from './listen.js';
export { Metrics } from './metrics.js';
export { PersistMetrics } from './persist-metrics.js';
export { StorageMetrics, STORAGE_CALLS, type StorageCall } from './storage-metrics.js';
export { Opaque } from './opaque.js';
export { ReadHandle, type ReadOptions, type SnapshotParts } from './read-handle.js';
export {
  CONTROLLER_CRITICAL_SINCE,
  assertShardId,
  isShardId,
  newShardId,
  type CriticalReaderId,
  type LeasedReaderId,
  type ShardId,
  type WriterId,
} from './shard-id.js';
export { SinceHandle, type CadsOutcome } from './since-handle.js';
export { CLOSED, assertDiff, assertFrontier, assertTimestamp, isClosed, stepForward, type Diff, type Frontier, type Timestamp } from './time.js';
export { updatesBelow, type Update } from './update.js';
export { WriteHandle, TypedBatchBuilder, type UpperOutcome, type CompareAndAppendBatchOptions } from './write-handle.js';
