/**
 * TxnsTransactionHost: what read-write transactions need, built from one
 * TxnsHandle (its data shards are the collections), the process's key locks, an
 * optional timestamp oracle, and one shared {@link Arrangement} per collection.
 *
 * - Arrangements are opened on first use, reading the collection with
 *   `dataSubscribe$` as of the oldest pinned read timestamp (or the latest
 *   complete time; or the shard's since, if other readers let it compact past
 *   that), and shared by every transaction of the host. Each is compacted
 *   to the oldest read timestamp still pinned whenever a pin is released, so its
 *   memory is the live data plus the history open transactions can still read.
 * - Commits go through `txn.commitAt(…, { expectUpper })` and are applied at
 *   once, so the next transaction of this process reads them. Retractions from
 *   applies (Tidy) ride on the next commit.
 *
 * Invariant: a pinned read timestamp stays readable in every arrangement of the
 * host until it is unpinned (compaction never passes the oldest pin).
 *
 * Example:
 * ```ts
 * const host = new TxnsTransactionHost(txns, { oracle });
 * const accounts = host.collection(accountsId);
 * const tx = await ReadWriteTransaction.begin(host, { isolation: 'serializable' });
 * await tx.set(accounts, 'alice', ((await tx.get(accounts, 'alice')) ?? 0) + 5);
 * await tx.commit();
 * await host.close();
 * ```
 */
import type { Observable, Subscription } from 'rxjs';
import type { TimestampOracle } from '../coord/timestamp-oracle.js';
import type { CommitAttempt } from '../coord/timestamp-source.js';
import { InvalidUsage, ReadBelowSince } from '../persist/errors.js';
import { assertShardId, type ShardId } from '../persist/shard-id.js';
import type { Timestamp } from '../persist/time.js';
import { dataSubscribe$ } from '../operators/data-subscribe.js';
import { Tidy } from '../txn/tidy.js';
import type { TxnsHandle } from '../txn/txns-handle.js';
import type { ShardEvent } from '../sources/shard-source.js';
import { Arrangement, type ArrangementOptions } from './arrangement.js';
import { KeyLocks } from './key-locks.js';
import type { CommitRows, TransactionCollection, TransactionCollectionRef, TransactionHost } from './read-write-transaction.js';

/**
 * Options of {@link TxnsTransactionHost}.
 *
 * Example:
 * ```ts
 * const host = new TxnsTransactionHost(txns, { oracle, locks: new KeyLocks() });
 * ```
 */
export interface TxnsTransactionHostOptions<K = unknown> {
  /** The timestamp oracle (required for strict serializable transactions). */
  oracle?: TimestampOracle;
  /** Shared with blind writers that must wait for transactions' key locks. Default: a new one. */
  locks?: KeyLocks;
  /** Key order for scans. */
  compareKeys?: ArrangementOptions<K>['compareKeys'];
  /** Maps what transactions name (e.g. a collection name) to a collection of this host (made with `hosted`). */
  resolve?: (ref: TransactionCollectionRef<unknown, unknown>) => TransactionCollection<unknown, unknown>;
}

/**
 * How a collection maps onto the handle's data shards: its shard, how its rows
 * become the handle's, and its decoded events (the default: the shard itself, in
 * the handle's types, through `dataSubscribe$`).
 *
 * Example:
 * ```ts
 * host.hosted(dataId, {
 *   name: 'accounts',
 *   encode: (key: string, val: number) => [Codecs.string.encode(key), Codecs.json().encode(val)],
 *   events$: (asOf) => accountsEvents$(asOf),
 * });
 * ```
 */
export interface HostedCollectionOptions<K, V, HK, HV> {
  /** The name in locks and error messages (default: the shard id). */
  name?: string;
  /** A row in the handle's key and value types. */
  encode(key: K, val: V): [HK, HV];
  /** The collection's events read as of `asOf`, with logical progress. */
  events$(asOf: Timestamp): Observable<ShardEvent<K, V>>;
}

/** A collection of this host: what transactions name, plus what the host needs to commit to it. */
class HostedCollection<K, V, HK, HV> implements TransactionCollection<K, V> {
  constructor(
    readonly name: string,
    readonly dataId: ShardId,
    readonly options: HostedCollectionOptions<K, V, HK, HV>,
    readonly arrangement: () => Promise<Arrangement<K, V>>,
  ) {}
}

interface Arranged<K, V> {
  arrangement: Promise<Arrangement<K, V>>;
  /** Set once the arrangement is following its collection. */
  ready?: Arrangement<K, V>;
  subscription?: Subscription;
}

/**
 * What read-write transactions need, built from one TxnsHandle (its data shards are the
 * collections): key locks, an optional oracle, and one shared Arrangement per collection, compacted
 * to the oldest pinned read timestamp.
 *
 * Example:
 * ```ts
 * const host = new TxnsTransactionHost(txns, { oracle });
 * const accounts = host.collection(accountsId);
 * const tx = await ReadWriteTransaction.begin(host, { isolation: 'serializable' });
 * await tx.set(accounts, 'alice', 5);
 * await tx.commit();
 * await host.close();
 * ```
 */
export class TxnsTransactionHost<HK, HV> implements TransactionHost {
  /** The key locks of this host's transactions. */
  readonly locks: KeyLocks;
  readonly oracle: TimestampOracle | undefined;
  private readonly arranged = new Map<ShardId, Arranged<any, any>>();
  /** Pinned read timestamps, with counts. */
  private readonly pins = new Map<Timestamp, number>();
  private tidy = new Tidy();
  private closed = false;

