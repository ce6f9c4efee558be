/**
 * StoreExporter: a txnwal store's state as Prometheus gauges, for `txnwal
 * serve-metrics` (a store exporter, as postgres_exporter is for a Postgres server).
 *
 * The serving process's own metrics (`Metrics.forRegistry`) would describe only that
 * process; what an operator needs is the store: every family here is read from the
 * store's state by a {@link StoreSampler} (read-only, as `txnwal inspect` reads).
 * The families live in a Registry of the exporter's own, so serving it with
 * `serveMetrics(exporter.registry, …)` exposes exactly these.
 *
 * Refreshing: a scrape asks every family for its values; each one waits for
 * {@link StoreExporter.fresh}, which reads the store again only when the last read
 * *started* at least `intervalMs` ago, and otherwise answers from the cached sample.
 * Reads never overlap: a scrape that arrives during a read waits for that read, so
 * many scrapers (or one impatient one) cost at most one read per interval. A read
 * that fails counts in `txnwal_store_refresh_errors_total`, sets `txnwal_store_up`
 * to 0 and drops the store's series until a read succeeds again (a gap is honest;
 * stale numbers would not be); it is retried at the next scrape after the interval.
 *
 * Why prom-client gauges overriding `get()` and not the cell families of
 * persist/metric-families.ts: those make hot-path updates cheap; here nothing is
 * updated between scrapes, every value is computed at scrape time from one sample,
 * and series come and go with the catalog.
 *
 * Families (label `collection` is a catalog name: bounded by the catalog, no shard ids):
 * - store: `txnwal_store_up`, `txnwal_store_collections`,
 *   `txnwal_store_read_timestamp_seconds`, `txnwal_store_refresh_seconds`
 *   (histogram), `txnwal_store_refresh_errors_total`;
 * - per collection: `txnwal_collection_{physical_upper,logical_upper,since}`,
 *   `txnwal_collection_{batches,parts,bytes}`, `txnwal_collection_readers{kind}`
 *   (`leased`, `critical`), `txnwal_collection_writers`,
 *   `txnwal_collection_unapplied_batches{state}`;
 * - txns shard: `txnwal_txns_{upper,since,parts,bytes}`, `txnwal_txns_readers{kind}`,
 *   `txnwal_txns_unapplied{state}` (transactions), `txnwal_txns_unapplied_batches{state}`,
 *   `txnwal_txns_unapplied_bytes{state}`, `txnwal_txns_oldest_unapplied_ts`,
 *   `txnwal_txns_upper_age_seconds`; `state` is `not_applied` or `applied` (applied,
 *   the pointer not yet tidied), as store-sample.ts defines them.
 *
 * Example:
 * ```ts
 * const exporter = await StoreExporter.open(store, { intervalMs: 5000 });   // reads once: fails here on a bad store
 * const server = await serveMetrics(exporter.registry, { port: 9464 });
 * // curl http://127.0.0.1:9464/metrics → txnwal_collection_logical_upper{collection="accounts"} 1796180763498 …
 * await server.close();
 * await exporter.close();
 * ```
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ShardId } from '../persist/shard-id.js';
import type { StoreView } from './store.js';
import { StoreSampler, UNAPPLIED_STATES, type StoreSample } from './store-sample.js';

/** Bucket bounds (seconds) of `txnwal_store_refresh_seconds`: 1 ms to 60 s (a big store over a network is slow to read). */
export const REFRESH_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type Labels = Record<string, string>;
/** One series of a sampled gauge. */
type Point = [labels: Labels, value: number];

/** A gauge whose series are computed at scrape time from the current sample. */
class SampledGauge extends Gauge<string> {
  constructor(
    config: { name: string; help: string; labelNames: readonly string[]; registers: Registry[] },
    private readonly points: () => Promise<Point[]>,
  ) {
    super(config);
  }
  override async get() {
    // Asked first, before any await: every family of one scrape then asks while the same read is in progress.
    const points = this.points();
    const base = await super.get();
    base.values = (await points).map(([labels, value]) => ({ labels, value }));
    return base;
  }
}

/** Options of {@link StoreExporter.open}. */
export interface StoreExporterOptions {
  /** The least time between two reads of the store, in ms. */
  intervalMs: number;
  /** Called when a read fails (after the first) and when one succeeds after failures: the command logs these. */
  onHealthChange?: (error: unknown) => void;
}

