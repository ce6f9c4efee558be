/**
 * Persist metrics: state changes and background maintenance of every shard a
 * PersistClient runs (its Machines count into them).
 *
 * Families (no shard labels: every shard of the registry adds up):
 * - `txnwal_persist_state_compare_and_sets_total{command,outcome}`: state writes of
 *   a machine command (`compare_and_append`, `register_leased_reader`,
 *   `compare_and_downgrade_since`, …; `maintenance` for maintenance commands that wrote alone),
 *   by outcome `committed`, `mismatch` (another writer got there first: re-read and
 *   retried) or `unknown` (the reply was lost). Maintenance commands that rode along
 *   with a write count under that write's command.
 * - `txnwal_persist_compactions_total{outcome}`: merges of spine batches, `applied`
 *   or `superseded` (the inputs were merged elsewhere first);
 *   `txnwal_persist_compaction_{input,output}_{parts,bytes}_total` for applied ones,
 *   `txnwal_persist_compaction_duration_seconds` (read, merge, write, record), and
 *   `txnwal_persist_compaction_worker_merges_total` (merges run in the merge worker).
 * - `txnwal_persist_gc_runs_total`, `txnwal_persist_gc_deleted_blobs_total` (parts
 *   and rollups), `txnwal_persist_gc_duration_seconds`.
 * - `txnwal_persist_rollups_written_total`.
 *
 * Example:
 * ```ts
 * const cas = PersistMetrics.of(metrics).stateCas('compare_and_append');   // once per command
 * cas.committed.inc();
 * ```
 */
import { counterFamily, DURATION_BUCKETS, histogramFamily, type CounterCell, type CounterFamily, type HistogramCell } from './metric-families.js';
import type { Metrics } from './metrics.js';

/** The outcomes of one command's state writes. */
export interface StateCasCells {
  /** State writes that landed: `outcome="committed"`. */
  committed: CounterCell;
  /** Another writer got there first (re-read and retried): `outcome="mismatch"`. */
  mismatch: CounterCell;
  /** The reply was lost (the write may have landed): `outcome="unknown"`. */
  unknown: CounterCell;
}

/**
 * The persist part of a {@link Metrics} object (state writes, compaction, GC, rollups).
 *
 * ```ts
 * PersistMetrics.of(client.metrics).compactionsApplied.value;   // merges applied so far
 * ```
 */
export class PersistMetrics {
  private readonly stateCasFamily: CounterFamily<'command' | 'outcome'>;
  private readonly byCommand = new Map<string, StateCasCells>();
  /**
   * Merges of spine batches whose result was recorded:
   * `txnwal_persist_compactions_total{outcome="applied"}`.
   */
  readonly compactionsApplied: CounterCell;
  /**
   * Merges thrown away because their inputs were merged elsewhere first: `…{outcome="superseded"}`.
   */
  readonly compactionsSuperseded: CounterCell;
  /** Batch parts read by applied merges: `txnwal_persist_compaction_input_parts_total` (parts). */
  readonly compactionInputParts: CounterCell;
  /** Encoded bytes of those parts: `txnwal_persist_compaction_input_bytes_total` (bytes). */
  readonly compactionInputBytes: CounterCell;
  /**
   * Batch parts of the results of applied merges: `txnwal_persist_compaction_output_parts_total`
   * (parts).
   */
  readonly compactionOutputParts: CounterCell;
  /** Encoded bytes of those results: `txnwal_persist_compaction_output_bytes_total` (bytes). */
  readonly compactionOutputBytes: CounterCell;
  /**
   * Duration of one merge (read, merge, write, record):
   * `txnwal_persist_compaction_duration_seconds` (histogram, seconds).
   */
  readonly compactionSeconds: HistogramCell;
  /**
   * Merges whose CPU work (decode, consolidate, encode) ran in the process's merge worker
   * thread, applied or not: `txnwal_persist_compaction_worker_merges_total`.
   */
  readonly compactionWorkerMerges: CounterCell;
  /** Garbage collection passes over a shard that completed: `txnwal_persist_gc_runs_total`. */
  readonly gcRuns: CounterCell;
  /**
   * Blobs (batch parts and rollups) deleted by garbage collection:
   * `txnwal_persist_gc_deleted_blobs_total`.
   */
  readonly gcDeletedBlobs: CounterCell;
  /**
   * Duration of one garbage collection pass: `txnwal_persist_gc_duration_seconds` (histogram,
   * seconds).
   */
  readonly gcSeconds: HistogramCell;
  /** Full copies of shard state written to Blob: `txnwal_persist_rollups_written_total`. */
  readonly rollupsWritten: CounterCell;

  /** The persist part of `metrics`, made on first use. */
  static of(metrics: Metrics): PersistMetrics {
    return metrics.part('persist', (m) => new PersistMetrics(m));
  }

  private constructor(m: Metrics) {
    this.stateCasFamily = counterFamily(
      m,
      'txnwal_persist_state_compare_and_sets_total',
      'Shard state writes, by machine command and outcome: committed, mismatch (retried on newer state) or unknown (reply lost)',
      ['command', 'outcome'],
    );
    const compactions = counterFamily(m, 'txnwal_persist_compactions_total', 'Merges of spine batches, by outcome: applied or superseded (merged elsewhere first)', ['outcome']);
    this.compactionsApplied = compactions.cell({ outcome: 'applied' });
    this.compactionsSuperseded = compactions.cell({ outcome: 'superseded' });
    const one = (name: string, help: string) => counterFamily(m, name, help, []).cell({});
    this.compactionInputParts = one('txnwal_persist_compaction_input_parts_total', 'Batch parts read by applied merges');
    this.compactionInputBytes = one('txnwal_persist_compaction_input_bytes_total', 'Encoded bytes of the batch parts read by applied merges');
    this.compactionOutputParts = one('txnwal_persist_compaction_output_parts_total', 'Batch parts of the results of applied merges');
    this.compactionOutputBytes = one('txnwal_persist_compaction_output_bytes_total', 'Encoded bytes of the results of applied merges');
    this.compactionSeconds = histogramFamily(m, 'txnwal_persist_compaction_duration_seconds', 'Duration of one merge: read the inputs, merge, write and record the result', [], DURATION_BUCKETS).cell({});
    this.compactionWorkerMerges = one('txnwal_persist_compaction_worker_merges_total', 'Merges whose CPU work ran in the merge worker thread, off the main thread');
    this.gcRuns = one('txnwal_persist_gc_runs_total', 'Garbage collection passes over a shard that completed');
    this.gcDeletedBlobs = one('txnwal_persist_gc_deleted_blobs_total', 'Blobs (batch parts and rollups) deleted by garbage collection');
    this.gcSeconds = histogramFamily(m, 'txnwal_persist_gc_duration_seconds', 'Duration of one garbage collection pass', [], DURATION_BUCKETS).cell({});
    this.rollupsWritten = one('txnwal_persist_rollups_written_total', 'Full copies of shard state (rollups) written to Blob');
  }

  /** The state-write cells of `command` (a fixed name per call site), made on first use. */
  stateCas(command: string): StateCasCells {
    let cells = this.byCommand.get(command);
    if (!cells) {
      const f = this.stateCasFamily;
      cells = {
        committed: f.cell({ command, outcome: 'committed' }),
        mismatch: f.cell({ command, outcome: 'mismatch' }),
        unknown: f.cell({ command, outcome: 'unknown' }),
      };
      this.byCommand.set(command, cells);
    }
    return cells;
  }
}
