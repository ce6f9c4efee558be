/**
 * Fault injection: a {@link Location} wrapper that makes a seeded fraction of Blob
 * and Consensus calls fail, for testing code above the storage layer against the
 * faults real stores produce (a refused connection, a reply lost after the server
 * acted, a slow round trip).
 *
 * Each call through the wrapper is, independently:
 * - **determinate** (probability `determinate`): throws {@link DeterminateError}
 *   WITHOUT calling the inner store;
 * - **indeterminate** (probability `indeterminate`): calls the inner store, lets it
 *   finish (successfully or not), then throws {@link IndeterminateError}, as if the
 *   reply had been lost. If the inner call itself threw, that error is rethrown
 *   instead (it is the truer answer), and the fault is still counted;
 * - passed through unchanged otherwise.
 * Independently of that, a call may be **slow** (probability `slow`): it waits up to
 * `slowMaxMs` (seeded) before or after reaching the inner store.
 *
 * Outages: with `burst: { rate, length }`, each call may also (probability `rate`)
 * start an outage during which the next `length` calls all fail (determinate or
 * indeterminate in the proportion of the rates, half and half if both are 0). Real
 * stores fail in bursts; independent faults rarely outlast a retry loop, so code that
 * runs only when retries run out (outcome flags, clean-up after a failure) needs them.
 *
 * Guarantees:
 * - An injected determinate fault never reaches the inner store.
 * - An injected indeterminate fault always did reach it, and the inner call had
 *   completed before the error was thrown.
 * - Decisions come from one seeded PRNG stream, drawn in call order: the same seed
 *   and the same sequence of calls give the same faults. (Concurrent callers make
 *   the call order depend on timing, so replaying a whole workload is only as
 *   deterministic as the workload.)
 * - With `faults.enabled = false`, or every rate 0, the wrapper only forwards; calls
 *   filtered out by `filter` are always forwarded and draw nothing from the PRNG.
 * - `close()` closes the inner location (open the wrapper over a shared store that
 *   you close yourself, and skip its `close()`, to keep the store).
 *
 * Rates are per kind of method: `reads` (blob get / listKeysAndMetadata, consensus
 * head / scan / listKeys) and `writes` (blob set / delete / restore, consensus
 * compareAndSet / truncate). `faultRate` is split evenly between determinate and
 * indeterminate faults unless the per-kind rates say otherwise.
 *
 * Example:
 * ```ts
 * const inner = await openLocation('mem://');
 * const location = withFaultInjection(inner, { seed: 7, faultRate: 0.1 });
 * const client = await PersistClient.open(location);   // 5% refused, 5% reply lost
 * // … run a workload; storage errors surface as PersistStorageError when retries run out …
 * location.faults.enabled = false;                        // or location.faults.setFaultRate(0)
 * location.faults.totals();                               // { determinate: 31, indeterminate: 28, slow: 0 }
 * location.faults.counts.indeterminate['consensus.compareAndSet'];   // 9
 * ```
 */
import type { Blob } from './blob.js';
import type { CaSResult, Consensus, SeqNo, VersionedData } from './consensus.js';
import { DeterminateError, IndeterminateError, LocationUsageError } from './errors.js';
import type { Location } from './location.js';

/**
 * What an injected fault does: `determinate` fails the call before it runs, `indeterminate` runs it
 * and then throws (the reply was lost), `slow` delays it.
 *
 * Example:
 * ```ts
 * location.faults.totals();   // Record<FaultKind, number>: { determinate: 3, indeterminate: 4, slow: 0 }
 * ```
 */
export type FaultKind = 'determinate' | 'indeterminate' | 'slow';
/**
 * Every {@link FaultKind}, in a fixed order (for reports and loops over the counters).
 *
 * Example:
 * ```ts
 * for (const kind of FAULT_KINDS) console.log(kind, location.faults.totals()[kind]);
 * ```
 */
export const FAULT_KINDS: readonly FaultKind[] = ['determinate', 'indeterminate', 'slow'];

/**
 * The Blob methods a fault can hit, as named in {@link StoreMethod} (`blob.<method>`).
 *
 * Example:
 * ```ts
 * const m: BlobMethod = 'set';
 * ```
 */
