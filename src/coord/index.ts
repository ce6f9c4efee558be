/**
 * The coordination layer: timestamp oracles (who picks commit timestamps, and the
 * latest time safe to read at) and, built on them, group commit.
 */
export * from './timestamp-oracle.js';
export * from './logical-clock.js';
export { TimestampOracleClosed, InvalidOracleConfig, MAX_TIMELINE_LENGTH } from './oracle-errors.js';
export * from './batched-read-ts.js';
export {
  DurableTimestampOracle,
  DEFAULT_TIMELINE,
  MAX_STORED_TIMESTAMP,
  type DurableOracleOptions,
  type OracleStatementCounts,
  type TimelineRowStore,
} from './durable-oracle.js';
export * from './sqlite-oracle.js';
export * from './postgres-oracle.js';
export * from './open-oracle.js';
export { WriteLocks, WriteLockGuard } from './write-locks.js';
export { commitNotifier, CommitNotifier, CommitWaiter, CommitPermit } from './commit-notifier.js';
export { type WriteRow, type WritesByCollection } from './collection-writes.js';
export {
  UnknownCollection,
  WriteInReadOnlyMode,
  CommitterClosed,
  OutsideLockedCollections,
  GroupCommitFailed,
  CommittedButUnconfirmed,
} from './group-commit-errors.js';
export {
  GroupCommitter,
  type GroupCommitOptions,
  type GroupCommitStats,
  type ReadCollection,
  type ReadThenWriteFn,
  type ReadThenWriteResult,
  type SystemWriteOutcome,
} from './group-commit.js';
