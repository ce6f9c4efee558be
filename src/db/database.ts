/**
 * openDatabase / Database: the front door. One URL opens everything a program
 * needs to commit atomically across named collections and follow them live.
 *
 * A Database owns, for its location:
 * - a {@link PersistClient} (the location's Blob and Consensus);
 * - the database's txns shard, named in the catalog (catalog.ts), and one
 *   {@link TxnsHandle} on it over byte-valued data shards (collection.ts says why);
 * - the timestamp oracle: the location's durable one (`openTimestampOracle(url)`,
 *   so every process on the location shares one timeline), unless one is passed;
 * - a {@link GroupCommitter}: concurrent `write`s become one commit each round;
 * - one {@link TxnsRead} shared by every subscription and snapshot.
 *
 * Rules:
 * - `collection(name, { key, val })` creates the collection in the catalog or opens
 *   it, and registers its shard with the txns shard through this database (an
 *   idempotent step that also repairs a creator that crashed in between). Opening
 *   it with codecs of other names throws {@link CollectionCodecMismatch}; codecs
 *   may be left out for collections whose codecs are built in (string, bytes,
 *   unit, json).
 * - `write({ name: rows, … })` is atomic across the names: one group commit, one
 *   timestamp. It resolves once durable and readable (`ack: 'readable'`, the
 *   default: a `subscribe$` or `snapshot` started afterwards sees it) or once
 *   durable (`ack: 'durable'`). Every name must be open in this database
 *   ({@link CollectionNotFound}); bad rows are refused before anything is written.
 * - `subscribe$(name | names, { asOf })` is cold: each subscription picks its own
 *   `asOf`, by default the oracle's read time *when it subscribes*, and opens its
 *   own readers, so `retry()`, `repeat()`, `share()` and late subscribers work. One
 *   name gives that collection's events; several give one stream at their least
 *   common frontier ({@link mergeCollections}), each updates event naming its
 *   collection, so no progress event ever shows half a transaction.
 * - A read below a collection's since fails with {@link CollectionReadBelowSince},
 *   which says from which time it is readable. Only an `asOf` the caller gave can: a
 *   read as of "now" whose time the since passed before its readers opened (another
 *   process moved it) reads at that since instead.
 * - `close()` refuses new work, finishes every write already accepted, ends every
 *   open subscription (they complete), and releases readers, writers, timers, the
 *   oracle (unless passed in) and the location: the process can then exit.
 * - Metrics: every layer counts into the registry of the `metrics` option (prom-client's
 *   global one by default): storage, persist, txn, group commit, and the frontier lag
 *   of each collection's live readers (reader-lag.ts). `metrics()` is the text
 *   exposition, `metricsHandler()` / `serveMetrics()` serve it (metrics-http.ts).
 *
 * Worked example:
 * ```ts
 * const db = await openDatabase('file:./data');
 * await db.collection('accounts', { key: Codecs.string, val: Codecs.unit });
 * await db.collection('audit', { key: Codecs.json(), val: Codecs.unit });
 * const { commitTs } = await db.write({ accounts: [['alice', null, 10]], audit: [[{ by: 'alice' }, null, 1]] });
 * const snap = await db.snapshot(['accounts', 'audit'], commitTs);
 * snap.collections.accounts;   // [['alice', null, 10]]
 * await db.close();
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { Observable, Subject, catchError, concatMap, defer, finalize, forkJoin, from, lastValueFrom, map, switchMap, takeUntil, tap, type OperatorFunction } from 'rxjs';
import { GroupCommitter, type GroupCommitOptions } from '../coord/group-commit.js';
import { openTimestampOracle } from '../coord/open-oracle.js';
import type { TimestampOracle } from '../coord/timestamp-oracle.js';
import { arrayOf, checkCodecs, invalidArgument, optionsObject } from '../persist/argument-checks.js';
import { PersistClient, type PersistClientOptions } from '../persist/client.js';
import { Codecs, type ShardCodecs } from '../persist/codec.js';
import { InvalidArgument, InvalidUsage, ReadBelowSince } from '../persist/errors.js';
import { Metrics } from '../persist/metrics.js';
import type { ShardId } from '../persist/shard-id.js';
import { assertDiff, assertTimestamp, type Timestamp } from '../persist/time.js';
import type { Update } from '../persist/update.js';
import { TxnsHandle } from '../txn/txns-handle.js';
import { TxnsRead } from '../txn/txns-read.js';
import { collectUntil } from '../operators/collect-until.js';
import { dataSubscribe$ } from '../operators/data-subscribe.js';
import { mergeCollections, type CollectionEvent } from '../operators/merge-collections.js';
import type { ShardEvent } from '../sources/shard-source.js';
import { createEntry, dropEntry, listEntries, readEntry, txnsShard, type CatalogStore } from './catalog.js';
import { Collection, builtInCodec, checkCollectionName } from './collection.js';
import { CollectionCodecMismatch, CollectionNotFound, CollectionReadBelowSince, DatabaseClosed } from './errors.js';
import { metricsHandler, serveMetrics, type MetricsServer, type ServeMetricsOptions } from './metrics-http.js';
import { ReaderLag, ReaderMetrics } from './reader-lag.js';
import { ReadWriteTransaction, type TransactionCollection, type TransactionCollectionRef, type TransactionOptions } from './read-write-transaction.js';
import { transact, type TransactOptions } from './transact.js';
import { TxnsTransactionHost } from './txns-transaction-host.js';

type Bytes = Uint8Array;
/** Data shards hold encoded keys and values (collection.ts). */
const BYTES: ShardCodecs<Bytes, Bytes> = { key: Codecs.bytes, val: Codecs.bytes };
const ORACLE_METHODS = ['writeTs', 'peekWriteTs', 'readTs', 'applyWrite', 'close'] as const;