export type BlobMethod = 'get' | 'set' | 'delete' | 'listKeysAndMetadata' | 'restore';
/**
 * The Consensus methods a fault can hit, as named in {@link StoreMethod} (`consensus.<method>`).
 *
 * Example:
 * ```ts
 * const m: ConsensusMethod = 'compareAndSet';
 * ```
 */
export type ConsensusMethod = 'head' | 'compareAndSet' | 'scan' | 'truncate' | 'listKeys';
/**
 * A store method, as `blob.<method>` or `consensus.<method>`.
 *
 *
 * Example:
 * ```ts
 * withFaultInjection(inner, { seed: 1, filter: (call) => call.method === 'consensus.compareAndSet' });
 * ```
 */
export type StoreMethod = `blob.${BlobMethod}` | `consensus.${ConsensusMethod}`;

/**
 * The methods that change nothing; every other method counts as a write.
 *
 * Example:
 * ```ts
 * READ_METHODS.has('blob.get');   // true
 * READ_METHODS.has('blob.set');   // false: governed by the `writes` rates
 * ```
 */
export const READ_METHODS: ReadonlySet<StoreMethod> = new Set<StoreMethod>([
  'blob.get',
  'blob.listKeysAndMetadata',
  'consensus.head',
  'consensus.scan',
  'consensus.listKeys',
]);

/**
 * Probabilities (each in [0, 1]) of each kind of fault, per call.
 *
 * Example:
 * ```ts
 * withFaultInjection(inner, { seed: 1, writes: { determinate: 0, indeterminate: 0.2, slow: 0 } });
 * ```
 */
export interface FaultRates {
  /** Probability that a call fails before it runs. */
  determinate: number;
  /** Probability that a call runs and then throws, as if its reply were lost. */
  indeterminate: number;
  /** Probability that a call is delayed (up to `slowMaxMs`) before it runs. */
  slow: number;
}

/**
 * One call, as seen by a {@link FaultInjectionOptions.filter}.
 *
 * Example:
 * ```ts
 * const onlyData = (call: FaultCall) => call.method.startsWith('blob.');
 * withFaultInjection(inner, { seed: 3, filter: onlyData });
 * ```
 */
export interface FaultCall {
  /** The method called. */
  method: StoreMethod;
  /** The blob key, consensus key or listing prefix; undefined for `consensus.listKeys`. */
  key: string | undefined;
}

/**
 * How {@link withFaultInjection} decides which calls fail: a seed (so a failing run can be
 * replayed), rates, and filters.
 *
 * Example:
 * ```ts
 * const location = withFaultInjection(await openLocation('mem://'), {
 *   seed: 42,
 *   faultRate: 0.05,
 *   writes: { indeterminate: 0.1 },
 *   burst: { rate: 0.001, length: 20 },
 * });
 * ```
 */
export interface FaultInjectionOptions {
  /** Seeds the PRNG that decides every fault (any 32-bit integer). */
  seed: number;
  /** Fraction of calls that fail, half determinate and half indeterminate (default 0.1). */
  faultRate?: number;
  /** Overrides for read methods (see {@link READ_METHODS}). */
  reads?: Partial<FaultRates>;
  /** Overrides for write methods. */
  writes?: Partial<FaultRates>;
  /** Fraction of calls delayed (default 0), for both kinds unless overridden. */
  slowRate?: number;
  /** The longest delay of a slow call, in ms (default 20). */
  slowMaxMs?: number;
  /** Only calls for which this returns true may be faulted (default: all). */
  filter?: (call: FaultCall) => boolean;
  /** Outages: each call starts one with probability `rate`; it fails the next `length` calls (default: none). */
  burst?: {
    /** Probability that a call starts an outage. */
    rate: number;
    /** Calls an outage fails. */
    length: number;
  };
  /** Start with faults on (default true). */
  enabled?: boolean;
}

/**
 * Counts of injected faults, by kind and method.
 *
 * Example:
 * ```ts
 * location.faults.counts.indeterminate['consensus.compareAndSet'] ?? 0;
 * ```
 */
export type FaultCounts = Record<FaultKind, Partial<Record<StoreMethod, number>>>;

