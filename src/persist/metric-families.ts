/**
 * Metric families whose updates cost one addition: the hot-path half of txnwal's
 * metrics (metrics.ts is the per-registry half).
 *
 * prom-client's own `inc` / `observe` check the labels and build a label-hash string
 * on every call, even through a `labels(…)` child. Here each labelled series is a
 * *cell*, made once when the instrumented object is built (`family.cell({ op:
 * 'commit' })`), and an update is a plain field write on it: `cell.inc()`,
 * `cell.observe(seconds)` (a short search over the bucket bounds), `cell.set(v)`.
 * The families are still prom-client `Counter` / `Gauge` / `Histogram` objects in the
 * registry, so exposition, `getMetricsAsJSON`, `Registry.merge` and the content
 * types are prom-client's; only `get()` is overridden to read the cells at scrape time.
 *
 * Invariants:
 * - A family's series are exactly its cells (and, for sourced gauges, its label sets
 *   with at least one live source); nothing else writes to it. Calling prom-client's
 *   own `inc`/`set`/`observe` on one of these families has no visible effect.
 * - Counters never decrease: `inc` ignores non-positive and non-finite amounts, so a
 *   bad measurement can never throw on the hot path.
 * - Cells with the same labels are one cell: two objects that ask for `{ op: 'commit' }`
 *   on one family share it (two databases on one registry add up).
 * - `registry.resetMetrics()` does not zero the cells: the values are txnwal's
 *   cumulative counts and the next scrape shows them again.
 *
 * Example:
 * ```ts
 * const metrics = Metrics.forRegistry(registry);
 * const ops = counterFamily(metrics, 'txnwal_example_ops_total', 'example operations, by kind', ['kind']);
 * const reads = ops.cell({ kind: 'read' });       // once, at construction
 * reads.inc();                                      // per operation: one addition
 * const seconds = histogramFamily(metrics, 'txnwal_example_seconds', 'example durations', [], DURATION_BUCKETS).cell({});
 * seconds.observe(0.003);
 * ```
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { InvalidUsage } from './errors.js';
import type { Metrics } from './metrics.js';

/** Label values of a cell, one per label name. */
export type Labels<L extends string> = Readonly<Record<L, string>>;

/** Bucket bounds (seconds) for storage calls and operations: 100 µs to 10 s. */
export const DURATION_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Bucket bounds for counts of things (writes in a group, parts in a merge): powers of two to 4096. */
export const COUNT_BUCKETS: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/** The seconds since `start` (a `performance.now()` reading). */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}

/** One counter series: a cumulative count that only goes up. */
export class CounterCell {
  /** The cumulative count (read by the exposition; tests may read it too). */
  value = 0;
  /** Adds `by` (default 1); non-positive and non-finite amounts are ignored. */
  inc(by = 1): void {
    // `by > 0` is false for NaN too: a counter only ever goes up.
    if (by > 0 && by !== Infinity) this.value += by;
  }
}

/** One gauge series set directly: the last `set` wins. */
export class GaugeCell {
  /** The current value (read by the exposition). */
  value = 0;
  /** Sets the value. */
  set(v: number): void {
    this.value = v;
  }
}

