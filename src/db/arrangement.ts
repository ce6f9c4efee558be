/**
 * Arrangement: a collection indexed by key, with enough history for exact point
 * reads and range scans at any time from its `since` up to its `frontier`.
 *
 * It is fed the events of one collection's stream (a `dataSubscribe$` or
 * `shardSubscribe$` read as of `asOf`: a snapshot at `asOf`, then updates and
 * progress) and answers, for any `asOf` with `since <= asOf < frontier`:
 * - `get(key, asOf)`: the `[val, diff]` rows of `key` at `asOf`;
 * - `scan({ from, to }, asOf)`: every row with a key in the range, in key order;
 * - `lastChange(key, after, before)`: the latest time `t` with `after < t < before`
 *   at which `key` changed — what a read-write transaction validates its reads and
 *   its locks against (no other transaction wrote the key after its read timestamp).
 *
 * Invariants:
 * - Reads are exact: `get(k, t)` equals the consolidation of every update of `k`
 *   at a time `<= t` that the stream delivered (the property test checks this
 *   against a naive replay of the whole stream, after any compactions).
 * - `frontier` is the stream's latest progress: every time below it is complete.
 *   Reads at or past it, or below `since`, throw {@link ReadOutsideArrangement},
 *   which says which times are readable; {@link Arrangement.waitForFrontier} waits
 *   until a time is readable.
 * - History is kept only from `since`: {@link Arrangement.compactTo} folds every
 *   update at or below the new since into one row per `(key, val)` at the since and
 *   drops keys whose rows cancel out, so memory is the live data plus the history
 *   that readers still need (a transaction's owner compacts to the oldest open read
 *   timestamp).
 *
 * Cost: an update is O(log n) to find its key plus O(updates of that key) to
 * insert in time order (usually appended); `get` is O(history of the key); `scan`
 * is O(log n + keys in range × their history). New keys go into a sorted key list
 * (O(n) moves, done once per key).
 *
 * Worked example (one account, written at 5 and 9, read from as-of 5):
 * ```ts
 * const arr = new Arrangement<string, number>({ asOf: 5 });
 * arr.push({ kind: 'updates', updates: [['alice', 10, 5, 1]] });
 * arr.push({ kind: 'progress', upper: 6 });
 * arr.push({ kind: 'updates', updates: [['alice', 10, 9, -1], ['alice', 7, 9, 1]] });
 * arr.push({ kind: 'progress', upper: 10 });
 * arr.get('alice', 8);             // [[10, 1]]
 * arr.get('alice', 9);             // [[7, 1]]
 * arr.lastChange('alice', 5, 10);  // 9: someone wrote alice after a read at 5
 * arr.compactTo(9);                // the history below 9 is gone; reads at 9 stay exact
 * ```
 */
import type { Subscription, Observable } from 'rxjs';
import { InvalidUsage } from '../persist/errors.js';
import type { Update } from '../persist/update.js';
import { abortableWait } from '../persist/wait.js';
import type { ShardEvent } from '../sources/shard-source.js';
import { valueIdentity } from '../operators/row-identity.js';

/**
 * A read at a time the arrangement cannot answer exactly.
 *
 * Read within `[since, frontier)`, or wait for the frontier with `waitForFrontier`.
 *
 * Example:
 * ```ts
 * arr.get('alice', arr.frontier);   // throws ReadOutsideArrangement: not complete yet
 * ```
 */
export class ReadOutsideArrangement extends Error {
  /**
   * Builds the message with the readable times and what to do.
   *
   * @param asOf The time asked for.
   * @param since The first readable time.
   * @param frontier The first time not complete yet.
   */
  constructor(
    readonly asOf: number,
    readonly since: number,
    readonly frontier: number,
  ) {
    super(
      `read at ${asOf} is outside the arrangement's readable times [${since}, ${frontier}): ` +
        (asOf < since
          ? 'its history below the since was compacted; read at or above the since'
          : 'those times are not complete yet; wait for the frontier (waitForFrontier) or read below it'),
    );
    this.name = 'ReadOutsideArrangement';
  }
}