/**
 * Options of {@link openDatabase}.
 *
 * Example:
 * ```ts
 * const db = await openDatabase('file:./data', { ack: 'durable', groupCommit: { maxWaitForNowMs: 50 } });
 * ```
 */
export interface OpenDatabaseOptions {
  /**
   * When `write` resolves: once the commit is durable and applied, so reads started
   * afterwards see it (`'readable'`, the default), or once durable (`'durable'`).
   */
  ack?: 'readable' | 'durable';
  /** The timestamp oracle (not owned: close it yourself). Default: the location's durable one. */
  oracle?: TimestampOracle;
  /** Options of the PersistClient (config overrides, file modes). */
  persist?: PersistClientOptions;
  /**
   * Group commit tuning: `maxWaitForNowMs`, `now`, and `compactEvery` (default 100:
   * the txns shard is compacted to the latest commit every 100 group commits; 0 never
   * compacts it, and its log of commits then grows forever).
   */
  groupCommit?: Pick<GroupCommitOptions, 'maxWaitForNowMs' | 'compactEvery' | 'now'>;
  /**
   * Where every layer's metrics go (`Metrics.forRegistry(registry)`): storage,
   * persist, txn, group commit and reader lag. Default: prom-client's global registry.
   * (`persist.metrics`, if given, must be the same object.)
   */
  metrics?: Metrics;
}

/**
/**
 * Group commits between two `compactTo` of the database's txns shard. Without it the
 * txns shard's since stays where it began: its history of commits and tidies never
 * consolidates, so it grows with every commit and every process that opens the
 * database reads all of it into its TxnsCache. Compacting to the latest commit is safe
 * (spec §2.13, the storage-controller pattern): the handle that compacts serves no
 * reads, and every reader holds its own since on the txns shard. One compactTo costs one
 * state compare-and-set, 1% of the commits at 100.
 *
 * Example:
 * ```ts
 * const db = await openDatabase(url, { groupCommit: { compactEvery: DEFAULT_TXNS_COMPACT_EVERY * 10 } });
 * ```
 */
export const DEFAULT_TXNS_COMPACT_EVERY = 100;

/** How long a reader trails committed data before this process applies it itself (Database.applyIfStalled). */
const STALLED_APPLY_AFTER_S = 1;
/** How often the readers are checked for that. */
const STALL_CHECK_MS = 500;

/**
 * One row of a write: `diff` copies of `(key, val)` added (negative: removed).
 *
 * Example:
 * ```ts
 * const row: CollectionRow<string, null> = ['alice', null, -10];
 * ```
 */
export type CollectionRow<K = unknown, V = unknown> = readonly [key: K, val: V, diff: number];

/**
 * Rows per collection name, as a plain object or a Map.
 *
 * Example:
 * ```ts
 * const writes: CollectionWrites = { accounts: [['alice', null, -10], ['bob', null, 10]], audit: [['t1', null, 1]] };
 * await db.write(writes);
 * ```
 */
export type CollectionWrites =
  | Readonly<Record<string, Iterable<CollectionRow<any, any>>>>
  | ReadonlyMap<string, Iterable<CollectionRow<any, any>>>;

/**
 * A collection given by name or by its handle.
 *
 * Example:
 * ```ts
 * const accounts = await db.collection('accounts');
 * db.subscribe$(accounts);     // a handle …
 * db.subscribe$('accounts');   // … or its name
 * ```
 */
export type CollectionRef<K = unknown, V = unknown> = string | Collection<K, V>;

/**
 * Options of `db.subscribe$`: when to read as of, and when to stop.
 *
 * Example:
 * ```ts
 * db.subscribe$('accounts', { asOf: commitTs, until: commitTs + 100 });
 * ```
 */
