/**
 * Metrics: txnwal's Prometheus metrics in one prom-client Registry, one object per
 * registry, shared by every layer.
 *
 * Every layer that counts something takes the same option, `metrics: Metrics`
 * (`PersistClient.open`, `TxnsHandle.open`, `GroupCommitter.open`, `openDatabase`);
 * an object left without one inherits its parent's (a TxnsHandle its client's, a
 * GroupCommitter its TxnsHandle's), and the root default is prom-client's global
 * registry. Each layer keeps its families in a *part* of the Metrics object
 * (`StorageMetrics`, `PersistMetrics`, `TxnMetrics`, `GroupCommitMetrics`,
 * `ReaderMetrics`), made on first use. It lives in persist, the lowest layer that
 * counts anything (it meters its calls to Blob and Consensus), so every layer above
 * attaches its part without importing upward.
 *
 * Invariants:
 * - `Metrics.forRegistry(r)` returns the same object for the same registry, so two
 *   databases on one registry share every family (their counts add up), and two
 *   databases on two registries never collide (prom-client refuses a name registered
 *   twice in one registry; each registry gets its own families).
 * - Names follow the Prometheus conventions: prefix `txnwal_`, counters end in
 *   `_total`, durations are histograms in `_seconds`, sizes in `_bytes`, every family
 *   has a help text, labels have a small fixed set of values (no shard ids).
 * - Updates on the hot path are additions on cells made up front (metric-families.ts).
 *
 * Example:
 * ```ts
 * import { Registry } from 'prom-client';
 * const registry = new Registry();
 * const db = await openDatabase('mem://', { metrics: Metrics.forRegistry(registry) });
 * await db.write({ … });
 * console.log(await db.metrics());   // # HELP txnwal_consensus_compare_and_sets_total …
 * ```
 */
import { register as globalRegistry, Registry } from 'prom-client';
import { invalidArgument } from './argument-checks.js';

const byRegistry = new WeakMap<Registry, Metrics>();

/**
 * txnwal's metrics in one prom-client registry; pass it as the `metrics` option.
 *
 * ```ts
 * const metrics = Metrics.forRegistry(new Registry());
 * const db = await openDatabase('file:./data', { metrics });
 * console.log(await metrics.text());
 * ```
 */
export class Metrics {
  private readonly parts = new Map<string, unknown>();

  private constructor(
    /** The prom-client registry every family of this object is registered in. */
    readonly registry: Registry,
  ) {}

  /** The Metrics of `registry` (default: prom-client's global registry), made on first use. */
  static forRegistry(registry: Registry = globalRegistry): Metrics {
    if (!(registry instanceof Registry)) {
      throw invalidArgument('Metrics.forRegistry registry', "a prom-client Registry (new Registry() from 'prom-client'), or omitted for the global one", registry);
    }
    let m = byRegistry.get(registry);
    if (!m) {
      m = new Metrics(registry);
      byRegistry.set(registry, m);
    }
    return m;
  }

  /** The Metrics of prom-client's global registry. */
  static default(): Metrics {
    return Metrics.forRegistry(globalRegistry);
  }

  /**
   * @internal The `metrics` option of `what`: a Metrics object, or `fallback` when
   * omitted. A bare Registry is refused with the fix (wrap it with forRegistry).
   */
  static option(v: unknown, what: string, fallback: () => Metrics): Metrics {
    if (v === undefined) return fallback();
    if (v instanceof Metrics) return v;
    const fix = v instanceof Registry ? ' (wrap the registry: Metrics.forRegistry(registry))' : '';
    throw invalidArgument(what, `a Metrics object (Metrics.forRegistry(registry)), or omitted${fix}`, v);
  }

  /**
   * @internal A layer's part of this object, made by `make` on first use. Each layer
   * calls it with its own key (its part's class does, in `X.of(metrics)`).
   */
  part<T>(key: string, make: (metrics: Metrics) => T): T {
    let p = this.parts.get(key) as T | undefined;
    if (p === undefined) {
      p = make(this);
      this.parts.set(key, p);
    }
    return p;
  }

  /** The text exposition of the whole registry (txnwal's families and anything else in it). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The HTTP Content-Type of {@link text} (`text/plain; version=0.0.4; charset=utf-8` for a default registry). */
  get contentType(): string {
    return this.registry.contentType;
  }
}
