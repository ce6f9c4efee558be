/**
 * The front door: `openDatabase(url)` → a {@link Database} of named collections in a
 * durable catalog, with atomic `write`s across them, `subscribe$` and `snapshot`.
 * Built on every layer below (persist, txn, coord, sources, operators).
 */
export {
  openDatabase,
  Database,
  type OpenDatabaseOptions,
  type CollectionRow,
  type CollectionWrites,
  type CollectionRef,
  type DatabaseReadOptions,
  type DatabaseSnapshot,
  type CollectionInfo,
} from './database.js';
export { Collection } from './collection.js';
export { metricsHandler, serveMetrics, type MetricsServer, type MetricsSource, type ServeMetricsOptions } from './metrics-http.js';
export { ReaderMetrics } from './reader-lag.js';
export {
  CollectionNotFound,
  DatabaseClosed,
  InvalidCollectionName,
  CollectionCodecMismatch,
  CollectionReadBelowSince,
} from './errors.js';
export { Arrangement, ReadOutsideArrangement, defaultKeyOrder, type ArrangementOptions, type ArrangedRow } from './arrangement.js';
export { KeyLocks, LockConflict, LockWaitEnded, type LockHolder } from './key-locks.js';
export {
  ReadWriteTransaction,
  ISOLATION_LEVELS,
  type IsolationLevel,
  type TransactionOptions,
  type TransactionCollection,
  type TransactionCollectionRef,
  type TransactionHost,
  type CommitRows,
} from './read-write-transaction.js';
export { ValidationFailed, TransactionClosed, TooManyConflicts } from './transaction-errors.js';
export { transact, isConflict, type TransactOptions } from './transact.js';
export { TxnsTransactionHost, type TxnsTransactionHostOptions, type HostedCollectionOptions } from './txns-transaction-host.js';