/** One histogram series: observations counted per bucket, with their sum and count. */
export class HistogramCell {
  /** Observations per bucket (not cumulative; the exposition sums them). The last slot is +Inf. */
  readonly counts: Float64Array;
  /** The sum of the observations. */
  sum = 0;
  /** The number of observations. */
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  /** Records one observation (non-finite ones are ignored). */
  observe(v: number): void {
    if (!Number.isFinite(v)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

interface Series<L extends string, C> {
  labels: Labels<L>;
  cell: C;
}

/** The cells of one family, keyed by their label values. */
class Cells<L extends string, C> {
  readonly all = new Map<string, Series<L, C>>();
  constructor(
    private readonly labelNames: readonly L[],
    private readonly make: () => C,
  ) {}
  get(labels: Labels<L>): C {
    const key = this.labelNames.map((n) => labels[n]).join('\u0000');
    let s = this.all.get(key);
    if (!s) {
      // Copied: a caller's object changed later must not rename the series.
      const own = Object.fromEntries(this.labelNames.map((n) => [n, labels[n]])) as Labels<L>;
      s = { labels: own, cell: this.make() };
      this.all.set(key, s);
    }
    return s.cell;
  }
}

/**
 * Marks a family as txnwal's, by kind. A brand rather than `instanceof`: a process can
 * hold two copies of this module (two installed versions of the package, or one loaded
 * through two module URLs), and their families must still be recognised as txnwal's
 * in the one registry they share.
 */
const FAMILY_KIND = Symbol.for('txnwal.metric-family-kind');
type FamilyKind = 'counter' | 'gauge' | 'histogram';

class CellCounter<L extends string> extends Counter<L> {
  readonly [FAMILY_KIND]: FamilyKind = 'counter';
  constructor(
    readonly cells: Cells<L, CounterCell>,
    config: { name: string; help: string; labelNames: readonly L[]; registers: Registry[] },
  ) {
    super(config);
  }
  override async get() {
    const base = await super.get();
    base.values = [...this.cells.all.values()].map(({ labels, cell }) => ({ labels, value: cell.value }));
    return base;
  }
}

/** How a sourced gauge combines the sources of one series. */
export type GaugeAggregate = 'sum' | 'max';

class CellGauge<L extends string> extends Gauge<L> {
  readonly [FAMILY_KIND]: FamilyKind = 'gauge';
  /** Read at scrape time: label key → the live sources of that series. */
  readonly sources = new Map<string, { labels: Labels<L>; reads: Set<() => number> }>();
  constructor(
    readonly cells: Cells<L, GaugeCell>,
    private readonly aggregate: GaugeAggregate,
    config: { name: string; help: string; labelNames: readonly L[]; registers: Registry[] },
  ) {
    super(config);
  }
  override async get() {
    const base = await super.get();
    const values = [...this.cells.all.values()].map(({ labels, cell }) => ({ labels, value: cell.value }));
    for (const { labels, reads } of this.sources.values()) {
      let v = this.aggregate === 'sum' ? 0 : -Infinity;
      for (const read of reads) {
        const x = read();
        if (!Number.isFinite(x)) continue;
        v = this.aggregate === 'sum' ? v + x : Math.max(v, x);
      }
      values.push({ labels, value: v === -Infinity ? 0 : v });
    }
    base.values = values;
    return base;
  }
}

class CellHistogram<L extends string> extends Histogram<L> {
  readonly [FAMILY_KIND]: FamilyKind = 'histogram';
  constructor(
    readonly cells: Cells<L, HistogramCell>,
    private readonly bounds: readonly number[],
    config: { name: string; help: string; labelNames: readonly L[]; buckets: number[]; registers: Registry[] },
  ) {
    super(config);
  }
  override async get() {
    // Not super.get(): prom-client's Histogram#get calls getForPromString, which is ours.
    const self = this as unknown as { name: string; help: string; type: string; aggregator: string };
    const name = self.name;
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const { labels, cell } of this.cells.all.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += cell.counts[i]!;
        values.push({ labels: { ...labels, le }, value: acc, metricName: `${name}_bucket` });
      });
      values.push({ labels: { ...labels, le: '+Inf' }, value: cell.count, metricName: `${name}_bucket` });
      values.push({ labels, value: cell.sum, metricName: `${name}_sum` });
      values.push({ labels, value: cell.count, metricName: `${name}_count` });
    }
    const out = { name, help: self.help, type: self.type, aggregator: self.aggregator, values };
    return out as unknown as Awaited<ReturnType<Histogram<L>['get']>>;
  }
  /** The text exposition reads this when present (prom-client's Registry); the same values as get(). */
  getForPromString() {
    return this.get();
  }
}