/**
 * A small seeded PRNG (mulberry32): floats in [0, 1). Kept here because src cannot import test
 * helpers.
 *
 * Use it where a test or trial needs a reproducible stream of random numbers.
 *
 * Example:
 * ```ts
 * const random = seededRandom(7);
 * random();   // the same float in [0, 1) on every run with seed 7
 * ```
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function checkRate(value: unknown, what: string): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new LocationUsageError(`fault injection option ${what} must be a number in [0, 1], got ${String(value)}`);
  }
  return value;
}

function checkRates(rates: FaultRates, what: string): FaultRates {
  checkRate(rates.determinate, `${what}.determinate`);
  checkRate(rates.indeterminate, `${what}.indeterminate`);
  checkRate(rates.slow, `${what}.slow`);
  if (rates.determinate + rates.indeterminate > 1) {
    throw new LocationUsageError(
      `fault injection: ${what}.determinate + ${what}.indeterminate must be at most 1, got ` +
        `${rates.determinate} + ${rates.indeterminate}`,
    );
  }
  return rates;
}

/**
 * The switch, the rates and the counters of one fault-injecting location.
 *
 * Reach it as `location.faults`; turn faults off around setup code and back on for the workload.
 *
 * Example:
 * ```ts
 * const location = withFaultInjection(inner, { seed: 1, enabled: false });
 * // … set up shards without faults …
 * location.faults.enabled = true;
 * location.faults.setFaultRate(0.2);
 * ```
 */
export class FaultInjector {
  /** While false every call is forwarded untouched and nothing is drawn from the PRNG. */
  enabled: boolean;
  /** Calls that went through the wrapper (faulted or not). */
  calls = 0;
  /** Outages started (see `burst`). */
  bursts = 0;
  /** Faults injected so far, by kind and method (reset with `resetCounts()`). */
  readonly counts: FaultCounts = { determinate: {}, indeterminate: {}, slow: {} };
  private readRates: FaultRates;
  private writeRates: FaultRates;
  private readonly random: () => number;
  private readonly slowMaxMs: number;
  private readonly filter: ((call: FaultCall) => boolean) | undefined;
  private burst: { rate: number; length: number };
  /** Calls left in the current outage. */
  private burstLeft = 0;

  /**
   * Checks `options` and seeds the PRNG; throws LocationUsageError for a bad rate, seed or burst.
   */
  constructor(
    /** The options it was built with, as given. */
    readonly options: FaultInjectionOptions,
  ) {
    if (!Number.isInteger(options.seed)) {
      throw new LocationUsageError(`fault injection option seed must be an integer, got ${String(options.seed)}`);
    }
    const faultRate = checkRate(options.faultRate ?? 0.1, 'faultRate');
    const slow = checkRate(options.slowRate ?? 0, 'slowRate');
    const base: FaultRates = { determinate: faultRate / 2, indeterminate: faultRate / 2, slow };
    this.readRates = checkRates({ ...base, ...options.reads }, 'reads');
    this.writeRates = checkRates({ ...base, ...options.writes }, 'writes');
    const slowMaxMs = options.slowMaxMs ?? 20;
    if (!(Number.isFinite(slowMaxMs) && slowMaxMs >= 0)) {
      throw new LocationUsageError(`fault injection option slowMaxMs must be a finite number >= 0, got ${slowMaxMs}`);
    }
    this.slowMaxMs = slowMaxMs;
    this.filter = options.filter;
    this.burst = this.checkBurst(options.burst ?? { rate: 0, length: 0 });
    this.random = seededRandom(options.seed);
    this.enabled = options.enabled ?? true;
  }

  /** Sets the fault rate of every method (half determinate, half indeterminate); slow calls are kept. */
  setFaultRate(rate: number): void {
    checkRate(rate, 'rate');
    this.readRates = { ...this.readRates, determinate: rate / 2, indeterminate: rate / 2 };
    this.writeRates = { ...this.writeRates, determinate: rate / 2, indeterminate: rate / 2 };
  }

  /** Sets the outage rate and length (`{ rate: 0, length: 0 }` for none); ends a current outage. */
  setBurst(burst: { rate: number; length: number }): void {
    this.burst = this.checkBurst(burst);
    this.burstLeft = 0;
  }