export interface DatabaseReadOptions {
  /** The time to read as of (default: the oracle's read time when the subscription starts). */
  asOf?: Timestamp;
  /** Complete once progress reaches this (default: never). */
  until?: Timestamp;
}

/**
 * A consistent read of several collections at one time.
 *
 * Example:
 * ```ts
 * const snap: DatabaseSnapshot = await db.snapshot(['accounts', 'audit']);
 * snap.asOf;                    // the time it read at
 * snap.collections.accounts;    // [['alice', null, 10], …]
 * ```
 */
export interface DatabaseSnapshot {
  /** The time read as of: the contents include every write at or before it. */
  asOf: Timestamp;
  /** Per collection name, its rows `[key, val, diff]` (consolidated; diffs never 0). */
  collections: Record<string, [unknown, unknown, number][]>;
}

/**
 * What `collections()` lists per collection: its catalog entry.
 *
 * Example:
 * ```ts
 * for (const c of await db.collections()) console.log(c.name, c.keyCodec, c.valCodec, c.shardId);
 * ```
 */
export interface CollectionInfo {
  /** The collection's name. */
  name: string;
  /** Its data shard. */
  shardId: ShardId;
  /** The name of its key codec. */
  keyCodec: string;
  /** The name of its value codec. */
  valCodec: string;
}

/**
 * Opens the database at `url` (`mem://`, `mem://<name>`, `file:<dir>`,
 * `postgres://…`): creates its txns shard the first time, or finds the one in the
 * catalog. See the module doc.
 *
 * The front door: use it unless you need to manage shards, txns handles or oracles yourself.
 *
 * Example:
 * ```ts
 * const db = await openDatabase('file:./data');
 * await db.collection('accounts', { key: Codecs.string, val: Codecs.unit });
 * const { commitTs } = await db.write({ accounts: [['alice', null, 10]] });
 * (await db.snapshot('accounts', commitTs)).collections.accounts;   // [['alice', null, 10]]
 * await db.close();
 * ```
 */
export async function openDatabase(url: string, options: OpenDatabaseOptions = {}): Promise<Database> {
  if (typeof url !== 'string') {
    throw invalidArgument('openDatabase url', "a location URL string (e.g. 'file:./data', 'mem://', 'postgres://…')", url);
  }
  const opts = optionsObject(options, 'openDatabase options');
  // Omitted takes the default; null is not "omitted" and is refused.
  const ack = opts.ack === undefined ? 'readable' : opts.ack;
  if (ack !== 'readable' && ack !== 'durable') {
    throw invalidArgument('openDatabase option ack', "'readable' or 'durable' (or omitted)", ack);
  }
  const groupOpts = optionsObject(opts.groupCommit, 'openDatabase option groupCommit');
  const given = opts.oracle as Partial<Record<keyof TimestampOracle, unknown>> | undefined;
  // Checked before anything is opened or written (GroupCommitter.open would check it only after).
  if (given !== undefined && (typeof given !== 'object' || given === null || ORACLE_METHODS.some((m) => typeof given[m] !== 'function'))) {
    throw invalidArgument('openDatabase option oracle', `a TimestampOracle (with ${ORACLE_METHODS.join(', ')} methods) or omitted`, given);
  }
  const persistOpts = optionsObject(opts.persist, 'openDatabase option persist');
  const metrics = Metrics.option(opts.metrics, 'openDatabase option metrics', () =>
    Metrics.option(persistOpts.metrics, 'openDatabase option persist.metrics', Metrics.default),
  );
  if (persistOpts.metrics !== undefined && persistOpts.metrics !== metrics) {
    throw new InvalidArgument('openDatabase options metrics and persist.metrics name two different Metrics objects; give one of them');
  }
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const client = await PersistClient.open(url, { ...persistOpts, metrics });
    cleanups.push(() => client.close());
    const store: CatalogStore = { consensus: client.storage.consensus, cfg: client.cfg };
    const txnsId = await txnsShard(store);
    const txns = await TxnsHandle.open(client, { txnsId, codecs: BYTES });
    cleanups.push(() => txns.close());
    const oracle = opts.oracle ?? (await openTimestampOracle(url));
    if (opts.oracle === undefined) cleanups.push(() => oracle.close());
    const committer = await GroupCommitter.open(txns, oracle, {
      ...groupOpts,
      compactEvery: groupOpts.compactEvery ?? DEFAULT_TXNS_COMPACT_EVERY,
      ack: ack === 'readable' ? 'apply' : 'commit',
    });
    cleanups.push(() => committer.close());
    return new Database(client, store, txns, oracle, opts.oracle === undefined, committer);
  } catch (err) {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    throw err;
  }
}

