/**
 * `txnwal/backend`: the second entry point, for authors of storage backends and
 * tooling. Users of the library need only the package root (`src/index.ts`).
 *
 * What is here:
 * - the Blob and Consensus contracts and the backends that implement them (mem, file
 *   blob, S3 blob, SQLite and Postgres consensus), with the argument checks every Consensus
 *   implementation runs first (`checkCompareAndSetArgs`, `checkScanArgs`,
 *   `checkSeqNo`, `checkTruncateTarget`) so that all backends refuse the same misuse
 *   with the same LocationUsageError;
 * - the wake-up channel contract (`StateChanges`: hints that a key has a new state,
 *   never needed for correctness) and its backends (`LocalStateChanges`,
 *   `SocketStateChanges` for `file:`, `PostgresStateChanges`); a custom Location may
 *   leave `stateChanges` out, and its readers then only poll;
 * - the storage error classes and `mayHaveHappened(err)`, which a backend uses to say
 *   whether a failed call may have taken effect;
 * - byte helpers (`bytesKey`, `plainBytes`, `bufferView`, `copyBytes`) and `redactUrl`,
 *   which a backend uses before it puts a URL into a message;
 * - the fault injector's parts (`FaultInjector`, `FaultInjectingBlob`,
 *   `FaultInjectingConsensus`, `seededRandom`) beside the root's `withFaultInjection`;
 * - the durable timestamp oracles and the row-store contract they share;
 * - the fine-grained InvalidUsage subclasses (each is an InvalidUsage, which the root
 *   exports);
 * - metrics tooling: `metricsHandler` / `serveMetrics` (HTTP exposition of a
 *   Database, Metrics or Registry; a Database has the same as methods) and each
 *   layer's part of a `Metrics` object (`StorageMetrics`, `PersistMetrics`,
 *   `TxnMetrics`, `GroupCommitMetrics`, `ReaderMetrics`), for reading cells in tests
 *   and dashboards.
 *
 * A new Consensus backend passes the same conformance scenarios as the built-in ones
 * (test/location/consensus-conformance.ts in the repository states them: linearizable
 * compare-and-set per key, `scan` ascending from a seqno, idempotent `truncate` that
 * never deletes the head).
 *
 * Example:
 * ```ts
 * import { MemConsensus, checkCompareAndSetArgs, type Consensus } from 'txnwal/backend';
 * ```
 *
 * @module txnwal/backend
 */

// ---- storage contracts and backends ----
export {
  SCAN_ALL,
  checkCompareAndSetArgs,
  checkScanArgs,
  checkSeqNo,
  checkTruncateTarget,
  ExternalError,
  DeterminateError,
  IndeterminateError,
  LocationUsageError,
  mayHaveHappened,
  describeError,
  bytesKey,
  plainBytes,
  bufferView,
  copyBytes,
  MemBlob,
  MemConsensus,
  FileBlob,
  S3Blob,
  parseS3Url,
  DEFAULT_DIR_MODE,
  DEFAULT_FILE_MODE,
  SqliteConsensus,
  PostgresConsensus,
  redactUrl,
  openLocation,
  fileUrlDir,
  withFaultInjection,
  FaultInjector,
  FaultInjectingBlob,
  FaultInjectingConsensus,
  FAULT_KINDS,
  READ_METHODS,
  seededRandom,
  LocalStateChanges,
  SocketStateChanges,
  PostgresStateChanges,
} from './location/index.js';
export type {
  Blob,
  CaSResult,
  Consensus,
  Location,
  LocationOptions,
  SeqNo,
  VersionedData,
  MemBlobOptions,
  FileBlobOptions,
  S3BlobOptions,
  SqliteConsensusOptions,
  PostgresConsensusOptions,
  FaultCall,
  FaultCounts,
  FaultInjectingLocation,
  FaultInjectionOptions,
  FaultKind,
  FaultRates,
  StoreMethod,
  BlobMethod,
  ConsensusMethod,
  StateChanges,
  StateChangeCallback,
} from './location/index.js';

// ---- the fine-grained misuse errors of persist ----
export {
  InvalidTimestamp,
  InvalidBounds,
  InvalidEmptyTimeInterval,
  UpdateNotBeyondLower,
  UpdateBeyondUpper,
  InvalidBatchBounds,
  BatchNotFromThisShard,
  InvalidRewrite,
  IncompatibleVersion,
} from './persist/index.js';

// ---- the fine-grained errors of the front door (each is a class the root exports: InvalidUsage, CodecMismatch, ReadBelowSince) ----
export { DatabaseClosed, InvalidCollectionName, CollectionCodecMismatch, CollectionReadBelowSince } from './db/index.js';

// ---- read-write transactions below the front door: over any TxnsHandle ----
export {
  Arrangement,
  ReadOutsideArrangement,
  KeyLocks,
  LockWaitEnded,
  ReadWriteTransaction,
  TransactionClosed,
  TxnsTransactionHost,
  transact,
  isConflict,
} from './db/index.js';
export type {
  ArrangementOptions,
  ArrangedRow,
  LockHolder,
  TransactionCollection,
  TransactionCollectionRef,
  TransactionHost,
  CommitRows,
  TxnsTransactionHostOptions,
  HostedCollectionOptions,
} from './db/index.js';

// ---- metrics: HTTP exposition and each layer's part of a Metrics object ----
export { metricsHandler, serveMetrics, ReaderMetrics } from './db/index.js';
export type { MetricsServer, MetricsSource, ServeMetricsOptions } from './db/index.js';
export { PersistMetrics, StorageMetrics, STORAGE_CALLS } from './persist/index.js';
export type { StorageCall } from './persist/index.js';
export { TxnMetrics, TxnOpMetrics } from './txn/index.js';
export { GroupCommitMetrics } from './coord/index.js';

// ---- durable timestamp oracles ----
export {
  DurableTimestampOracle,
  SqliteTimestampOracle,
  PostgresTimestampOracle,
  DEFAULT_TIMELINE,
  MAX_STORED_TIMESTAMP,
} from './coord/index.js';
export type { DurableOracleOptions, OracleStatementCounts, TimelineRowStore } from './coord/index.js';
