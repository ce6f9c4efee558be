/**
 * Metrics of txn-wal (spec §4), named by the Prometheus conventions: the txn part
 * of a {@link Metrics} object.
 *
 * Per operation (label `op`): `txnwal_txn_ops_started_total`,
 * `txnwal_txn_ops_retried_total` (compare-and-append upper mismatches that made it
 * try again), `txnwal_txn_ops_succeeded_total`, `txnwal_txn_ops_failed_total`
 * (returned a taken-timestamp result: the spec's "errored") and the histogram
 * `txnwal_txn_op_duration_seconds`. `register`, `commit`, `forget` and `forget_all`
 * use all of them; `apply_le`, `apply_eager_le` and `compact_to` cannot fail that
 * way and use started, succeeded and the duration. An operation that throws counts
 * as started and in the duration only, so started − succeeded − failed is what threw
 * (or is running).
 *
 * Batches: `txnwal_txn_batches_committed_total` and
 * `txnwal_txn_committed_batch_bytes_total` (encoded batch pointers committed through
 * txns). Gauges refreshed at the start of every applyLe (spec §4):
 * `txnwal_txn_data_shards` (known to the cache, forgotten ones included),
 * `txnwal_txn_unapplied_batches`, `txnwal_txn_unapplied_batch_bytes` and
 * `txnwal_txn_unapplied_min_ts` (the least time with something committed but not
 * tidied; the progress when nothing is).
 *
 * Registry: a TxnsHandle counts into `TxnsHandle.open(…, { metrics })`, by default
 * its client's Metrics. Handles on one registry share the families (the gauges show
 * the handle that applied last).
 *
 * Example:
 * ```ts
 * import { Registry } from 'prom-client';
 * const metrics = Metrics.forRegistry(new Registry());
 * const txns = await TxnsHandle.open(client, { txnsId, codecs, metrics });
 * TxnMetrics.of(metrics).commit;               // the commit op's cells
 * console.log(await metrics.text());           // txnwal_txn_ops_started_total{op="commit"} 1 …
 * ```
 */
import { counterFamily, DURATION_BUCKETS, gaugeFamily, histogramFamily, secondsSince, type CounterCell, type GaugeCell, type HistogramCell } from '../persist/metric-families.js';
import type { Metrics } from '../persist/metrics.js';

/**
 * A txn-wal operation, as named in the `op` label of the `txnwal_txn_ops_*` families.
 *
 * ```ts
 * const op: TxnOpName = 'apply_le';   // txnwal_txn_ops_started_total{op="apply_le"}
 * ```
 */
export type TxnOpName = 'register' | 'commit' | 'forget' | 'forget_all' | 'apply_le' | 'apply_eager_le' | 'compact_to';

const OPS: readonly TxnOpName[] = ['register', 'commit', 'forget', 'forget_all', 'apply_le', 'apply_eager_le', 'compact_to'];

/**
 * Records one kind of operation: its own cells, so an update is one addition.
 *
 * ```ts
 * await TxnMetrics.of(metrics).commit.run(() => commitOnce(), (r) => !r.ok);   // started, then succeeded or failed
 * ```
 */
export class TxnOpMetrics {
  /** @internal Made by TxnMetrics. */
  constructor(
    /** The operation, the `op` label of every cell below. */
    readonly op: TxnOpName,
    /** Operations started: `txnwal_txn_ops_started_total{op}`. */
    readonly started: CounterCell,
    /**
     * Compare-and-append upper mismatches that made it try again:
     * `txnwal_txn_ops_retried_total{op}`.
     */
    readonly retried: CounterCell,
    /** Operations that succeeded: `txnwal_txn_ops_succeeded_total{op}`. */
    readonly succeeded: CounterCell,
    /** Operations that returned a taken-timestamp result: `txnwal_txn_ops_failed_total{op}`. */
    readonly failed: CounterCell,
    /** Duration, retries included: `txnwal_txn_op_duration_seconds{op}` (histogram, seconds). */
    readonly seconds: HistogramCell,
  ) {}

  /**
   * Runs `fn`, counting it started, then succeeded or failed (when `isErr` says its
   * result is a taken-timestamp error), and observing its duration. A thrown
   * exception counts as neither.
   */
  async run<R>(fn: () => Promise<R>, isErr: (r: R) => boolean = () => false): Promise<R> {
    this.started.inc();
    const start = performance.now();
    try {
      const r = await fn();
      (isErr(r) ? this.failed : this.succeeded).inc();
      return r;
    } finally {
      this.seconds.observe(secondsSince(start));
    }
  }

  /** Counts a compare-and-append upper mismatch that made the operation retry. */
  retry(): void {
    this.retried.inc();
  }
}

/**
 * The txn part of a {@link Metrics} object: one {@link TxnOpMetrics} per op, the batch
 * counters and the unapplied gauges.
 *
 * ```ts
 * TxnMetrics.of(metrics).commit.succeeded.value;   // commits that succeeded so far
 * ```
 */