/**
 * Named collections over one location, written atomically and read consistently: what {@link
 * openDatabase} returns. It owns a PersistClient, the database's txns shard and TxnsHandle, the
 * timestamp oracle (unless passed in), a group committer and one shared txns reader.
 *
 * `write` is atomic across the collections it names; `subscribe$` is cold (each
 * subscription reads as of its own time) and, for several names, consistent at their
 * common frontier; `close()` finishes accepted writes and ends every subscription.
 *
 * Example:
 * ```ts
 * const db = await openDatabase('file:./data');
 * await db.collection('accounts', { key: Codecs.string, val: Codecs.unit });
 * await db.collection('audit', { key: Codecs.json(), val: Codecs.unit });
 * const { commitTs } = await db.write({ accounts: [['alice', null, 10]], audit: [[{ by: 'alice' }, null, 1]] });
 * const snap = await db.snapshot(['accounts', 'audit'], commitTs);
 * snap.collections.accounts;   // [['alice', null, 10]]
 * db.subscribe$(['accounts', 'audit']).pipe(forCollection('accounts'), materialize());
 * await db.close();
 * ```
 */
export class Database {
  /** Collections opened here, by name (a promise, so concurrent opens of one name share the work). */
  private readonly opened = new Map<string, Promise<Collection<any, any>>>();
  /** Settled opens, for the synchronous checks of write and subscribe$. */
  private readonly ready = new Map<string, Collection<any, any>>();
  private readonly closing$ = new Subject<void>();
  private closed: Promise<void> | undefined;
  /** What read-write transactions run on; made at the first transaction. */
  private transactionHost: TxnsTransactionHost<Bytes, Bytes> | undefined;
  /** Each open collection as transactions see it, by data shard. */
  private readonly transactionCollections = new Map<ShardId, TransactionCollection<unknown, unknown>>();
  /**
   * What subscriptions read through, made at the first subscription: the process's
   * TxnsRead of the txns shard and the frontier lag of every live reader (the reader
   * gauges, reader-lag.ts). Not at open: a TxnsRead's reader holds the txns shard's
   * since at its progress, which moves only while someone subscribes, so a database
   * that only writes would keep its txns shard from ever compacting.
   */
  private reading: Promise<{ txnsRead: TxnsRead; readerLag: ReaderLag }> | undefined;

  /** @internal Built by {@link openDatabase}. */
  constructor(
    /** The client on the database's location, for the lower layers' APIs. */
    readonly client: PersistClient,
    private readonly store: CatalogStore,
    private readonly txns: TxnsHandle<Bytes, Bytes>,
    /** The timestamp oracle commits and default read times come from. */
    readonly oracle: TimestampOracle,
    private readonly ownsOracle: boolean,
    private readonly committer: GroupCommitter<Bytes, Bytes>,
  ) {}

  /** Checks for readers stuck on a commit nobody applies (see {@link STALLED_APPLY_AFTER_S}). */
  private stallCheck: NodeJS.Timeout | undefined;
  private applyingStalled = false;
  /** Applied through here for stalled readers: a reader that is merely slow costs one apply per txns step, not one per check. */
  private stalledAppliedThrough = -1;

  private readers(): Promise<{ txnsRead: TxnsRead; readerLag: ReaderLag }> {
    this.reading ??= TxnsRead.shared(this.client, this.txns.txnsId).then(
      (txnsRead) => {
        const readerLag = new ReaderLag(txnsRead, ReaderMetrics.of(this.client.metrics));
        this.stallCheck ??= setInterval(() => this.applyIfStalled(txnsRead, readerLag), STALL_CHECK_MS).unref();
        return { txnsRead, readerLag };
      },
      (err: unknown) => {
        this.reading = undefined;
        throw err;
      },
    );
    return this.reading;
  }

  /**
   * A reader that has trailed data known to be committed for {@link STALLED_APPLY_AFTER_S}
   * is usually waiting for an apply that will never come: the committing process died
   * between its commit and its apply (or its apply failed), and reads wait until
   * someone applies. Any process may apply (the first wins), so this one does, through
   * its committer, which keeps the tidy. A reader that is merely slow costs an
   * apply call that finds nothing to do, once per new txns progress.
   */
  private applyIfStalled(txnsRead: TxnsRead, readerLag: ReaderLag): void {
    if (this.applyingStalled || this.closed) return;
    const worst = readerLag.mostBehind();
    if (!worst || worst.seconds < STALLED_APPLY_AFTER_S) return;
    const through = txnsRead.progress - 1;
    if (through <= this.stalledAppliedThrough) return;
    this.applyingStalled = true;
    this.committer
      .applyThrough(through)
      .then(() => {
        this.stalledAppliedThrough = Math.max(this.stalledAppliedThrough, through);
      })
      .catch((err: unknown) => this.client.cfg.logger.warn({ err, through }, 'database: applying a stalled commit failed'))
      .finally(() => {
        this.applyingStalled = false;
      });
  }