/** The store-level families of one store, refreshed at most every `intervalMs` (see the module doc). */
export class StoreExporter {
  /** The registry holding exactly the exporter's families. */
  readonly registry = new Registry();
  private current: StoreSample | undefined;
  private readStartedAt: number | undefined;
  private reading: Promise<void> | undefined;
  private readonly refreshSeconds: Histogram<string>;
  private readonly refreshErrors: Counter<string>;

  private constructor(
    private readonly sampler: StoreSampler,
    private readonly opts: StoreExporterOptions,
  ) {
    const fresh = (): Promise<void> => this.fresh();
    this.refreshSeconds = new Histogram({
      name: 'txnwal_store_refresh_seconds',
      help: 'Duration of one read of the store state the other families are computed from (failed reads included)',
      buckets: [...REFRESH_BUCKETS],
      registers: [this.registry],
      collect: fresh,
    });
    this.refreshErrors = new Counter({
      name: 'txnwal_store_refresh_errors_total',
      help: 'Reads of the store state that failed (the store series are absent until a read succeeds)',
      registers: [this.registry],
      collect: fresh,
    });
    this.define();
  }

  /** Reads `store` once (throwing what that read throws) and returns the exporter. */
  static async open(store: StoreView, opts: StoreExporterOptions): Promise<StoreExporter> {
    const txnsId: ShardId = store.requireTxnsId();
    const exporter = new StoreExporter(new StoreSampler(store, txnsId), opts);
    exporter.readStartedAt = performance.now();
    await exporter.readOnce();
    return exporter;
  }

  /** The current sample: undefined while the last read failed. */
  get sample(): StoreSample | undefined {
    return this.current;
  }

