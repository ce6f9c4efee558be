/**
 * The coordination layer: timestamp oracles (who picks commit timestamps, and the
 * latest time safe to read at) and, built on them, group commit.
 *
 * An explicit list: what the layers above and the two public entry points use.
 * Internal pieces (write locks, the commit notifier, lock assignment, the
 * commit-at-next-timestamp loop) are imported from their files by coord and sinks.
 */
export { wallClockMillis, type NowFn, type TimestampOracle, type WriteTimestamp } from './timestamp-oracle.js';
export { LogicalClock, type LogicalClockOptions } from './logical-clock.js';
export { TimestampOracleClosed, InvalidOracleConfig, MAX_TIMELINE_LENGTH } from './oracle-errors.js';
export { BatchedReadTs } from './batched-read-ts.js';
export {
  DurableTimestampOracle,
  DEFAULT_TIMELINE,
  MAX_STORED_TIMESTAMP,
  type DurableOracleOptions,
  type OracleStatementCounts,
  type TimelineRowStore,
} from './durable-oracle.js';
export { SqliteTimestampOracle, type SqliteTimestampOracleOptions } from './sqlite-oracle.js';
export { PostgresTimestampOracle, type PostgresTimestampOracleOptions } from './postgres-oracle.js';
export { ORACLE_FILE_NAME, SharedClockHandle, openTimestampOracle, type OpenTimestampOracleOptions } from './open-oracle.js';
export { type WriteRow, type WritesByCollection } from './collection-writes.js';
export {
  UnknownCollection,
  WriteInReadOnlyMode,
  CommitterClosed,
  OutsideLockedCollections,
  GroupCommitFailed,
  CommittedButUnconfirmed,
} from './group-commit-errors.js';
export { CommitNotRecorded } from './timestamp-source.js';
export { GroupCommitMetrics } from './group-commit-metrics.js';
export {
  GroupCommitter,
  type GroupCommitOptions,
  type GroupCommitStats,
  type SystemWriteOutcome,
} from './group-commit.js';
export { type ReadCollection, type ReadThenWriteFn, type ReadThenWriteResult } from './read-then-write.js';