/**
 * Options for {@link Arrangement}.
 *
 * Example:
 * ```ts
 * new Arrangement<number, string>({ asOf: 0, compareKeys: (a, b) => b - a });   // scans in descending key order
 * ```
 */
export interface ArrangementOptions<K> {
  /** The time the stream reads as of: the first readable time (the initial since). */
  asOf: number;
  /**
   * Key order for `scan`. Default: numbers and strings (and bigints) by value, byte
   * arrays bytewise, numbers before strings before bytes before other data; other
   * data by its identity string.
   */
  compareKeys?: (a: K, b: K) => number;
}

/** One `(val, time)` of a key's history, with its summed diff. */
interface Change<V> {
  ts: number;
  valId: string;
  val: V;
  diff: number;
}

interface KeyEntry<K, V> {
  key: K;
  /** Sorted by `ts` (ties in arrival order). */
  changes: Change<V>[];
}

/**
 * One row that `scan` yields.
 *
 * Example:
 * ```ts
 * for (const [key, val, diff] of arr.scan({ from: 'a', to: 'm' }, ts)) console.log(key, val, diff);
 * ```
 */
export type ArrangedRow<K, V> = [key: K, val: V, diff: number];

/**
 * A collection indexed by key, with history from `since` to `frontier`, for exact point reads and
 * range scans at any time in between: what read-write transactions read from. Feed it a
 * collection's events with `push`.
 *
 * Example:
 * ```ts
 * const arr = new Arrangement<string, number>({ asOf: 5 });
 * arr.push({ kind: 'updates', updates: [['alice', 10, 5, 1]] });
 * arr.push({ kind: 'progress', upper: 6 });
 * arr.get('alice', 5);   // [[10, 1]]
 * ```
 */
export class Arrangement<K, V> {
  private readonly byId = new Map<string, KeyEntry<K, V>>();
  /** Key ids in key order. */
  private readonly order: string[] = [];
  private readonly compare: (a: K, b: K) => number;
  private sinceTs: number;
  private frontierTs: number;
  private failure: unknown;
  private ended = false;
  private readonly waiters = new Set<() => void>();

  /**
   * An empty arrangement, readable from `opts.asOf` once the stream's progress passes it.
   *
   * @param opts The first readable time, and the key order for scans.
   */
  constructor(opts: ArrangementOptions<K>) {
    if (!Number.isSafeInteger(opts.asOf) || opts.asOf < 0) {
      throw new InvalidUsage(`Arrangement: asOf must be a non-negative safe integer, got ${String(opts.asOf)}`);
    }
    this.sinceTs = opts.asOf;
    this.frontierTs = opts.asOf;
    this.compare = opts.compareKeys ?? defaultKeyOrder;
  }

  /** Reads at times `>= since` are exact. */
  get since(): number {
    return this.sinceTs;
  }

  /** Every time below this is complete (the stream's latest progress). */
  get frontier(): number {
    return this.frontierTs;
  }

  /** How many keys hold rows or history. */
  get keyCount(): number {
    return this.byId.size;
  }

  /** Folds one stream event in. Updates below the since are refused: the stream was not read as of this arrangement's asOf. */
  push(event: ShardEvent<K, V>): void {
    if (event.kind === 'progress') {
      if (event.upper > this.frontierTs) {
        this.frontierTs = event.upper;
        this.wakeAll();
      }
      return;
    }
    for (const u of event.updates) this.add(u);
  }

  /**
   * Feeds `events$` into the arrangement until the returned subscription is closed.
   * If the stream errors or completes before reaching `Infinity`, waits reject with its error.
   */
  follow(events$: Observable<ShardEvent<K, V>>): Subscription {
    return events$.subscribe({
      next: (e) => this.push(e),
      error: (err: unknown) => this.fail(err),
      complete: () => {
        this.ended = true;
        this.wakeAll();
      },
    });
  }

  /** The `[val, diff]` rows of `key` at `asOf` (rows that sum to zero are absent). */
  get(key: K, asOf: number): [V, number][] {
    this.checkReadable(asOf);
    const entry = this.byId.get(valueIdentity(key));
    return entry ? rowsAt(entry, asOf) : [];
  }