  private checkBurst(burst: { rate: number; length: number }): { rate: number; length: number } {
    checkRate(burst?.rate, 'burst.rate');
    if (!(Number.isSafeInteger(burst.length) && burst.length >= 0)) {
      throw new LocationUsageError(`fault injection option burst.length must be an integer >= 0, got ${String(burst.length)}`);
    }
    return { rate: burst.rate, length: burst.length };
  }

  /** Sets the rates of read or write methods. */
  setRates(kind: 'reads' | 'writes', rates: Partial<FaultRates>): void {
    if (kind === 'reads') this.readRates = checkRates({ ...this.readRates, ...rates }, 'reads');
    else this.writeRates = checkRates({ ...this.writeRates, ...rates }, 'writes');
  }

  /** The rates in force for read or write methods. */
  rates(kind: 'reads' | 'writes'): FaultRates {
    return { ...(kind === 'reads' ? this.readRates : this.writeRates) };
  }

  /** Injected faults of each kind, over every method. */
  totals(): Record<FaultKind, number> {
    const sum = (m: Partial<Record<StoreMethod, number>>) => Object.values(m).reduce((a, b) => a + (b ?? 0), 0);
    return { determinate: sum(this.counts.determinate), indeterminate: sum(this.counts.indeterminate), slow: sum(this.counts.slow) };
  }

  /** Zeroes the counters. */
  resetCounts(): void {
    this.calls = 0;
    this.bursts = 0;
    for (const kind of FAULT_KINDS) this.counts[kind] = {};
  }

  /** Runs `call` on the inner store under this injector's decisions. */
  async run<T>(method: StoreMethod, key: string | undefined, call: () => Promise<T>): Promise<T> {
    this.calls++;
    if (!this.enabled || (this.filter && !this.filter({ method, key }))) return call();
    const rates = READ_METHODS.has(method) ? this.readRates : this.writeRates;
    // A fixed number of draws per call, so one decision never shifts the next ones.
    const faultDraw = this.random();
    const slowDraw = this.random();
    const delayDraw = this.random();
    const burstDraw = this.random();
    const callIndex = this.calls;
    const where = `${method}(${key === undefined ? '' : JSON.stringify(key)}) [seed ${this.options.seed}, call #${callIndex}]`;

    let delayBefore = 0;
    let delayAfter = 0;
    if (slowDraw < rates.slow) {
      this.count('slow', method);
      // One draw picks both the side and the length of the delay.
      const half = delayDraw < 0.5;
      const ms = Math.floor((half ? delayDraw * 2 : (delayDraw - 0.5) * 2) * (this.slowMaxMs + 1));
      if (half) delayBefore = ms;
      else delayAfter = ms;
    }

    let determinate = rates.determinate;
    let indeterminate = rates.indeterminate;
    if (this.burstLeft === 0 && this.burst.length > 0 && burstDraw < this.burst.rate) {
      this.bursts++;
      this.burstLeft = this.burst.length;
    }
    if (this.burstLeft > 0) {
      // Inside an outage every call fails, in the proportion of the two fault rates.
      this.burstLeft--;
      const sum = determinate + indeterminate;
      determinate = sum > 0 ? determinate / sum : 0.5;
      indeterminate = 1 - determinate;
    }

    if (faultDraw < determinate) {
      this.count('determinate', method);
      await delay(delayBefore + delayAfter);
      throw new DeterminateError(`injected fault: ${where} was refused before reaching the store (it did not happen)`);
    }
    await delay(delayBefore);
    if (faultDraw < determinate + indeterminate) {
      this.count('indeterminate', method);
      await call();
      await delay(delayAfter);
      throw new IndeterminateError(`injected fault: ${where} reached the store but its reply was lost (it may have happened)`);
    }
    const result = await call();
    await delay(delayAfter);
    return result;
  }

  private count(kind: FaultKind, method: StoreMethod): void {
    this.counts[kind][method] = (this.counts[kind][method] ?? 0) + 1;
  }
}

