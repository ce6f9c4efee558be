/**
 * Storage metrics: every Blob and Consensus call a PersistClient makes, counted and
 * timed by wrapping the location's stores ({@link meteredStorage}).
 *
 * Families (all without shard labels):
 * - `txnwal_consensus_compare_and_sets_total{outcome}`: compare-and-sets by outcome,
 *   `committed`, `mismatch` (the expected seqno was not the head) or `error` (the
 *   call threw; it may or may not have landed);
 * - `txnwal_consensus_reads_total{call}`: `head`, `scan` and `list_keys` calls;
 * - `txnwal_consensus_truncates_total`;
 * - `txnwal_blob_gets_total`, `txnwal_blob_sets_total`, `txnwal_blob_deletes_total`;
 * - `txnwal_blob_read_bytes_total` (bytes returned by gets),
 *   `txnwal_blob_written_bytes_total` (bytes of sets that succeeded);
 * - `txnwal_storage_call_duration_seconds{call}` (histogram) and
 *   `txnwal_storage_call_errors_total{call}`, `call` one of {@link STORAGE_CALLS};
 * - `txnwal_storage_retries_total`: failed calls persist retried after a backoff
 *   (storage-retry.ts counts them).
 *
 * Every attempt counts, retries included: the counts are what the store saw.
 *
 * Example:
 * ```ts
 * const storage = meteredStorage(location, StorageMetrics.of(metrics));
 * await storage.consensus.compareAndSet('k', undefined, { seqno: 1, data });  // outcome="committed" +1
 * ```
 */
import type { Blob } from '../location/blob.js';
import type { CaSResult, Consensus, SeqNo, VersionedData } from '../location/consensus.js';
import { counterFamily, DURATION_BUCKETS, histogramFamily, secondsSince, type CounterCell, type HistogramCell } from './metric-families.js';
import type { Metrics } from './metrics.js';

/**
 * The `call` label values of `txnwal_storage_call_duration_seconds` and
 * `txnwal_storage_call_errors_total`: one per Blob and Consensus method.
 *
 * ```ts
 * const storage = StorageMetrics.of(metrics);
 * for (const call of STORAGE_CALLS) console.log(call, storage.calls[call].errors.value);
 * ```
 */
export const STORAGE_CALLS = [
  'consensus_head',
  'consensus_compare_and_set',
  'consensus_scan',
  'consensus_truncate',
  'consensus_list_keys',
  'blob_get',
  'blob_set',
  'blob_delete',
  'blob_list_keys',
  'blob_restore',
] as const;
/**
 * One Blob or Consensus method, as named in the `call` label.
 *
 * ```ts
 * const call: StorageCall = 'blob_get';
 * StorageMetrics.of(metrics).calls[call].seconds.count;   // blob gets timed so far
 * ```
 */
export type StorageCall = (typeof STORAGE_CALLS)[number];

/** One call's duration and errors. */
interface CallCells {
  /** The call's duration in seconds, failed calls included. */
  seconds: HistogramCell;
  /** Calls that threw. */
  errors: CounterCell;
}

/**
 * The storage part of a {@link Metrics} object: one cell per series above.
 *
 * ```ts
 * StorageMetrics.of(client.metrics).casCommitted.value;   // compare-and-sets committed so far
 * ```
 */
export class StorageMetrics {
  /**
   * Compare-and-sets that committed: `txnwal_consensus_compare_and_sets_total{outcome="committed"}`
   * (calls).
   */
  readonly casCommitted: CounterCell;
  /**
   * Compare-and-sets refused because the expected seqno was not the head: `…{outcome="mismatch"}`
   * (calls).
   */
  readonly casMismatch: CounterCell;
  /** Compare-and-sets that threw (they may have landed): `…{outcome="error"}` (calls). */
  readonly casError: CounterCell;
  /** Consensus `head` calls, successful or not: `txnwal_consensus_reads_total{call="head"}`. */
  readonly consensusHeads: CounterCell;
  /** Consensus `scan` calls, successful or not: `txnwal_consensus_reads_total{call="scan"}`. */
  readonly consensusScans: CounterCell;
  /**
   * Consensus `listKeys` calls, successful or not:
   * `txnwal_consensus_reads_total{call="list_keys"}`.
   */
  readonly consensusListKeys: CounterCell;
  /**
   * Consensus `truncate` calls (GC dropping old state versions):
   * `txnwal_consensus_truncates_total`.
   */
  readonly consensusTruncates: CounterCell;
  /** Blob `get` calls, successful or not: `txnwal_blob_gets_total`. */
  readonly blobGets: CounterCell;
  /** Blob `set` calls, successful or not: `txnwal_blob_sets_total`. */
  readonly blobSets: CounterCell;
  /** Blob `delete` calls, successful or not: `txnwal_blob_deletes_total`. */
  readonly blobDeletes: CounterCell;
  /** Bytes returned by Blob gets: `txnwal_blob_read_bytes_total` (bytes). */
  readonly blobReadBytes: CounterCell;
  /** Bytes stored by Blob sets that succeeded: `txnwal_blob_written_bytes_total` (bytes). */
  readonly blobWrittenBytes: CounterCell;
  /**
   * Failed Blob and Consensus calls that persist retried after a backoff:
   * `txnwal_storage_retries_total`.
   */
  readonly retries: CounterCell;
  /**
   * Per {@link StorageCall}: its duration, `txnwal_storage_call_duration_seconds{call}` (histogram,
   * seconds), and the calls that threw, `txnwal_storage_call_errors_total{call}`.
   */
  readonly calls: Readonly<Record<StorageCall, CallCells>>;