export class TxnMetrics {
  /**
   * Data shards known to the txns cache, forgotten ones included, as of the last applyLe:
   * `txnwal_txn_data_shards` (shards).
   */
  readonly dataShardCount: GaugeCell;
  /** Batches committed through txns: `txnwal_txn_batches_committed_total` (batches). */
  readonly batchCommitCount: CounterCell;
  /**
   * Encoded bytes of the batch pointers committed through txns:
   * `txnwal_txn_committed_batch_bytes_total` (bytes).
   */
  readonly batchCommitBytes: CounterCell;
  /**
   * Committed batch pointers not yet tidied, as of the last applyLe: `txnwal_txn_unapplied_batches`
   * (batches).
   */
  readonly batchUnappliedCount: GaugeCell;
  /**
   * Bytes of those batch pointers, as of the last applyLe: `txnwal_txn_unapplied_batch_bytes`
   * (bytes).
   */
  readonly batchUnappliedBytes: GaugeCell;
  /**
   * The least time with something committed but not tidied (the txns progress when nothing is), as
   * of the last applyLe: `txnwal_txn_unapplied_min_ts` (a timestamp).
   */
  readonly batchUnappliedMinTs: GaugeCell;

  /** The `register` op: `txnwal_txn_ops_*_total{op="register"}` and its duration. */
  readonly register: TxnOpMetrics;
  /** The `commit` op (Txn.commitAt): `{op="commit"}`. */
  readonly commit: TxnOpMetrics;
  /** The `forget` op: `{op="forget"}`. */
  readonly forget: TxnOpMetrics;
  /** The `forgetAll` op: `{op="forget_all"}`. */
  readonly forgetAll: TxnOpMetrics;
  /** The `applyLe` op: `{op="apply_le"}` (started, succeeded, duration). */
  readonly applyLe: TxnOpMetrics;
  /** The `applyEagerLe` op: `{op="apply_eager_le"}` (started, succeeded, duration). */
  readonly applyEagerLe: TxnOpMetrics;
  /** The `compactTo` op: `{op="compact_to"}` (started, succeeded, duration). */
  readonly compactTo: TxnOpMetrics;

  /** The txn part of `metrics`, made on first use (one per registry, shared by every handle). */
  static of(metrics: Metrics): TxnMetrics {
    return metrics.part('txn', (m) => new TxnMetrics(m));
  }

  private constructor(
    /** The Metrics (and so the registry) these families live in. */
    readonly metrics: Metrics,
  ) {
    const m = metrics;
    const started = counterFamily(m, 'txnwal_txn_ops_started_total', 'txn-wal operations started, by op', ['op']);
    const retried = counterFamily(m, 'txnwal_txn_ops_retried_total', 'txn-wal compare-and-append upper mismatches that made an operation try again, by op', ['op']);
    const succeeded = counterFamily(m, 'txnwal_txn_ops_succeeded_total', 'txn-wal operations that succeeded, by op', ['op']);
    const failed = counterFamily(m, 'txnwal_txn_ops_failed_total', 'txn-wal operations that returned a taken-timestamp result, by op', ['op']);
    const seconds = histogramFamily(m, 'txnwal_txn_op_duration_seconds', 'Duration of txn-wal operations (retries included), by op', ['op'], DURATION_BUCKETS);
    const ops = {} as Record<TxnOpName, TxnOpMetrics>;
    for (const op of OPS) {
      const l = { op };
      ops[op] = new TxnOpMetrics(op, started.cell(l), retried.cell(l), succeeded.cell(l), failed.cell(l), seconds.cell(l));
    }
    this.register = ops.register;
    this.commit = ops.commit;
    this.forget = ops.forget;
    this.forgetAll = ops.forget_all;
    this.applyLe = ops.apply_le;
    this.applyEagerLe = ops.apply_eager_le;
    this.compactTo = ops.compact_to;
    const gauge = (name: string, help: string) => gaugeFamily(m, name, help, []).cell({});
    this.dataShardCount = gauge('txnwal_txn_data_shards', 'Data shards known to the txns cache (forgotten ones included), as of the last applyLe');
    this.batchCommitCount = counterFamily(m, 'txnwal_txn_batches_committed_total', 'Batches committed through txns', []).cell({});
    this.batchCommitBytes = counterFamily(m, 'txnwal_txn_committed_batch_bytes_total', 'Encoded bytes of the batch pointers committed through txns', []).cell({});
    this.batchUnappliedCount = gauge('txnwal_txn_unapplied_batches', 'Committed batch pointers not yet tidied, as of the last applyLe');
    this.batchUnappliedBytes = gauge('txnwal_txn_unapplied_batch_bytes', 'Bytes of the committed batch pointers not yet tidied, as of the last applyLe');
    this.batchUnappliedMinTs = gauge(
      'txnwal_txn_unapplied_min_ts',
      'The least time at which something is committed but not yet tidied (the txns progress when nothing is), as of the last applyLe',
    );
  }
}