  /**
   * Every row with `from <= key < to` (either bound optional) at `asOf`, in key order.
   * Rows that sum to zero are absent.
   */
  *scan(range: { from?: K; to?: K }, asOf: number): IterableIterator<ArrangedRow<K, V>> {
    this.checkReadable(asOf);
    for (const entry of this.entriesIn(range)) {
      for (const [val, diff] of rowsAt(entry, asOf)) yield [entry.key, val, diff];
    }
  }

  /** Every key with rows or history in `from <= key < to`, in key order (a range's keys for validation, phantoms included). */
  *keysIn(range: { from?: K; to?: K }): IterableIterator<K> {
    for (const entry of this.entriesIn(range)) yield entry.key;
  }

  private *entriesIn(range: { from?: K; to?: K }): IterableIterator<KeyEntry<K, V>> {
    let i = range.from === undefined ? 0 : this.lowerBound(range.from);
    for (; i < this.order.length; i++) {
      const entry = this.byId.get(this.order[i]!)!;
      if (range.to !== undefined && this.compare(entry.key, range.to) >= 0) return;
      yield entry;
    }
  }

  /** The arrangement's key order (negative, zero, positive). */
  compareKeys(a: K, b: K): number {
    return this.compare(a, b);
  }

  /**
   * The latest time `t` with `after < t < before` at which `key`'s rows changed, or
   * `undefined` if none did. `before` must be at most the frontier (the times must
   * be complete) and `after` at least the since (history at and below the since is
   * folded together, so a change there cannot be told from older ones).
   */
  lastChange(key: K, after: number, before: number): number | undefined {
    if (after < this.sinceTs) throw new ReadOutsideArrangement(after, this.sinceTs, this.frontierTs);
    if (before > this.frontierTs) throw new ReadOutsideArrangement(before - 1, this.sinceTs, this.frontierTs);
    const entry = this.byId.get(valueIdentity(key));
    if (!entry) return undefined;
    const { changes } = entry;
    for (let i = upperBoundTs(changes, before - 1) - 1; i >= 0; i--) {
      const ts = changes[i]!.ts;
      if (ts <= after) return undefined;
      if (netChangeAt(changes, ts, i)) return ts;
      // Skip the rest of this time's changes: they cancelled out.
      while (i > 0 && changes[i - 1]!.ts === ts) i--;
    }
    return undefined;
  }

  /**
   * Keeps history only from `since` on: updates at or below it are folded into one
   * row per `(key, val)` at `since`. A since that is not above the current one is a no-op;
   * one at or past the frontier is refused (reads there would not be exact yet).
   */
  compactTo(since: number): void {
    if (since <= this.sinceTs) return;
    if (since >= this.frontierTs) {
      throw new InvalidUsage(
        `Arrangement.compactTo(${since}): the since must stay below the frontier ${this.frontierTs}; compact to at most ${this.frontierTs - 1}`,
      );
    }
    this.sinceTs = since;
    const emptied: string[] = [];
    for (const [id, entry] of this.byId) {
      const end = upperBoundTs(entry.changes, since);
      if (end === 0) continue;
      const folded = new Map<string, Change<V>>();
      for (let i = 0; i < end; i++) {
        const c = entry.changes[i]!;
        const prev = folded.get(c.valId);
        if (prev) prev.diff += c.diff;
        else folded.set(c.valId, { ts: since, valId: c.valId, val: c.val, diff: c.diff });
      }
      const base = [...folded.values()].filter((c) => c.diff !== 0);
      entry.changes = base.concat(entry.changes.slice(end));
      if (entry.changes.length === 0) emptied.push(id);
    }
    if (emptied.length > 0) {
      const gone = new Set(emptied);
      for (const id of emptied) this.byId.delete(id);
      let w = 0;
      for (const id of this.order) if (!gone.has(id)) this.order[w++] = id;
      this.order.length = w;
    }
  }