  /** Resolves when the sample is at most `intervalMs` old (reading the store if needed; never two reads at once). */
  fresh(): Promise<void> {
    if (this.reading) return this.reading;
    if (this.readStartedAt !== undefined && performance.now() - this.readStartedAt < this.opts.intervalMs) return Promise.resolve();
    this.readStartedAt = performance.now();
    this.reading = this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** Waits for a read in progress, so the store can be closed after. */
  async close(): Promise<void> {
    await this.reading;
  }

  /** One read after startup; never rejects (a failure is counted and reported instead). */
  private async read(): Promise<void> {
    const wasUp = this.current !== undefined;
    try {
      await this.readOnce();
      if (!wasUp) this.opts.onHealthChange?.(undefined);
    } catch (err) {
      this.current = undefined;
      this.refreshErrors.inc();
      if (wasUp) this.opts.onHealthChange?.(err);
    }
  }

  /** Reads the store into the current sample, timed (the startup read too). */
  private async readOnce(): Promise<void> {
    const start = performance.now();
    try {
      this.current = await this.sampler.sample();
    } finally {
      this.refreshSeconds.observe((performance.now() - start) / 1000);
    }
  }

  /** Registers a gauge whose series `points(sample)` computes; none while there is no sample. */
  private gauge(name: string, help: string, labelNames: readonly string[], points: (s: StoreSample) => Point[]): void {
    new SampledGauge({ name, help, labelNames, registers: [this.registry] }, async () => {
      await this.fresh();
      return this.current ? points(this.current) : [];
    });
  }

  private define(): void {
    const one = (v: number | undefined | null): Point[] => (v === undefined || v === null ? [] : [[{}, v]]);
    const perCollection =
      (value: (c: StoreSample['collections'][number]) => number | null) =>
      (s: StoreSample): Point[] =>
        s.collections.flatMap((c): Point[] => {
          const v = value(c);
          return v === null ? [] : [[{ collection: c.name }, v]];
        });

    new SampledGauge(
      { name: 'txnwal_store_up', help: 'Whether the last read of the store succeeded (1) or failed (0)', labelNames: [], registers: [this.registry] },
      async () => {
        await this.fresh();
        return [[{}, this.current ? 1 : 0]];
      },
    );
    this.gauge('txnwal_store_collections', 'Collections in the database catalog', [], (s) => one(s.collections.length));
    this.gauge('txnwal_store_read_timestamp_seconds', 'Wall clock (Unix time, seconds) when the values served were read from the store', [], (s) =>
      one(s.readAtMs / 1000),
    );

    const C = ['collection'];
    this.gauge('txnwal_collection_physical_upper', "The data shard's upper: times below it are applied to the shard (absent while the shard does not exist)", C, perCollection((c) => c.physicalUpper));
    this.gauge('txnwal_collection_logical_upper', 'The upper reads see: the txns upper for a registered collection, else the physical upper', C, perCollection((c) => c.logicalUpper));
    this.gauge('txnwal_collection_since', "The data shard's since: reads as of earlier times are no longer exact", C, perCollection((c) => c.since));
    this.gauge('txnwal_collection_batches', "Batches in the data shard's spine", C, perCollection((c) => c.batches));
    this.gauge('txnwal_collection_parts', "Batch parts in the data shard's spine", C, perCollection((c) => c.parts));
    this.gauge('txnwal_collection_bytes', "Encoded bytes of the data shard's batch parts, inline ones included", C, perCollection((c) => c.bytes));
    this.gauge('txnwal_collection_readers', 'Readers registered on the data shard, by kind: leased or critical (since handles); expired leases included', ['collection', 'kind'], (s) =>
      s.collections.flatMap((c): Point[] => [
        [{ collection: c.name, kind: 'leased' }, c.leasedReaders],
        [{ collection: c.name, kind: 'critical' }, c.criticalReaders],
      ]),
    );
    this.gauge('txnwal_collection_writers', 'Writers registered on the data shard (expired leases included)', C, perCollection((c) => c.writers));
    this.gauge(
      'txnwal_collection_unapplied_batches',
      "Committed batches of the collection the txns shard still points at, by state: not_applied (the data shard's upper is not past them) or applied (awaiting tidying)",
      ['collection', 'state'],
      (s) => s.collections.flatMap((c) => UNAPPLIED_STATES.map((state): Point => [{ collection: c.name, state }, c.unapplied[state].batches])),
    );

    this.gauge('txnwal_txns_upper', 'The txns shard upper: every registered collection is complete below it', [], (s) => one(s.txns?.upper));
    this.gauge('txnwal_txns_since', 'The txns shard since', [], (s) => one(s.txns?.since));
    this.gauge('txnwal_txns_parts', "Batch parts in the txns shard's spine", [], (s) => one(s.txns?.parts));
    this.gauge('txnwal_txns_bytes', "Encoded bytes of the txns shard's batch parts", [], (s) => one(s.txns?.bytes));
    this.gauge('txnwal_txns_readers', 'Readers registered on the txns shard, by kind: leased or critical (since handles)', ['kind'], (s) =>
      s.txns
        ? [
            [{ kind: 'leased' }, s.txns.leasedReaders],
            [{ kind: 'critical' }, s.txns.criticalReaders],
          ]
        : [],
    );
    const byState = (value: (c: StoreSample['unapplied']['applied']) => number) => (s: StoreSample) =>
      UNAPPLIED_STATES.map((state): Point => [{ state }, value(s.unapplied[state])]);
    this.gauge(
      'txnwal_txns_unapplied',
      'Transactions (commit times) the txns shard still points at, by state: not_applied (a batch not yet applied) or applied (awaiting tidying)',
      ['state'],
      byState((c) => c.transactions),
    );
    this.gauge('txnwal_txns_unapplied_batches', 'Committed batches the txns shard still points at, by state: not_applied or applied (awaiting tidying)', ['state'], byState((c) => c.batches));
    this.gauge('txnwal_txns_unapplied_bytes', 'Encoded bytes of the committed batches the txns shard still points at, by state', ['state'], byState((c) => c.bytes));
    this.gauge('txnwal_txns_oldest_unapplied_ts', 'The oldest commit time the txns shard still points at (the txns upper when none)', [], (s) => one(s.txns ? s.oldestUnappliedTs : undefined));
    this.gauge(
      'txnwal_txns_upper_age_seconds',
      'Wall clock minus the txns upper, in seconds, at the read: meaningful only when timestamps are wall-clock milliseconds (the default oracle); grows while nothing commits',
      [],
      (s) => one(s.txns ? (s.readAtMs - s.txns.upper) / 1000 : undefined),
    );
  }
}