  /** The storage part of `metrics`, made on first use. */
  static of(metrics: Metrics): StorageMetrics {
    return metrics.part('storage', (m) => new StorageMetrics(m));
  }

  private constructor(m: Metrics) {
    const cas = counterFamily(m, 'txnwal_consensus_compare_and_sets_total', 'Consensus compare-and-set calls, by outcome: committed, mismatch (the expected seqno was not the head) or error (threw; may have landed)', ['outcome']);
    this.casCommitted = cas.cell({ outcome: 'committed' });
    this.casMismatch = cas.cell({ outcome: 'mismatch' });
    this.casError = cas.cell({ outcome: 'error' });
    const reads = counterFamily(m, 'txnwal_consensus_reads_total', 'Consensus read calls (head, scan, list_keys), successful or not', ['call']);
    this.consensusHeads = reads.cell({ call: 'head' });
    this.consensusScans = reads.cell({ call: 'scan' });
    this.consensusListKeys = reads.cell({ call: 'list_keys' });
    this.consensusTruncates = counterFamily(m, 'txnwal_consensus_truncates_total', 'Consensus truncate calls (GC dropping old state versions)', []).cell({});
    this.blobGets = counterFamily(m, 'txnwal_blob_gets_total', 'Blob get calls, successful or not', []).cell({});
    this.blobSets = counterFamily(m, 'txnwal_blob_sets_total', 'Blob set calls, successful or not', []).cell({});
    this.blobDeletes = counterFamily(m, 'txnwal_blob_deletes_total', 'Blob delete calls, successful or not', []).cell({});
    this.blobReadBytes = counterFamily(m, 'txnwal_blob_read_bytes_total', 'Bytes returned by Blob gets', []).cell({});
    this.blobWrittenBytes = counterFamily(m, 'txnwal_blob_written_bytes_total', 'Bytes stored by Blob sets that succeeded', []).cell({});
    this.retries = counterFamily(m, 'txnwal_storage_retries_total', 'Failed Blob and Consensus calls that persist retried after a backoff', []).cell({});
    const seconds = histogramFamily(m, 'txnwal_storage_call_duration_seconds', 'Duration of Blob and Consensus calls, by call', ['call'], DURATION_BUCKETS);
    const errors = counterFamily(m, 'txnwal_storage_call_errors_total', 'Blob and Consensus calls that threw, by call', ['call']);
    const calls = {} as Record<StorageCall, CallCells>;
    for (const call of STORAGE_CALLS) calls[call] = { seconds: seconds.cell({ call }), errors: errors.cell({ call }) };
    this.calls = calls;
  }
}

/** Runs one storage call, timing it and counting its error. */
async function timed<T>(cells: CallCells, call: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await call();
  } catch (err) {
    cells.errors.inc();
    throw err;
  } finally {
    cells.seconds.observe(secondsSince(start));
  }
}

class MeteredBlob implements Blob {
  constructor(
    private readonly inner: Blob,
    private readonly m: StorageMetrics,
  ) {}

  async get(key: string): Promise<Uint8Array | undefined> {
    this.m.blobGets.inc();
    const bytes = await timed(this.m.calls.blob_get, () => this.inner.get(key));
    if (bytes) this.m.blobReadBytes.inc(bytes.byteLength);
    return bytes;
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    this.m.blobSets.inc();
    await timed(this.m.calls.blob_set, () => this.inner.set(key, value));
    this.m.blobWrittenBytes.inc(value.byteLength);
  }

  delete(key: string): Promise<number | undefined> {
    this.m.blobDeletes.inc();
    return timed(this.m.calls.blob_delete, () => this.inner.delete(key));
  }

  listKeysAndMetadata(prefix: string, fn: (key: string, sizeBytes: number) => void): Promise<void> {
    return timed(this.m.calls.blob_list_keys, () => this.inner.listKeysAndMetadata(prefix, fn));
  }

  restore(key: string): Promise<void> {
    return timed(this.m.calls.blob_restore, () => this.inner.restore(key));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

class MeteredConsensus implements Consensus {
  constructor(
    private readonly inner: Consensus,
    private readonly m: StorageMetrics,
  ) {}

  head(key: string): Promise<VersionedData | undefined> {
    this.m.consensusHeads.inc();
    return timed(this.m.calls.consensus_head, () => this.inner.head(key));
  }

  async compareAndSet(key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult> {
    let res: CaSResult;
    try {
      res = await timed(this.m.calls.consensus_compare_and_set, () => this.inner.compareAndSet(key, expected, next));
    } catch (err) {
      this.m.casError.inc();
      throw err;
    }
    (res === 'committed' ? this.m.casCommitted : this.m.casMismatch).inc();
    return res;
  }

  scan(key: string, from: SeqNo, limit: number): Promise<VersionedData[]> {
    this.m.consensusScans.inc();
    return timed(this.m.calls.consensus_scan, () => this.inner.scan(key, from, limit));
  }

  truncate(key: string, seqno: SeqNo): Promise<number> {
    this.m.consensusTruncates.inc();
    return timed(this.m.calls.consensus_truncate, () => this.inner.truncate(key, seqno));
  }

  listKeys(): Promise<string[]> {
    this.m.consensusListKeys.inc();
    return timed(this.m.calls.consensus_list_keys, () => this.inner.listKeys());
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The location's Blob and Consensus, every call counted and timed in `m`. Closing them closes the inner stores. */
export function meteredStorage(location: { blob: Blob; consensus: Consensus }, m: StorageMetrics): { blob: Blob; consensus: Consensus } {
  return { blob: new MeteredBlob(location.blob, m), consensus: new MeteredConsensus(location.consensus, m) };
}
