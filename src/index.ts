/**
 * txnwal: atomic transactions across many durable, timestamped shards.
 *
 * This barrel is the public surface for users: an explicit list of what the README
 * uses, not every helper of every layer. What storage-backend authors and tooling
 * need (the Blob and Consensus backends, their argument checks, the durable oracles'
 * row stores, byte helpers, the fault injector's parts) is in `txnwal/backend`
 * (`src/backend.ts`). Layers (each imports only from those below): location (Blob,
 * Consensus) → persist (shards, handles) → txn (txn-wal) → coord (oracles, group
 * commit) → sources (shard Observables) → operators (dataSubscribe and frontier-aware
 * helpers) → sinks (txnSink).
 *
 * Budget: at most 60 runtime values (test/index.test.ts counts them); types are free.
 * Errors: every class a user may want to tell apart is here; the fine-grained
 * InvalidUsage subclasses that only name which rule a call broke (UpdateBeyondUpper,
 * InvalidRewrite, …) are in `txnwal/backend` — catch them as `InvalidUsage`.
 * Handles users receive but never construct (WriteHandle, ReadHandle, Txn, …) are
 * exported as types only.
 *
 * Example:
 * ```ts
 * import { openDatabase, Codecs } from 'txnwal';                  // the front door
 * import { PersistClient, TxnsHandle, newShardId, dataSubscribe$ } from 'txnwal';  // the layers below
 * ```
 *
 * @module txnwal
 */

// ---- location: where shards live ----
// From the modules themselves, not the layer's index: that one also re-exports the
// Postgres and S3 backends, which openLocation loads only when a URL needs them.
export { openLocation } from './location/location.js';
export { withFaultInjection } from './location/fault-injection.js';
export { DeterminateError, IndeterminateError, LocationUsageError } from './location/errors.js';
export type { Blob } from './location/blob.js';
export type { Consensus } from './location/consensus.js';
export type { Location, LocationOptions } from './location/location.js';
export type { FaultInjectingLocation, FaultInjectionOptions, FaultKind, StoreMethod } from './location/fault-injection.js';

// ---- persist: shards, handles, codecs, and their errors ----
export {
  PersistClient,
  Metrics,
  Codecs,
  newShardId,
  isShardId,
  Opaque,
  InvalidUsage,
  InvalidArgument,
  BatchConsumed,
  CodecMismatch,
  ReadBelowSince,
  HandleExpired,
  LeaseExpired,
  InvariantViolation,
  PersistStorageError,
  StoredFormatError,
  ClientClosed,
} from './persist/index.js';
export type {
  Batch,
  CadsOutcome,
  Codec,
  CompareAndAppendBatchOptions,
  Listen,
  ListenEvent,
  OpenCriticalSinceOptions,
  OpenReaderOptions,
  OpenWriterOptions,
  PersistClientOptions,
  PersistConfig,
  ReadHandle,
  ReadOptions,
  RetryParams,
  ShardCodecs,
  ShardId,
  SinceHandle,
  Subscribe,
  TransmittableBatch,
  TypedBatchBuilder,
  Update,
  UpperOutcome,
  WriteHandle,
} from './persist/index.js';

// ---- txn: txn-wal ----
export {
  TxnsHandle,
  TxnsRead,
  TxnsCache,
  Tidy,
  Fenced,
  NotRegistered,
  NotRegisteredWithHandle,
  RegisteredWithAnotherTxnsShard,
} from './txn/index.js';
export type {
  CommitOutcome,
  DataListenNext,
  DataRemapEntry,
  DataRemapSubscription,
  DataSnapshot,
  ForgetAllOutcome,
  RegisterOutcome,
  Retraction,
  Txn,
  TxnApply,
  TxnMetrics,
  TxnOpName,
  TxnsCacheOptions,
  TxnsCodec,
  TxnsHandleOptions,
} from './txn/index.js';

// ---- coord: timestamp oracles and group commit ----
// (From the modules, not coord/index.js, which re-exports the Postgres oracle: see location above.)
export { LogicalClock } from './coord/logical-clock.js';
export { openTimestampOracle, type OpenTimestampOracleOptions } from './coord/open-oracle.js';
export { GroupCommitter, type GroupCommitOptions, type GroupCommitStats, type SystemWriteOutcome } from './coord/group-commit.js';
export {
  UnknownCollection,
  WriteInReadOnlyMode,
  CommitterClosed,
  OutsideLockedCollections,
  GroupCommitFailed,
  CommittedButUnconfirmed,
} from './coord/group-commit-errors.js';
export { TimestampOracleClosed, InvalidOracleConfig } from './coord/oracle-errors.js';
export type { ReadCollection, ReadThenWriteFn, ReadThenWriteResult } from './coord/read-then-write.js';
export type { TimestampOracle, WriteTimestamp } from './coord/timestamp-oracle.js';
export type { WriteRow, WritesByCollection } from './coord/collection-writes.js';

// ---- RxJS: sources, operators, sinks ----
export { shardListen$, shardSubscribe$ } from './sources/index.js';
export type { ShardEvent, ShardSourceOptions } from './sources/index.js';
export {
  dataSubscribe,
  dataSubscribe$,
  consolidate,
  materialize,
  collectUntil,
  IncompleteCollection,
  mergeFrontiers,
  mergeCollections,
  forCollection,
  toAsyncIterable,
} from './operators/index.js';
export type { CollectionEvent, DataSubscribeOptions, MaterializedView } from './operators/index.js';
export { txnSink } from './sinks/index.js';
export type { SinkTxn, SinkWrite, TxnAck, TxnSinkOptions } from './sinks/index.js';

// ---- db: the front door ----
export { openDatabase, CollectionNotFound, ValidationFailed, LockConflict, TooManyConflicts } from './db/index.js';
export type {
  IsolationLevel,
  ReadWriteTransaction,
  TransactionOptions,
  TransactOptions,
  Collection,
  CollectionInfo,
  CollectionRef,
  CollectionRow,
  CollectionWrites,
  Database,
  DatabaseReadOptions,
  DatabaseSnapshot,
  OpenDatabaseOptions,
} from './db/index.js';