/** A counter family: one {@link CounterCell} per label set. */
export interface CounterFamily<L extends string> {
  /** The counter of these label values (made on first use; keep it: that lookup is not for the hot path). */
  cell(labels: Labels<L>): CounterCell;
}

/** A gauge family: cells set directly, or series read from sources at scrape time. */
export interface GaugeFamily<L extends string> {
  /** A gauge set directly (last `set` wins). */
  cell(labels: Labels<L>): GaugeCell;
  /**
   * Adds a source read at scrape time to the series `labels`; the series shows the
   * sum or max (per the family) of its live sources, and disappears with the last
   * one. Returns the function that removes this source.
   */
  source(labels: Labels<L>, read: () => number): () => void;
}

/** A histogram family: one {@link HistogramCell} per label set. */
export interface HistogramFamily<L extends string> {
  /** The histogram of these label values (made on first use; keep it). */
  cell(labels: Labels<L>): HistogramCell;
}

function registered<T>(metrics: Metrics, name: string, kind: FamilyKind): T | undefined {
  const existing = metrics.registry.getSingleMetric(name);
  if (existing === undefined) return undefined;
  if ((existing as unknown as Partial<Record<typeof FAMILY_KIND, FamilyKind>>)[FAMILY_KIND] === kind) return existing as unknown as T;
  throw new InvalidUsage(
    `metric ${name} is already registered in this registry by something other than txnwal; ` +
      'give txnwal a registry of its own (new Registry()) or remove the other metric',
  );
}

/** A counter family in `metrics`' registry; the same name asked for twice is one family. */
export function counterFamily<L extends string>(metrics: Metrics, name: string, help: string, labelNames: readonly L[]): CounterFamily<L> {
  const c =
    registered<CellCounter<L>>(metrics, name, 'counter') ??
    new CellCounter<L>(new Cells(labelNames, () => new CounterCell()), { name, help, labelNames, registers: [metrics.registry] });
  const cells = (c as CellCounter<L>).cells;
  return { cell: (labels) => cells.get(labels) };
}

/** A gauge family; `aggregate` combines the sources of one series (see {@link GaugeFamily.source}). */
export function gaugeFamily<L extends string>(
  metrics: Metrics,
  name: string,
  help: string,
  labelNames: readonly L[],
  aggregate: GaugeAggregate = 'sum',
): GaugeFamily<L> {
  const g = (registered<CellGauge<L>>(metrics, name, 'gauge') ??
    new CellGauge<L>(new Cells(labelNames, () => new GaugeCell()), aggregate, { name, help, labelNames, registers: [metrics.registry] })) as CellGauge<L>;
  return {
    cell: (labels) => g.cells.get(labels),
    source: (labels, read) => {
      const key = labelNames.map((n) => labels[n]).join('\u0000');
      let s = g.sources.get(key);
      if (!s) {
        s = { labels: Object.fromEntries(labelNames.map((n) => [n, labels[n]])) as Labels<L>, reads: new Set() };
        g.sources.set(key, s);
      }
      const mine = s;
      // A fresh function per source: the same `read` added twice counts twice.
      const entry = () => read();
      mine.reads.add(entry);
      return () => {
        mine.reads.delete(entry);
        if (mine.reads.size === 0 && g.sources.get(key) === mine) g.sources.delete(key);
      };
    },
  };
}

/** A histogram family with bucket upper bounds `buckets` (ascending; +Inf is implied). */
export function histogramFamily<L extends string>(
  metrics: Metrics,
  name: string,
  help: string,
  labelNames: readonly L[],
  buckets: readonly number[],
): HistogramFamily<L> {
  const h = (registered<CellHistogram<L>>(metrics, name, 'histogram') ??
    new CellHistogram<L>(new Cells(labelNames, () => new HistogramCell(buckets)), buckets, {
      name,
      help,
      labelNames,
      buckets: [...buckets],
      registers: [metrics.registry],
    })) as CellHistogram<L>;
  return { cell: (labels) => h.cells.get(labels) };
}
