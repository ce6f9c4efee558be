/**
 * Metrics of txn-wal (spec §4), as prom-client metrics named `txnwal_txn_*`.
 *
 * Per operation (label `op`): started, retried (compare-and-append mismatches),
 * succeeded, errored (returned a taken-timestamp result) and total seconds spent.
 * `register`, `commit`, `forget` and `forget_all` use all five; `apply_le`,
 * `apply_eager_le` and `compact_to` cannot fail that way and use started, succeeded
 * and seconds. Batch counters and the unapplied gauges follow the spec.
 *
 * Registry: pass one to `TxnsHandle.open(…, { metrics: TxnMetrics.forRegistry(r) })`;
 * the default is prom-client's global registry. One TxnMetrics exists per registry
 * (prom-client refuses a metric name registered twice), shared by every handle.
 *
 * Example:
 * ```ts
 * import { Registry } from 'prom-client';
 * const registry = new Registry();
 * const txns = await TxnsHandle.open(client, { txnsId, codecs, metrics: TxnMetrics.forRegistry(registry) });
 * console.log(await registry.metrics());   // txnwal_txn_op_started_count{op="commit"} 1 …
 * ```
 */
import { Counter, Gauge, register as globalRegistry, type Registry } from 'prom-client';

/**
 * The txn-wal operations counted by {@link TxnMetrics}, as the `op` label's values.
 *
 * Example:
 * ```ts
 * const op: TxnOpName = 'commit';
 * ```
 */
export type TxnOpName = 'register' | 'commit' | 'forget' | 'forget_all' | 'apply_le' | 'apply_eager_le' | 'compact_to';

/** Records one kind of operation. */
export class TxnOpMetrics {
  constructor(
    private readonly m: TxnMetrics,
    readonly op: TxnOpName,
  ) {}

  /**
   * Runs `fn`, counting it started, then succeeded or errored (when `isErr` says its
   * result is a taken-timestamp error), and adding its duration. A thrown exception
   * counts as neither.
   */
  async run<R>(fn: () => Promise<R>, isErr: (r: R) => boolean = () => false): Promise<R> {
    this.m.started.inc({ op: this.op });
    const start = process.hrtime.bigint();
    try {
      const r = await fn();
      if (isErr(r)) this.m.errored.inc({ op: this.op });
      else this.m.succeeded.inc({ op: this.op });
      return r;
    } finally {
      this.m.seconds.inc({ op: this.op }, Number(process.hrtime.bigint() - start) / 1e9);
    }
  }

  /** Counts a compare-and-append upper mismatch that made the operation retry. */
  retry(): void {
    this.m.retried.inc({ op: this.op });
  }
}

const byRegistry = new WeakMap<Registry, TxnMetrics>();

/**
 * The prom-client metrics of txn-wal (`txnwal_txn_*`), one set per registry, shared by every handle
 * on it.
 *
 * Example:
 * ```ts
 * import { Registry } from 'prom-client';
 * const registry = new Registry();
 * await TxnsHandle.open(client, { txnsId, codecs, metrics: TxnMetrics.forRegistry(registry) });
 * ```
 */
export class TxnMetrics {
  /** Operations started, by `op`. */
  readonly started: Counter<'op'>;
  /** Compare-and-append upper mismatches that made an operation retry, by `op`. */
  readonly retried: Counter<'op'>;
  /** Operations that succeeded, by `op`. */
  readonly succeeded: Counter<'op'>;
  /** Operations that returned a taken-timestamp result, by `op`. */
  readonly errored: Counter<'op'>;
  /** Total seconds spent in operations, by `op`. */
  readonly seconds: Counter<'op'>;
  /** Data shards known to the txns cache, as of the last applyLe. */
  readonly dataShardCount: Gauge;
  /** Batches committed. */
  readonly batchCommitCount: Counter;
  /** Bytes of the batches committed. */
  readonly batchCommitBytes: Counter;
  /** Committed batches not yet applied. */
  readonly batchUnappliedCount: Gauge;
  /** Bytes of the committed batches not yet applied. */
  readonly batchUnappliedBytes: Gauge;
  /** The time of the oldest unapplied batch. */
  readonly batchUnappliedMinTs: Gauge;

  /** The `register` operation's counters. */
  readonly register: TxnOpMetrics;
  /** The `commit` operation's counters. */
  readonly commit: TxnOpMetrics;
  /** The `forget` operation's counters. */
  readonly forget: TxnOpMetrics;
  /** The `forget_all` operation's counters. */
  readonly forgetAll: TxnOpMetrics;
  /** The `apply_le` operation's counters. */
  readonly applyLe: TxnOpMetrics;
  /** The `apply_eager_le` operation's counters. */
  readonly applyEagerLe: TxnOpMetrics;
  /** The `compact_to` operation's counters. */
  readonly compactTo: TxnOpMetrics;

  /** The metrics registered in `registry` (default: prom-client's global registry), created on first use. */
  static forRegistry(registry: Registry = globalRegistry): TxnMetrics {
    let m = byRegistry.get(registry);
    if (!m) {
      m = new TxnMetrics(registry);
      byRegistry.set(registry, m);
    }
    return m;
  }

  /** @param registry The registry the metrics are registered in. */
  private constructor(readonly registry: Registry) {
    const registers = [registry];
    const op = (name: string, help: string) => new Counter({ name, help, labelNames: ['op'] as const, registers });
    this.started = op('txnwal_txn_op_started_count', 'txn-wal operations started');
    this.retried = op('txnwal_txn_op_retry_count', 'txn-wal compare-and-append upper mismatches that caused a retry');
    this.succeeded = op('txnwal_txn_op_succeeded_count', 'txn-wal operations that succeeded');
    this.errored = op('txnwal_txn_op_errored_count', 'txn-wal operations that returned a taken-timestamp error');
    this.seconds = op('txnwal_txn_op_duration_seconds', 'total seconds spent in txn-wal operations');
    this.dataShardCount = new Gauge({
      name: 'txnwal_txn_data_shard_count',
      help: 'data shards known to the txns cache (forgotten ones included), as of the last applyLe',
      registers,
    });
    this.batchCommitCount = new Counter({ name: 'txnwal_txn_batch_commit_count', help: 'batches committed through txns', registers });
    this.batchCommitBytes = new Counter({
      name: 'txnwal_txn_batch_commit_bytes',
      help: 'encoded bytes of the batches committed through txns',
      registers,
    });
    this.batchUnappliedCount = new Gauge({
      name: 'txnwal_txn_batch_unapplied_count',
      help: 'committed batch pointers not yet tidied, as of the last applyLe',
      registers,
    });
    this.batchUnappliedBytes = new Gauge({
      name: 'txnwal_txn_batch_unapplied_bytes',
      help: 'bytes of the committed batch pointers not yet tidied, as of the last applyLe',
      registers,
    });
    this.batchUnappliedMinTs = new Gauge({
      name: 'txnwal_txn_batch_unapplied_min_ts',
      help: 'the least time at which something is committed but not yet tidied, as of the last applyLe',
      registers,
    });
    this.register = new TxnOpMetrics(this, 'register');
    this.commit = new TxnOpMetrics(this, 'commit');
    this.forget = new TxnOpMetrics(this, 'forget');
    this.forgetAll = new TxnOpMetrics(this, 'forget_all');
    this.applyLe = new TxnOpMetrics(this, 'apply_le');
    this.applyEagerLe = new TxnOpMetrics(this, 'apply_eager_le');
    this.compactTo = new TxnOpMetrics(this, 'compact_to');
  }
}