  /**
   * A host over `txns`'s data shards; arrangements are opened on first use.
   *
   * @param opts The oracle, shared locks, key order and how to resolve collection names.
   */
  constructor(
    /** The handle whose data shards are the collections, and that commits go through. */
    readonly txns: TxnsHandle<HK, HV>,
    private readonly opts: TxnsTransactionHostOptions<unknown> = {},
  ) {
    this.locks = opts.locks ?? new KeyLocks();
    this.oracle = opts.oracle;
    if (opts.resolve) this.resolve = opts.resolve;
  }

  resolve?: (ref: TransactionCollectionRef<unknown, unknown>) => TransactionCollection<unknown, unknown>;

  /** The collection that is data shard `dataId` (registered with the txns shard), in the handle's own types. */
  collection(dataId: ShardId): TransactionCollection<HK, HV> {
    const { client, txnsId, dataCodecs: codecs } = this.txns;
    return this.hosted(dataId, {
      encode: (k, v) => [k, v],
      events$: (asOf) => dataSubscribe$(client, txnsId, dataId, { codecs, asOf }),
    });
  }

  /** A collection stored in data shard `dataId` with types of its own (e.g. encoded to bytes for the handle). */
  hosted<K, V>(dataId: ShardId, options: HostedCollectionOptions<K, V, HK, HV>): TransactionCollection<K, V> {
    assertShardId(dataId, 'collection data shard id');
    return new HostedCollection(options.name ?? dataId, dataId, options, () => this.arrangement(dataId, options));
  }

  recentUpper(): Promise<Timestamp> {
    return this.txns.fetchRecentUpper();
  }

  knownUpper(): Timestamp {
    // The arrangements follow every process's commits; the handle's cache its own.
    let upper = this.txns.readCache().progressExclusive;
    for (const { ready } of this.arranged.values()) if (ready) upper = Math.max(upper, ready.frontier);
    return upper;
  }

  async applyBelow(upper: Timestamp): Promise<void> {
    if (upper > 0) this.tidy.merge(await this.txns.applyLe(upper - 1));
  }

  async commitExact(rows: CommitRows, ts: Timestamp, expectUpper: Timestamp): Promise<CommitAttempt<{ ok: true }>> {
    const txn = this.txns.begin();
    for (const [collection, rs] of rows) {
      if (!(collection instanceof HostedCollection)) throw new InvalidUsage('a transaction wrote to a collection of another host');
      const c = collection as HostedCollection<unknown, unknown, HK, HV>;
      await txn.writeMany(
        c.dataId,
        rs.map(([k, v, d]) => [...c.options.encode(k, v), d] as const),
      );
    }
    txn.tidy(this.takeTidy());
    const res = await txn.commitAt(this.txns, ts, { expectUpper });
    if (!res.ok) {
      this.tidy.merge(txn.takeTidy());
      await txn.discard();
      return res;
    }
    this.tidy.merge(await res.apply.apply(this.txns));
    return { ok: true };
  }

  async sealThrough(ts: Timestamp): Promise<void> {
    // An empty commit at ts; refused only if the upper is already past it, which is what we want.
    const res = await this.txns.begin().commitAt(this.txns, ts);
    if (res.ok) this.tidy.merge(await res.apply.apply(this.txns));
  }

  pinReadTs(ts: Timestamp): () => void {
    this.pins.set(ts, (this.pins.get(ts) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = this.pins.get(ts)! - 1;
      if (n === 0) this.pins.delete(ts);
      else this.pins.set(ts, n);
      this.compact();
    };
  }

  /** Stops following every collection. Transactions still open fail on their next read. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.arranged.values()];
    this.arranged.clear();
    for (const a of all) a.subscription?.unsubscribe();
    await Promise.allSettled(all.map((a) => a.arrangement));
  }

  private takeTidy(): Tidy {
    const t = this.tidy;
    this.tidy = new Tidy();
    return t;
  }

  private oldestPin(): Timestamp | undefined {
    let min: number | undefined;
    for (const ts of this.pins.keys()) if (min === undefined || ts < min) min = ts;
    return min;
  }

  private arrangement<K, V>(dataId: ShardId, options: HostedCollectionOptions<K, V, HK, HV>): Promise<Arrangement<K, V>> {
    if (this.closed) return Promise.reject(new InvalidUsage('the transaction host was closed; open the database again'));
    let a = this.arranged.get(dataId) as Arranged<K, V> | undefined;
    if (!a) {
      const entry: Arranged<K, V> = { arrangement: Promise.resolve(undefined as never) };
      entry.arrangement = (async () => {
        let asOf = this.oldestPin() ?? Math.max(0, (await this.recentUpper()) - 1);
        for (;;) {
          const arr = new Arrangement<K, V>({ asOf, compareKeys: this.opts.compareKeys });
          const events$ = options.events$(asOf);
          entry.subscription = arr.follow(events$);
          try {
            // The read at asOf waits for the commits below it to be applied; apply
            // them, in case their committer died before it could.
            await this.applyBelow(asOf + 1);
            await arr.waitForFrontier(asOf);
          } catch (err) {
            // Other readers let the shard compact past the time we wanted: start at its since
            // (transactions that have not read yet move their read timestamp up to it).
            if (!(err instanceof ReadBelowSince) || err.since <= asOf) throw err;
            entry.subscription.unsubscribe();
            asOf = err.since;
            continue;
          }
          entry.ready = arr;
          return arr;
        }
      })();
      this.arranged.set(dataId, (a = entry));
    }
    return a.arrangement;
  }

  /** Folds history nobody can read any more: below the oldest pin, or all but the latest complete time. */
  private compact(): void {
    const oldest = this.oldestPin();
    for (const { ready: arr } of this.arranged.values()) {
      if (!arr) continue;
      const target = Math.min(oldest ?? Infinity, arr.frontier - 1);
      if (target > arr.since) arr.compactTo(target);
    }
  }
}