function delay(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A Blob whose calls go through a {@link FaultInjector}.
 *
 * Built by {@link withFaultInjection}; construct one directly only to fault a Blob that is not part
 * of a Location.
 *
 * Example:
 * ```ts
 * const faults = new FaultInjector({ seed: 5, faultRate: 0.5 });
 * const blob = new FaultInjectingBlob(new MemBlob(), faults);
 * ```
 */
export class FaultInjectingBlob implements Blob {
  /** Wraps `inner`; every call first asks `faults` whether to fail, delay or forward it. */
  constructor(
    /** The Blob the calls are forwarded to. */
    readonly inner: Blob,
    /** Decides each call's fault and counts them. */
    readonly faults: FaultInjector,
  ) {}
  get(key: string): Promise<Uint8Array | undefined> {
    return this.faults.run('blob.get', key, () => this.inner.get(key));
  }
  set(key: string, value: Uint8Array): Promise<void> {
    return this.faults.run('blob.set', key, () => this.inner.set(key, value));
  }
  delete(key: string): Promise<number | undefined> {
    return this.faults.run('blob.delete', key, () => this.inner.delete(key));
  }
  listKeysAndMetadata(prefix: string, fn: (key: string, sizeBytes: number) => void): Promise<void> {
    return this.faults.run('blob.listKeysAndMetadata', prefix, () => this.inner.listKeysAndMetadata(prefix, fn));
  }
  restore(key: string): Promise<void> {
    return this.faults.run('blob.restore', key, () => this.inner.restore(key));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * A Consensus whose calls go through a {@link FaultInjector}.
 *
 * Built by {@link withFaultInjection}; construct one directly only to fault a Consensus that is not
 * part of a Location.
 *
 * Example:
 * ```ts
 * const consensus = new FaultInjectingConsensus(new MemConsensus(), new FaultInjector({ seed: 5 }));
 * ```
 */
export class FaultInjectingConsensus implements Consensus {
  /** Wraps `inner`; every call first asks `faults` whether to fail, delay or forward it. */
  constructor(
    /** The Consensus the calls are forwarded to. */
    readonly inner: Consensus,
    /** Decides each call's fault and counts them. */
    readonly faults: FaultInjector,
  ) {}
  head(key: string): Promise<VersionedData | undefined> {
    return this.faults.run('consensus.head', key, () => this.inner.head(key));
  }
  compareAndSet(key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult> {
    return this.faults.run('consensus.compareAndSet', key, () => this.inner.compareAndSet(key, expected, next));
  }
  scan(key: string, from: SeqNo, limit: number): Promise<VersionedData[]> {
    return this.faults.run('consensus.scan', key, () => this.inner.scan(key, from, limit));
  }
  truncate(key: string, seqno: SeqNo): Promise<number> {
    return this.faults.run('consensus.truncate', key, () => this.inner.truncate(key, seqno));
  }
  listKeys(): Promise<string[]> {
    return this.faults.run('consensus.listKeys', undefined, () => this.inner.listKeys());
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * A Location whose Blob and Consensus share one {@link FaultInjector}, `faults`.
 *
 * Example:
 * ```ts
 * const location: FaultInjectingLocation = withFaultInjection(await openLocation('mem://'), { seed: 9 });
 * const client = await PersistClient.open(location);
 * location.faults.totals();
 * ```
 */
export interface FaultInjectingLocation extends Location {
  /** The wrapped location's Blob, behind the injector. */
  readonly blob: FaultInjectingBlob;
  /** The wrapped location's Consensus, behind the injector. */
  readonly consensus: FaultInjectingConsensus;
  /** The one injector both stores share: its switch, rates and counters. */
  readonly faults: FaultInjector;
  /** The wrapped location. */
  readonly inner: Location;
}

/**
 * Wraps `inner` so a seeded fraction of its calls fail; see the module comment.
 *
 * Use it to test that a workload survives storage faults: persist retries what it can and
 * surfaces the rest as PersistStorageError.
 *
 * Example:
 * ```ts
 * const location = withFaultInjection(await openLocation('mem://'), { seed: 7, faultRate: 0.1 });
 * const client = await PersistClient.open(location);
 * ```
 */
export function withFaultInjection(inner: Location, options: FaultInjectionOptions): FaultInjectingLocation {
  const faults = new FaultInjector(options);
  return {
    inner,
    faults,
    blob: new FaultInjectingBlob(inner.blob, faults),
    consensus: new FaultInjectingConsensus(inner.consensus, faults),
    // The wake-up channel passes through untouched: hints are best-effort by design (a
    // compare-and-set failed by a fault announces nothing; readers poll as they would).
    stateChanges: inner.stateChanges,
    url: inner.url,
    close: () => inner.close(),
  };
}