  /** Resolves once `ts` is readable (`ts < frontier`); rejects if the followed stream failed or ended first, or on abort. */
  async waitForFrontier(ts: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (ts < this.frontierTs) return;
      if (this.failure !== undefined) throw this.failure;
      if (this.ended) throw new InvalidUsage(`the arrangement's stream ended at frontier ${this.frontierTs}, before ${ts} became readable`);
      await abortableWait<void>({
        signal,
        register: (wake) => {
          this.waiters.add(wake);
          return () => this.waiters.delete(wake);
        },
      });
    }
  }

  private fail(err: unknown): void {
    this.failure = err ?? new Error('the arrangement stream failed');
    this.wakeAll();
  }

  private wakeAll(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  private checkReadable(asOf: number): void {
    if (!(asOf >= this.sinceTs && asOf < this.frontierTs)) throw new ReadOutsideArrangement(asOf, this.sinceTs, this.frontierTs);
  }

  private add([key, val, ts, diff]: Update<K, V>): void {
    if (ts < this.sinceTs) {
      throw new InvalidUsage(
        `Arrangement: an update at ${ts} is below the since ${this.sinceTs}; feed it a stream read as of ${this.sinceTs} or later`,
      );
    }
    if (diff === 0) return;
    const id = valueIdentity(key);
    let entry = this.byId.get(id);
    if (!entry) {
      entry = { key, changes: [] };
      this.byId.set(id, entry);
      this.order.splice(this.lowerBound(key), 0, id);
    }
    const change: Change<V> = { ts, valId: valueIdentity(val), val, diff };
    const { changes } = entry;
    // Streams deliver times in order, so this is almost always an append.
    if (changes.length === 0 || changes[changes.length - 1]!.ts <= ts) changes.push(change);
    else changes.splice(upperBoundTs(changes, ts), 0, change);
  }

  /** The first position in key order whose key is not below `key`. */
  private lowerBound(key: K): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compare(this.byId.get(this.order[mid]!)!.key, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** The consolidated rows of a key at `asOf`. */
function rowsAt<K, V>(entry: KeyEntry<K, V>, asOf: number): [V, number][] {
  const sums = new Map<string, { val: V; diff: number }>();
  const end = upperBoundTs(entry.changes, asOf);
  for (let i = 0; i < end; i++) {
    const c = entry.changes[i]!;
    const s = sums.get(c.valId);
    if (s) s.diff += c.diff;
    else sums.set(c.valId, { val: c.val, diff: c.diff });
  }
  const out: [V, number][] = [];
  for (const { val, diff } of sums.values()) if (diff !== 0) out.push([val, diff]);
  return out;
}

/** Whether the changes at `ts` (ending at index `last`) leave some value's count changed. */
function netChangeAt<V>(changes: Change<V>[], ts: number, last: number): boolean {
  const sums = new Map<string, number>();
  for (let i = last; i >= 0 && changes[i]!.ts === ts; i--) {
    const c = changes[i]!;
    sums.set(c.valId, (sums.get(c.valId) ?? 0) + c.diff);
  }
  for (const d of sums.values()) if (d !== 0) return true;
  return false;
}

/** The number of changes at times `<= ts`. */
function upperBoundTs<V>(changes: Change<V>[], ts: number): number {
  let lo = 0;
  let hi = changes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (changes[mid]!.ts <= ts) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const RANK: Record<string, number> = { number: 0, bigint: 0, string: 1 };

/** The default key order (see {@link ArrangementOptions.compareKeys}). */
export function defaultKeyOrder(a: unknown, b: unknown): number {
  const ra = a instanceof Uint8Array ? 2 : (RANK[typeof a] ?? 3);
  const rb = b instanceof Uint8Array ? 2 : (RANK[typeof b] ?? 3);
  if (ra !== rb) return ra - rb;
  if (ra === 0 || ra === 1) return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
  if (ra === 2) return Buffer.compare(a as Uint8Array, b as Uint8Array);
  const ia = valueIdentity(a);
  const ib = valueIdentity(b);
  return ia < ib ? -1 : ia > ib ? 1 : 0;
}