  /** The database's txns shard. */
  get txnsId(): ShardId {
    return this.txns.txnsId;
  }

  /** The prom-client registry every metric of this database goes to (`openDatabase` option `metrics`). */
  get metricsRegistry(): Registry {
    return this.client.metrics.registry;
  }

  /**
   * The Prometheus text exposition of the database's registry: storage, persist,
   * txn, group commit and reader-lag families (README "Metrics" lists them), and
   * whatever else is registered there. Serve it with {@link metricsHandler} or
   * {@link serveMetrics}.
   *
   * ```ts
   * console.log(await db.metrics());   // # HELP txnwal_group_commits_total …
   * ```
   */
  metrics(): Promise<string> {
    return this.client.metrics.text();
  }

  /**
   * A `node:http` handler serving {@link metrics} (GET/HEAD, Content-Type
   * `text/plain; version=0.0.4`), to mount in your own server at a path of your choice.
   *
   * ```ts
   * const scrape = db.metricsHandler();
   * http.createServer((req, res) => (req.url === '/metrics' ? scrape(req, res) : app(req, res))).listen(8080);
   * ```
   */
  metricsHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    return metricsHandler(this);
  }

  /**
   * Serves {@link metrics} at `http://host:port/metrics` (host default `127.0.0.1`;
   * port 0 picks a free one) until `close()` on the result; closing the database
   * does not stop it.
   *
   * ```ts
   * const server = await db.serveMetrics({ port: 9464 });   // server.url: http://127.0.0.1:9464/metrics
   * await server.close();
   * ```
   */
  serveMetrics(options: ServeMetricsOptions): Promise<MetricsServer> {
    return serveMetrics(this, options);
  }

  /**
   * Creates the collection `name` or opens the existing one. `codecs` may be left
   * out when the collection exists and its codecs are built in. Throws
   * {@link CollectionCodecMismatch} if it exists with codecs of other names.
   */
  async collection<K, V>(name: string, codecs?: ShardCodecs<K, V>): Promise<Collection<K, V>> {
    this.checkOpen('open a collection');
    checkCollectionName(name);
    if (codecs !== undefined) checkCodecs(codecs, `db.collection(${JSON.stringify(name)}) codecs`);
    let opening = this.opened.get(name);
    if (!opening) {
      opening = this.openCollection(name, codecs);
      this.opened.set(name, opening);
      const mine = opening;
      // Only while still current: a drop meanwhile forgot this open.
      mine.then(
        (c) => {
          if (this.opened.get(name) === mine) this.ready.set(name, c);
        },
        () => {
          if (this.opened.get(name) === mine) this.opened.delete(name);
        },
      );
    }
    const coll = await opening;
    if (codecs !== undefined && (codecs.key.name !== coll.codecs.key.name || codecs.val.name !== coll.codecs.val.name)) {
      throw new CollectionCodecMismatch(name, codecNames(coll.codecs), codecNames(codecs));
    }
    return coll as Collection<K, V>;
  }

  private async openCollection<K, V>(name: string, given: ShardCodecs<K, V> | undefined): Promise<Collection<K, V>> {
    const entry = given
      ? (await createEntry(this.store, name, { keyCodec: given.key.name, valCodec: given.val.name })).entry
      : await readEntry(this.store, name);
    if (!entry) throw new CollectionNotFound(name, this.openNames(), `create it with db.collection(${JSON.stringify(name)}, { key, val })`);
    let codecs = given;
    if (!codecs) {
      const key = builtInCodec(entry.keyCodec);
      const val = builtInCodec(entry.valCodec);
      if (!key || !val) {
        throw new InvalidUsage(
          `collection ${JSON.stringify(name)} uses codecs { key: ${JSON.stringify(entry.keyCodec)}, val: ${JSON.stringify(entry.valCodec)} }, ` +
            `which are not built in; pass them: db.collection(${JSON.stringify(name)}, { key, val })`,
        );
      }
      codecs = { key, val } as ShardCodecs<K, V>;
    }
    const stored = { key: entry.keyCodec, val: entry.valCodec };
    if (stored.key !== codecs.key.name || stored.val !== codecs.val.name) throw new CollectionCodecMismatch(name, stored, codecNames(codecs));
    // Idempotent, and needed in every process: a handle commits only to shards
    // registered through it. It also registers a shard whose creator crashed
    // between writing the catalog entry and registering.
    const writer = await this.client.openWriter(entry.shardId, BYTES, { purpose: `db collection ${name}` });
    await this.committer.register([writer]);
    return new Collection(name, entry.shardId, codecs);
  }

  /** Every collection in the catalog (not only those open here), sorted by name. */
  async collections(): Promise<CollectionInfo[]> {
    this.checkOpen('list collections');
    return (await listEntries(this.store)).map((e) => ({ name: e.name, shardId: e.shardId, keyCodec: e.keyCodec, valCodec: e.valCodec }));
  }

  /**
   * Drops the collection `name`: removes it from the catalog, then forgets its shard
   * in the txns shard (after every write to it was applied). Writes to it still
   * waiting are skipped. Resolves with whether there was such a collection.
   */
  async drop(name: string): Promise<boolean> {
    this.checkOpen('drop a collection');
    checkCollectionName(name);
    // Writes and reads here stop seeing it at once.
    this.opened.delete(name);
    this.ready.delete(name);
    const entry = await dropEntry(this.store, name);
    if (!entry) return false;
    await this.committer.forget([entry.shardId]);
    return true;
  }

  /**
   * Commits `writes` (rows per collection name) atomically, at one timestamp, and
   * resolves with it once durable and (with `ack: 'readable'`) readable.
   */
  write(writes: CollectionWrites): Promise<{ commitTs: Timestamp }> {
    try {
      this.checkOpen('write');
      // A key a read-write transaction of this process holds is written after it ends;
      // the keys are only collected while some transaction holds a lock.
      const locks = this.transactionHost?.locks;
      const keys = locks && locks.size > 0 ? new Map<string, unknown[]>() : undefined;
      const encoded = this.encodeWrites(writes, keys);
      if (!locks || !keys) return this.committer.submitWrite(encoded);
      return (async () => {
        for (const [name, ks] of keys) await locks.waitUnlocked(name, ks);
        return this.committer.submitWrite(encoded);
      })();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Begins a read-write transaction (read-write-transaction.ts): reads at one
   * read timestamp, `getForUpdate` / `set` / `delete` / `add` lock keys in this
   * process and validate them, `commit()` chooses the commit timestamp last and
   * validates against every commit before it, in any process. Collections are
   * named by name or by their Collection handle, and must be open here.
   *
   * ```ts
   * const tx = await db.transaction({ isolation: 'serializable' });
   * const balance = (await tx.getForUpdate('accounts', 'alice')) ?? 0;
   * await tx.set('accounts', 'alice', balance + 10);
   * await tx.commit();
   * ```
   */
  transaction(options: TransactionOptions = {}): Promise<ReadWriteTransaction> {
    try {
      this.checkOpen('begin a transaction');
      optionsObject(options, 'db.transaction options');
      return ReadWriteTransaction.begin(this.transactions(), options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Runs `fn` in a read-write transaction and commits it, running it again on a
   * conflict (transact.ts: jittered backoff, `maxAttempts`, TooManyConflicts).
   */
  transact<R>(fn: (tx: ReadWriteTransaction) => Promise<R>, options: TransactOptions = {}): Promise<{ value: R; commitTs: Timestamp; attempts: number }> {
    try {
      this.checkOpen('run a transaction');
      if (typeof fn !== 'function') throw invalidArgument('db.transact fn', 'an async function (tx) => …', fn);
      optionsObject(options, 'db.transact options');
      return transact(this.transactions(), fn, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The Observable form of `write`, for pipelines: each value is one `write`,
   * committed in input order (each after the previous one resolved), one
   * `{ commitTs }` per value.
   */
  sink(): OperatorFunction<CollectionWrites, { commitTs: Timestamp }> {
    return (source) => source.pipe(concatMap((writes) => this.write(writes)));
  }

  /** One collection's events (single name) or several collections' at one frontier (array of names). */
  subscribe$<K = unknown, V = unknown>(collection: CollectionRef<K, V>, opts?: DatabaseReadOptions): Observable<ShardEvent<K, V>>;
  subscribe$(collections: readonly CollectionRef<any, any>[], opts?: DatabaseReadOptions): Observable<CollectionEvent>;
  subscribe$(target: CollectionRef<any, any> | readonly CollectionRef<any, any>[], opts: DatabaseReadOptions = {}): Observable<unknown> {
    this.checkOpen('subscribe');
    const { asOf, until } = checkReadOptions('db.subscribe$', opts);
    const many = Array.isArray(target);
    const colls = this.resolve(many ? target : [target as CollectionRef], 'db.subscribe$');
    return this.readAt(asOf, (at): Observable<unknown> => {
      if (!many) return this.collection$(colls[0]!, at, until);
      const inputs: Record<string, Observable<ShardEvent<unknown, unknown>>> = {};
      for (const c of colls) inputs[c.name] = this.collection$(c, at, until);
      return mergeCollections(inputs);
    }).pipe(takeUntil(this.closing$));
  }

  /**
   * One consistent read of `collections` as of `asOf` (default: the oracle's read
   * time now): every write at or before it, nothing after.
   */
  async snapshot(collections: CollectionRef<any, any> | readonly CollectionRef<any, any>[], asOf?: Timestamp): Promise<DatabaseSnapshot> {
    this.checkOpen('read a snapshot');
    if (asOf !== undefined) assertTimestamp(asOf, 'db.snapshot asOf');
    const colls = this.resolve(Array.isArray(collections) ? collections : [collections as CollectionRef], 'db.snapshot');
    const snapshot$ = this.readAt(asOf, (at) =>
      forkJoin(colls.map((c) => this.collection$(c, at, at + 1).pipe(collectUntil<unknown, unknown>(at + 1)))).pipe(
        map((results): DatabaseSnapshot => {
          const out: DatabaseSnapshot = { asOf: at, collections: {} };
          colls.forEach((c, i) => (out.collections[c.name] = results[i]!.map(([k, v, , d]) => [k, v, d])));
          return out;
        }),
      ),
    );
    return lastValueFrom(snapshot$.pipe(takeUntil(this.closing$)));
  }

  /**
   * Finishes every accepted write, ends every subscription (they complete) and
   * releases everything the database holds. Idempotent.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      clearInterval(this.stallCheck);
      const steps: (() => Promise<void>)[] = [
        () => this.committer.close(),
        async () => {
          this.closing$.next();
          this.closing$.complete();
        },
        async () => this.transactionHost?.close(),
        async () => {
          const reading = await this.reading?.catch(() => undefined);
          reading?.readerLag.close();
          await reading?.txnsRead.close();
        },
        () => this.txns.close(),
        ...(this.ownsOracle ? [() => this.oracle.close()] : []),
        () => this.client.close(),
      ];
      // Every step runs even if one fails, so nothing is left holding the process.
      let first: unknown;
      for (const step of steps) {
        await step().catch((err: unknown) => {
          first ??= err;
        });
      }
      if (first !== undefined) throw first;
    })();
    return this.closed;
  }

  // ---------- helpers ----------

  /** The transaction host, made on first use: this database's txns handle, oracle and readers. */
  private transactions(): TxnsTransactionHost<Bytes, Bytes> {
    this.transactionHost ??= new TxnsTransactionHost(this.txns, {
      oracle: this.oracle,
      resolve: (ref) => this.transactionCollection(ref),
    });
    return this.transactionHost;
  }

  /** A collection open here, as transactions see it: its name, its rows encoded for the shard, its decoded events. */
  private transactionCollection(ref: TransactionCollectionRef<unknown, unknown>): TransactionCollection<unknown, unknown> {
    const named = typeof ref === 'string' || ref instanceof Collection ? ref : undefined;
    if (named === undefined) throw invalidArgument('transaction collection', 'a collection name or a Collection of this database', ref);
    const coll = this.resolve([named], 'transaction')[0]!;
    let hosted = this.transactionCollections.get(coll.shardId);
    if (!hosted) {
      const { key, val } = coll.codecs;
      hosted = this.transactions().hosted<unknown, unknown>(coll.shardId, {
        name: coll.name,
        encode: (k, v) => [key.encode(k), val.encode(v)],
        events$: (asOf) => this.collection$(coll, asOf, undefined).pipe(takeUntil(this.closing$)),
      });
      this.transactionCollections.set(coll.shardId, hosted);
    }
    return hosted;
  }

  private checkOpen(op: string): void {
    if (this.closed) throw new DatabaseClosed(op);
  }

  private openNames(): string[] {
    return [...this.ready.keys()].sort();
  }

  /** The open collections `refs` name; throws CollectionNotFound for one that is not open here. */
  private resolve(refs: readonly CollectionRef<any, any>[], fn: string): Collection<any, any>[] {
    const list = arrayOf(refs, `${fn} collections`);
    if (list.length === 0) throw new InvalidArgument(`${fn}: name at least one collection`);
    const seen = new Set<string>();
    return list.map((ref) => {
      const name = ref instanceof Collection ? ref.name : ref;
      if (typeof name !== 'string') throw invalidArgument(`${fn} collection`, 'a collection name or a Collection', ref);
      const coll = this.ready.get(name);
      if (!coll) throw new CollectionNotFound(name, this.openNames());
      if (ref instanceof Collection && ref.shardId !== coll.shardId) {
        throw new InvalidUsage(`${fn}: the Collection handle for ${JSON.stringify(name)} is of a dropped collection; open it again with db.collection`);
      }
      if (seen.has(name)) throw new InvalidArgument(`${fn}: collection ${JSON.stringify(name)} is named twice`);
      seen.add(name);
      return coll;
    });
  }

  /**
   * `read(at)` at the time the caller asked for, or, when it asked for none, at the
   * oracle's read time now. A time of its own choosing that is already below the since
   * when the readers open (another process's readers or txns compaction moved it between
   * the oracle's answer and the read) is not the caller's mistake: it reads again at
   * that since, which is as much "now" as the first time was. Only a read that has
   * emitted nothing is read again, so no event is ever seen twice.
   */
  private readAt<T>(asOf: Timestamp | undefined, read: (at: Timestamp) => Observable<T>): Observable<T> {
    if (asOf !== undefined) return read(asOf);
    const attempt = (at: Timestamp): Observable<T> =>
      defer(() => {
        let emitted = false;
        return read(at).pipe(
          tap(() => (emitted = true)),
          catchError((err: unknown) => {
            if (emitted || !(err instanceof ReadBelowSince) || err.since <= at) throw err;
            return attempt(err.since);
          }),
        );
      });
    return defer(() => from(this.oracle.readTs())).pipe(switchMap(attempt));
  }

  /** One collection's decoded events with logical progress, read as of `asOf`. */
  private collection$<K, V>(coll: Collection<K, V>, asOf: Timestamp, until: Timestamp | undefined): Observable<ShardEvent<K, V>> {
    const { key, val } = coll.codecs;
    const events$ = defer(() => this.readers()).pipe(
      switchMap(({ txnsRead, readerLag }) => {
        // Counted in the reader-lag gauges while subscribed.
        const tracked = readerLag.track(coll.name, asOf);
        return dataSubscribe$(this.client, this.txns.txnsId, coll.shardId, { codecs: BYTES, asOf, until, txnsRead }).pipe(
          tap((ev) => {
            if (ev.kind === 'progress') tracked.advance(ev.upper);
          }),
          finalize(() => tracked.close()),
        );
      }),
    );
    return events$.pipe(
      map((ev): ShardEvent<K, V> => {
        if (ev.kind === 'progress') return ev;
        return { kind: 'updates', updates: ev.updates.map(([k, v, t, d]): Update<K, V> => [key.decode(k), val.decode(v), t, d]) };
      }),
      catchError((err: unknown) => {
        if (err instanceof ReadBelowSince && !(err instanceof CollectionReadBelowSince)) {
          throw new CollectionReadBelowSince(coll.name, err.asOf, err.since);
        }
        throw err;
      }),
    );
  }

  /** Checks every row and encodes it with its collection's codecs, keyed by data shard; `keys` gets each collection's keys. */
  private encodeWrites(writes: CollectionWrites, keys?: Map<string, unknown[]>): Map<ShardId, [Bytes, Bytes, number][]> {
    const isMap = writes instanceof Map;
    const proto: unknown = typeof writes === 'object' && writes !== null ? Object.getPrototypeOf(writes) : undefined;
    if (!isMap && proto !== Object.prototype && proto !== null) {
      throw invalidArgument('db.write writes', "an object of rows per collection name (e.g. { accounts: [['alice', null, 1]] })", writes);
    }
    const entries = isMap ? [...writes.entries()] : Object.entries(writes);
    const out = new Map<ShardId, [Bytes, Bytes, number][]>();
    for (const [name, rows] of entries) {
      const coll = this.ready.get(name);
      if (!coll) throw new CollectionNotFound(name, this.openNames());
      const { key, val } = coll.codecs;
      const encoded: [Bytes, Bytes, number][] = [];
      const names: unknown[] = [];
      keys?.set(name, names);
      let i = 0;
      for (const row of arrayOf(rows as Iterable<CollectionRow>, `rows written to ${JSON.stringify(name)}`)) {
        const what = `row ${i} written to ${JSON.stringify(name)}`;
        if (!Array.isArray(row) || row.length !== 3) throw invalidArgument(what, 'an array [key, val, diff]', row);
        assertDiff(row[2], `diff of ${what}`);
        try {
          encoded.push([key.encode(row[0]), val.encode(row[1]), row[2]]);
          if (keys) names.push(row[0]);
        } catch (err) {
          if (err instanceof InvalidArgument) throw new InvalidArgument(`${what}: ${err.message}`);
          throw err;
        }
        i++;
      }
      out.set(coll.shardId, encoded);
    }
    return out;
  }
}

function codecNames(codecs: ShardCodecs<unknown, unknown>): { key: string; val: string } {
  return { key: codecs.key.name, val: codecs.val.name };
}

function checkReadOptions(fn: string, opts: DatabaseReadOptions): DatabaseReadOptions {
  const o = optionsObject(opts, `${fn} options`);
  if (o.asOf !== undefined) assertTimestamp(o.asOf, `${fn} option asOf`);
  if (o.until !== undefined && !(o.until === Infinity || (typeof o.until === 'number' && Number.isSafeInteger(o.until) && o.until >= 0))) {
    throw invalidArgument(`${fn} option until`, 'a timestamp or Infinity (or omitted)', o.until);
  }
  return o;
}

