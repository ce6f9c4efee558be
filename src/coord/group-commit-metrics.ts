/**
 * Group commit metrics: the GroupCommitter part of a {@link Metrics} object.
 *
 * Families (committers on one registry add up):
 * - `txnwal_group_commits_total{outcome}`: group commits that `committed` (landed and
 *   confirmed), landed but stayed `unconfirmed` (the oracle could not be told, or the
 *   apply failed: CommittedButUnconfirmed) or `failed` (did not land: GroupCommitFailed);
 * - `txnwal_group_commit_group_size` (histogram): writes committed together in one
 *   group (blind writes, read-then-write writes and system writes);
 * - `txnwal_group_commit_duration_seconds` (histogram): from draining the queue to
 *   acknowledging the group (locks, commit, timestamp retries, apply);
 * - `txnwal_group_commit_queue_depth` (gauge, read at scrape time): writes waiting
 *   for a group commit, deferred ones (waiting for a lock) included;
 * - `txnwal_group_commit_lock_waits_total{kind}` and
 *   `txnwal_group_commit_lock_wait_seconds{kind}` (histogram): waits for write locks,
 *   `kind` `deferred` (a blind write parked until a lock it missed changed hands; it
 *   may be deferred again, each time a wait) or `read_then_write` (a read-then-write
 *   operation that found a lock taken and waited in line);
 * - `txnwal_group_commit_timestamp_retries_total`: commits tried again at a fresh
 *   timestamp because another writer took theirs.
 *
 * Example:
 * ```ts
 * const gc = await GroupCommitter.open(txns, oracle, { metrics });   // default: the TxnsHandle's metrics
 * await Promise.all([gc.submitWrite(a), gc.submitWrite(b)]);         // group_size: one observation of 2
 * ```
 */
import { COUNT_BUCKETS, counterFamily, DURATION_BUCKETS, gaugeFamily, histogramFamily, type CounterCell, type HistogramCell } from '../persist/metric-families.js';
import type { Metrics } from '../persist/metrics.js';

/**
 * The group commit part of a {@link Metrics} object.
 *
 * ```ts
 * GroupCommitMetrics.of(metrics).committed.value;   // group commits that landed and were confirmed
 * ```
 */
export class GroupCommitMetrics {
  /**
   * Group commits that landed and were confirmed:
   * `txnwal_group_commits_total{outcome="committed"}`.
   */
  readonly committed: CounterCell;
  /**
   * Group commits that landed but stayed unconfirmed (CommittedButUnconfirmed):
   * `…{outcome="unconfirmed"}`.
   */
  readonly unconfirmed: CounterCell;
  /** Group commits that did not land (GroupCommitFailed): `…{outcome="failed"}`. */
  readonly failed: CounterCell;
  /**
   * Writes committed together in one group: `txnwal_group_commit_group_size` (histogram, writes).
   */
  readonly groupSize: HistogramCell;
  /**
   * From draining the queue to acknowledging the group: `txnwal_group_commit_duration_seconds`
   * (histogram, seconds).
   */
  readonly seconds: HistogramCell;
  /**
   * Blind writes parked until a write lock they missed changed hands:
   * `txnwal_group_commit_lock_waits_total{kind="deferred"}`.
   */
  readonly deferredWaits: CounterCell;
  /**
   * How long those waits took: `txnwal_group_commit_lock_wait_seconds{kind="deferred"}` (histogram,
   * seconds).
   */
  readonly deferredWaitSeconds: HistogramCell;
  /**
   * Read-then-write operations that found a lock taken and waited in line:
   * `…_lock_waits_total{kind="read_then_write"}`.
   */
  readonly readThenWriteWaits: CounterCell;
  /**
   * How long those waits took: `…_lock_wait_seconds{kind="read_then_write"}` (histogram, seconds).
   */
  readonly readThenWriteWaitSeconds: HistogramCell;
  /**
   * Commits tried again at a fresh timestamp because another writer took theirs:
   * `txnwal_group_commit_timestamp_retries_total`.
   */
  readonly timestampRetries: CounterCell;
  /** Adds a committer's queue to the depth gauge; returns the function that removes it. */
  readonly queueDepth: (read: () => number) => () => void;

  /** The group commit part of `metrics`, made on first use. */
  static of(metrics: Metrics): GroupCommitMetrics {
    return metrics.part('group-commit', (m) => new GroupCommitMetrics(m));
  }

  private constructor(m: Metrics) {
    const commits = counterFamily(
      m,
      'txnwal_group_commits_total',
      'Group commits, by outcome: committed, unconfirmed (landed; the oracle or the apply failed) or failed (did not land)',
      ['outcome'],
    );
    this.committed = commits.cell({ outcome: 'committed' });
    this.unconfirmed = commits.cell({ outcome: 'unconfirmed' });
    this.failed = commits.cell({ outcome: 'failed' });
    this.groupSize = histogramFamily(m, 'txnwal_group_commit_group_size', 'Writes committed together in one group commit', [], COUNT_BUCKETS).cell({});
    this.seconds = histogramFamily(
      m,
      'txnwal_group_commit_duration_seconds',
      'Duration of a group commit, from draining the queue to acknowledging its writes',
      [],
      DURATION_BUCKETS,
    ).cell({});
    const waits = counterFamily(m, 'txnwal_group_commit_lock_waits_total', 'Waits for collection write locks, by kind: deferred (blind write) or read_then_write', ['kind']);
    const waitSeconds = histogramFamily(
      m,
      'txnwal_group_commit_lock_wait_seconds',
      'Duration of waits for collection write locks, by kind: deferred (blind write) or read_then_write',
      ['kind'],
      DURATION_BUCKETS,
    );
    this.deferredWaits = waits.cell({ kind: 'deferred' });
    this.deferredWaitSeconds = waitSeconds.cell({ kind: 'deferred' });
    this.readThenWriteWaits = waits.cell({ kind: 'read_then_write' });
    this.readThenWriteWaitSeconds = waitSeconds.cell({ kind: 'read_then_write' });
    this.timestampRetries = counterFamily(
      m,
      'txnwal_group_commit_timestamp_retries_total',
      'Group commits tried again at a fresh timestamp because another writer took theirs',
      [],
    ).cell({});
    const depth = gaugeFamily(m, 'txnwal_group_commit_queue_depth', 'Writes waiting for a group commit (deferred ones included), summed over committers', [], 'sum');
    this.queueDepth = (read) => depth.source({}, read);
  }
}
