/**
 * TxnsHandle: atomic writes to many data shards through one txns shard (spec §2.3).
 *
 * The txns shard is a write-ahead log. Each operation is one compare-and-append on
 * it, retried on an upper mismatch, and each consumes its timestamp: afterwards the
 * txns upper is `ts + 1` even if nothing was written.
 * - `register(ts, writers)`: the shards join the txns set; commits to them are
 *   allowed at times `> ts`. Idempotent. A data shard belongs to one txns shard:
 *   registering it with a second one throws RegisteredWithAnotherTxnsShard before
 *   anything is written (the durable claim is in data-shard-claim.ts).
 * - `forget(ts, ids)` / `forgetAll(ts)`: the shards leave the set (after every
 *   commit to them is applied) and may be written directly again, or registered
 *   with another txns shard (the claim is released). Idempotent.
 * - `begin()` → {@link Txn} → `commitAt(txns, ts)`: pointers to uploaded batches are
 *   written at `ts`; the commit advances the *logical* upper of every registered
 *   shard to `ts + 1` at once.
 * - `applyLe(ts)`: appends every committed batch `<= ts` to its data shard, in time
 *   order; reads at a commit's time wait until this happened. Any handle in any
 *   process may apply: the first wins, the rest see the data upper past the commit
 *   and skip. Returns the {@link Tidy} that retracts the applied pointers.
 * - `compactTo(ts)`: lets the txns shard compact, never past unapplied work.
 *
 * A taken timestamp is a value, `{ ok: false, current }`, where `current` is the
 * least time that would work. Misuse (committing to a shard that is not registered,
 * or not through the handle that registered it) throws before anything is written.
 *
 * Every entry checks its arguments first and throws an InvalidUsage (nothing
 * written, no timestamp consumed) for a bad one.
 *
 * Operations on one handle are serialized; run several handles (even in several
 * processes) on one txns shard for concurrency.
 *
 * Where the pieces live: every write to the txns shard goes through one
 * compare-and-append-at-ts loop (`appendAtTs`, txns-append.ts); a Txn commits itself
 * (txn.ts) and apply has its own module (txn-apply.ts), both through the handle's
 * TxnsPort (txns-port.ts); the data-shard writers are in DataWriters
 * (data-writers.ts). The handle keeps the lock, registration (with the claims),
 * forget, compaction and the argument checks.
 *
 * Worked example (txns upper in brackets):
 * ```
 * open(initTs 0)                     [1]
 * register(1, [d0])                  [2]   d0 physical upper 2
 * register(2, [d1])                  [3]   d1 physical upper 3
 * commit "a"→d0 at 3, apply          [4]   d0 upper 4; d1 stays 3 (its logical upper is 4)
 * commit at 3 again                  → { ok: false, current: 4 }
 * forget(5, [d1])                    [6]   d1 may be written directly from 6
 * ```
 */
import { arrayOf, checkCodecs, checkOpaque, invalidArgument, optionalBoolean, optionalNumber, optionsObject } from '../persist/argument-checks.js';
import { PersistClient } from '../persist/client.js';
import type { ShardCodecs } from '../persist/codec.js';
import { HandleExpired, InvariantViolation } from '../persist/errors.js';
import { Opaque } from '../persist/opaque.js';
import { CONTROLLER_CRITICAL_SINCE, assertShardId, type ShardId } from '../persist/shard-id.js';
import type { SinceHandle } from '../persist/since-handle.js';
import { assertTimestamp } from '../persist/time.js';
import { ColumnsPool } from '../persist/update-columns.js';
import { Mutex } from '../persist/wait.js';
import { WriteHandle } from '../persist/write-handle.js';
import { claim, release, touch, type ClaimStore } from './data-shard-claim.js';
import { DataWriters } from './data-writers.js';
import { Metrics } from '../persist/metrics.js';
import { TxnMetrics } from './metrics.js';
import type { Tidy } from './tidy.js';
import { applyEagerLeLocked, applyLeLocked } from './txn-apply.js';
import { Txn } from './txn.js';
import { appendAtTs } from './txns-append.js';
import { TxnsCache } from './txns-cache.js';
import { TxnsCodecDefault, registerEntry, type TxnsCodec, type TxnsEntry } from './txns-codec.js';
import type { TxnsPort } from './txns-port.js';
import { cads } from './txns-since.js';

/**
 * Default spill threshold of a Txn. Small enough that a big transaction's buffers
 * (about twice this) stay well below what Node itself costs (`npm run bench:txn`,
 * part 3: 16 MiB peaked about 25 MiB higher than 4 MiB), big enough that a 1 GiB
 * transaction is a few hundred parts, not thousands.
 */
const DEFAULT_SPILL_THRESHOLD_BYTES = 4 * 1024 * 1024;

/**
 * Options of {@link TxnsHandle.open}.
 *
 * Example:
 * ```ts
 * const txns = await TxnsHandle.open(client, { txnsId, codecs: { key: Codecs.string, val: Codecs.unit }, initTs: 0 });
 * ```
 */
export interface TxnsHandleOptions<K, V> {
  /** The txns shard (one per environment, the same across restarts). */
  txnsId: ShardId;
  /** Codecs of the data shards (all data shards share them; schemas may differ per shard). */
  codecs: ShardCodecs<K, V>;
  /** The txns upper is made `> initTs` on open. Default 0. */
  initTs?: number;
  /** The fencing token installed on the txns critical since if none is there yet. Default `Opaque.u64(0)`. */
  opaque?: Opaque;
  /** Where the txn metrics go (`Metrics.forRegistry(registry)`). Default: the client's (`client.metrics`). */
  metrics?: Metrics;
  /** How txns rows are encoded (default: the reference system's codec). */
  txnsCodec?: TxnsCodec;
  /** Txns readers start at the critical since (default true). */
  useCriticalSince?: boolean;
  /** Apply batches under the schema they were written with (default true). */
  applyEnsureSchemaMatch?: boolean;
  /**
   * Buffered writes of a Txn above this many bytes are uploaded as batches (default
   * 4 MiB). A Txn holds about twice this while
   * it spills (its buffer and the encoded part); larger means fewer, bigger parts.
   */
  spillThresholdBytes?: number;
}

/**
 * The outcome of `register` and `forget`: done (with the Tidy to attach to a later transaction), or
 * the least time that would work when the timestamp was taken.
 *
 * Example:
 * ```ts
 * const res: RegisterOutcome = await txns.register(ts, [writer]);
 * if (!res.ok) await txns.register(res.current, [writer]);
 * ```
 */
export type RegisterOutcome =
  | {
      /** Done at the time asked for. */
      ok: true;
      /** Retractions of applied work to attach to a later transaction. */
      tidy: Tidy;
    }
  | {
      /** The time was taken: nothing was written. */
      ok: false;
      /** The least time that would work now. */
      current: number;
    };
/**
 * The outcome of `forgetAll`: the shards it forgot (and the Tidy), or the least time that would work.
 *
 * Example:
 * ```ts
 * const res: ForgetAllOutcome = await txns.forgetAll(ts);
 * if (res.ok) console.log('forgot', res.forgotten);
 * ```
 */
export type ForgetAllOutcome =
  | {
      /** Done at the time asked for. */
      ok: true;
      /** The data shards that were registered and are forgotten now. */
      forgotten: ShardId[];
      /** Retractions of applied work to attach to a later transaction. */
      tidy: Tidy;
    }
  | {
      /** The time was taken: nothing was written. */
      ok: false;
      /** The least time that would work now. */
      current: number;
    };

type TxnsWriter = WriteHandle<string, Uint8Array>;

/**
 * Atomic writes to many data shards through one txns shard: register shards, begin and commit
 * transactions, apply them, forget shards, compact.
 *
 * Each operation consumes its timestamp; a taken one is a value (`{ ok: false, current }`
 * with the least time that would work). Operations on one handle are serialized; run
 * several handles (also in several processes) on one txns shard for concurrency.
 *
 * Example:
 * ```ts
 * const txns = await TxnsHandle.open(client, { txnsId: newShardId(), codecs, initTs: 0 });
 * const d0 = await client.openWriter(newShardId(), codecs);
 * await txns.register(1, [d0]);
 * const txn = txns.begin();
 * await txn.write(d0.shardId, 'a', null, 1);
 * const res = await txn.commitAt(txns, 2);
 * if (res.ok) await res.apply.apply(txns);   // readable at 2
 * ```
 */
export class TxnsHandle<K, V> {
  private readonly lock = new Mutex();
  private closed = false;
  /** What Txns and apply work through (txns-port.ts); built once, shared by every Txn this handle begins. */
  private readonly port: TxnsPort<K, V>;

  private constructor(
    /** The client the txns and data shards are opened through. */
    readonly client: PersistClient,
    /** The codecs every data shard of this handle uses. */
    readonly dataCodecs: ShardCodecs<K, V>,
    /** Where this handle's operations are counted. */
    readonly metrics: TxnMetrics,
    /** The handle's own view of the txns shard, kept up to date by its writes. */
    readonly cache: TxnsCache,
    private readonly txnsWrite: TxnsWriter,
    private readonly txnsSince: SinceHandle<string, Uint8Array>,
    private readonly opaque: Opaque,
    txnsCodec: TxnsCodec,
    /** Buffered writes of a Txn above this many bytes are uploaded as batches. */
    readonly spillThresholdBytes: number,
    applyEnsureSchemaMatch: boolean,
  ) {
    const log = client.cfg.logger;
    this.port = {
      txnsId: txnsWrite.shardId,
      txnsWrite,
      txnsCodec,
      cache,
      log,
      dataCodecs,
      dataWriters: new DataWriters(client, dataCodecs, log),
      metrics,
      spillThresholdBytes,
      columnsPool: new ColumnsPool(),
      applyEnsureSchemaMatch,
      exclusive: (fn) => this.exclusive(fn),
    };
  }

  /**
   * Opens a handle on the txns shard, creating and initializing it if needed: the
   * txns upper is made `> initTs`. Safe for many concurrent openers.
   */
  static async open<K, V>(client: PersistClient, options: TxnsHandleOptions<K, V>): Promise<TxnsHandle<K, V>> {
    if (!(client instanceof PersistClient)) {
      throw invalidArgument('TxnsHandle.open client', 'a PersistClient (from PersistClient.open)', client);
    }
    if (options === undefined) throw invalidArgument('TxnsHandle.open options', 'an object with txnsId and codecs', options);
    const opts = optionsObject(options, 'TxnsHandle.open options');
    assertShardId(opts.txnsId, 'TxnsHandle.open option txnsId');
    checkCodecs(opts.codecs, 'TxnsHandle.open option codecs');
    // Omitted options take their defaults; null is not "omitted" and is refused.
    const initTs = opts.initTs === undefined ? 0 : opts.initTs;
    assertTimestamp(initTs, 'TxnsHandle.open option initTs');
    const spill =
      optionalNumber(opts.spillThresholdBytes, 'TxnsHandle.open option spillThresholdBytes', { min: 1 }) ?? DEFAULT_SPILL_THRESHOLD_BYTES;
    const metrics = Metrics.option(opts.metrics, 'TxnsHandle.open option metrics', () => client.metrics);
    if (opts.opaque !== undefined) checkOpaque(opts.opaque, 'TxnsHandle.open option opaque');
    const useCriticalSince = optionalBoolean(opts.useCriticalSince, 'TxnsHandle.open option useCriticalSince') ?? true;
    const ensureSchemaMatch = optionalBoolean(opts.applyEnsureSchemaMatch, 'TxnsHandle.open option applyEnsureSchemaMatch') ?? true;
    const codec = opts.txnsCodec === undefined ? TxnsCodecDefault : opts.txnsCodec;
    if (typeof codec !== 'object' || codec === null || typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
      throw invalidArgument('TxnsHandle.open option txnsCodec', 'a TxnsCodec ({ codecs, encode, decode }) or omitted', codec);
    }
    checkCodecs(codec.codecs, 'TxnsHandle.open option txnsCodec.codecs');
    const txnsWrite = await client.openWriter(opts.txnsId, codec.codecs, { purpose: 'commit txns' });
    const txnsRead = await client.openLeasedReader(opts.txnsId, codec.codecs, {
      purpose: 'commit txns',
      useCriticalSince,
    });
    const txnsSince = await client.openCriticalSince(opts.txnsId, codec.codecs, {
      readerId: CONTROLLER_CRITICAL_SINCE,
      defaultOpaque: opts.opaque ?? Opaque.u64(0),
      purpose: 'txns since',
    });
    const cache = await TxnsCache.init(initTs, txnsRead, txnsWrite, codec);
    return new TxnsHandle(
      client,
      opts.codecs as ShardCodecs<K, V>,
      TxnMetrics.of(metrics),
      cache,
      txnsWrite,
      txnsSince,
      // An existing critical since keeps its opaque; we adopt it (spec §2.11 "Fencing").
      txnsSince.opaque(),
      codec,
      spill,
      ensureSchemaMatch,
    );
  }

  /** The txns shard's id. */
  get txnsId(): ShardId {
    return this.txnsWrite.shardId;
  }

  /**
   * The txns shard's upper as Consensus has it now (one state read): every commit,
   * register and forget below it has landed, in any process.
   */
  fetchRecentUpper(): Promise<number> {
    this.checkOpen();
    return this.txnsWrite.fetchRecentUpper();
  }

  /** The handle's cache of the txns shard. */
  readCache(): TxnsCache {
    return this.cache;
  }

  /** A new, empty transaction. */
  begin(): Txn<K, V> {
    this.checkOpen();
    return new Txn(this, this.port);
  }

  /**
   * Registers the writers' shards at `registerTs`. Shards already registered are
   * skipped; the timestamp is consumed either way. The handle takes over the
   * writers: commits to these shards go through them.
   *
   * Each shard is first claimed for this txns shard (data-shard-claim.ts); a shard
   * another txns shard owns fails the whole call with RegisteredWithAnotherTxnsShard
   * before the txns shard is written. Claims made for earlier shards of the same call
   * stay (registering them again, or `forget`, deals with them).
   */
  register(registerTs: number, writers: WriteHandle<K, V>[]): Promise<RegisterOutcome> {
    assertTimestamp(registerTs, 'registerTs');
    const list = this.checkRegisterWriters(writers);
    return this.exclusive(() => this.metrics.register.run(() => this.registerInner(registerTs, list), (r) => !r.ok));
  }

  /** @internal The checks of `register`'s writers (group commit runs them before taking a timestamp). */
  checkRegisterWriters(writers: Iterable<WriteHandle<K, V>>): WriteHandle<K, V>[] {
    const list = arrayOf(writers, 'register writers');
    list.forEach((w, i) => {
      if (!(w instanceof WriteHandle)) {
        throw invalidArgument(`register writers[${i}]`, 'a WriteHandle (from client.openWriter)', w);
      }
      if (w.isExpired) throw new HandleExpired(`register writers[${i}] (of data shard ${w.shardId}) was expired; open a new writer`);
      if (w.shardId === this.txnsId) {
        throw invalidArgument(`register writers[${i}]`, 'a writer of a data shard, not of the txns shard itself', w.shardId);
      }
    });
    return list as WriteHandle<K, V>[];
  }

  private async registerInner(registerTs: number, writers: WriteHandle<K, V>[]): Promise<RegisterOutcome> {
    const dataIds = [...new Set(writers.map((w) => w.shardId))];
    for (const id of dataIds) await claim(this.claims, id, this.txnsId);
    for (const w of writers) await w.ensureSchema();
    const res = await appendAtTs(this.port, registerTs, this.metrics.register, async (upper) => {
      const ids = dataIds.filter((id) => !this.cache.registeredAtProgress(id, upper));
      return { name: `txns register ${ids.join(',')}`, entries: ids.map((id) => [registerEntry(id, registerTs), 1]), landed: undefined };
    });
    if (!res.ok) return res;
    // After the commit, a new claim version: a forget racing us through another
    // handle then either sees the shard registered or fails its release (see
    // data-shard-claim.ts).
    for (const id of dataIds) await touch(this.claims, id, this.txnsId);
    for (const w of writers) await this.port.dataWriters.adoptCommitWriter(w);
    return { ok: true, tidy: await applyLeLocked(this.port, registerTs) };
  }

  /**
   * Forgets the shards at `forgetTs`, after applying every commit to them. Shards
   * not registered are skipped; the timestamp is consumed either way. Afterwards
   * each shard's claim (if it names this txns shard, registered or not) is released,
   * so the shard may join another txns shard.
   */
  forget(forgetTs: number, dataIds: Iterable<ShardId>): Promise<RegisterOutcome> {
    assertTimestamp(forgetTs, 'forgetTs');
    const ids = this.checkForgetIds(dataIds);
    return this.exclusive(() => this.metrics.forget.run(() => this.forgetInner(forgetTs, ids), (r) => !r.ok));
  }

  /** @internal The checks of `forget`'s shard ids; returns them without duplicates. */
  checkForgetIds(dataIds: Iterable<ShardId>): ShardId[] {
    const ids = [...new Set(arrayOf(dataIds, 'forget dataIds'))];
    ids.forEach((id, i) => assertShardId(id, `forget dataIds[${i}]`));
    return ids;
  }

  private async forgetInner(forgetTs: number, ids: ShardId[]): Promise<RegisterOutcome> {
    const res = await appendAtTs(this.port, forgetTs, this.metrics.forget, async (upper) => {
      const registered = ids.filter((id) => this.cache.registeredAtProgress(id, upper));
      // Every write to a shard must be physically applied before it leaves the set.
      const wanted = new Set(registered);
      const latest = this.cache.state.unappliedBatchList().reverse().find((b) => wanted.has(b.dataId));
      if (latest) await applyLeLocked(this.port, latest.ts);
      return { name: `txns forget ${registered.join(',')}`, entries: forgetEntries(registered, forgetTs), landed: undefined };
    });
    if (!res.ok) return res;
    // Applied before dropping the commit writers: the fill may open writers itself.
    const tidy = await applyLeLocked(this.port, forgetTs);
    for (const id of ids) await this.port.dataWriters.dropCommitWriter(id);
    await this.releaseClaims(ids);
    return { ok: true, tidy };
  }

  /** Forgets every registered shard at `forgetTs`; returns them sorted by id. */
  forgetAll(forgetTs: number): Promise<ForgetAllOutcome> {
    assertTimestamp(forgetTs, 'forgetTs');
    return this.exclusive(() => this.metrics.forgetAll.run(() => this.forgetAllInner(forgetTs), (r) => !r.ok));
  }

  private async forgetAllInner(forgetTs: number): Promise<ForgetAllOutcome> {
    const res = await appendAtTs(this.port, forgetTs, this.metrics.forgetAll, async (upper) => {
      const registered = this.cache.allRegisteredAtProgress(upper);
      // The latest unapplied batch of any shard, from the unapplied batches themselves.
      const list = this.cache.state.unappliedBatchList();
      const latest = list[list.length - 1];
      if (latest) await applyLeLocked(this.port, latest.ts);
      return { name: 'txns forget all', entries: forgetEntries(registered, forgetTs), landed: registered };
    });
    if (!res.ok) return res;
    const registered = res.landed;
    for (const id of registered) await this.port.dataWriters.dropCommitWriter(id);
    const tidy = await applyLeLocked(this.port, forgetTs);
    await this.releaseClaims(registered);
    return { ok: true, forgotten: registered, tidy };
  }

  /** Releases this txns shard's claims on `ids`, except of shards registered again meanwhile. */
  private async releaseClaims(ids: ShardId[]): Promise<void> {
    for (const id of ids) {
      await release(this.claims, id, this.txnsId, async () => {
        const upper = await this.cache.updateGe(await this.txnsWrite.fetchRecentUpper());
        return this.cache.registeredAtProgress(id, upper);
      });
    }
  }

  private get claims(): ClaimStore {
    return { consensus: this.client.storage.consensus, cfg: this.client.cfg };
  }

  /**
   * Applies every commit at times `<= ts`. Waits until the txns upper passes `ts`,
   * so a `ts` nobody commits at or past waits forever (abandon it with `close()`).
   * Idempotent. Returns the tidy for every batch applied, including batches others
   * applied but nobody has tidied yet.
   */
  applyLe(ts: number): Promise<Tidy> {
    assertTimestamp(ts, 'applyLe ts');
    return this.exclusive(() => applyLeLocked(this.port, ts));
  }

  /** `applyLe(ts)`, then also moves every shard registered at `ts` to a physical upper `> ts`. */
  applyEagerLe(ts: number): Promise<Tidy> {
    assertTimestamp(ts, 'applyEagerLe ts');
    return this.exclusive(() => applyEagerLeLocked(this.port, ts));
  }

  /**
   * Commits only `tidy` at `tidyTs`: `{ ok: true }`, or `{ ok: false, current }` with the least
   * free time when `tidyTs` was taken.
   */
  async tidyAt(tidyTs: number, tidy: Tidy): Promise<{ ok: true } | { ok: false; current: number }> {
    const txn = this.begin();
    txn.tidy(tidy);
    const res = await txn.commitAt(this, tidyTs);
    if (!res.ok) return res;
    if (!res.apply.isEmpty()) throw new InvariantViolation('a tidy-only commit wrote data');
    return { ok: true };
  }

  /**
   * Lets the txns shard compact up to `sinceTs`, but never past work not yet
   * applied and tidied. Like `applyLe`, it first waits until the txns upper is past
   * `sinceTs`: pass a time that has been committed (e.g. the last commit's), not the
   * next free one. Throws Fenced if another process took over the since.
   */
  compactTo(sinceTs: number): Promise<void> {
    assertTimestamp(sinceTs, 'compactTo ts');
    return this.exclusive(() =>
      this.metrics.compactTo.run(async () => {
        await this.cache.updateGt(sinceTs);
        const since = Math.min(sinceTs, this.cache.minUnappliedTs());
        await cads(this.txnsSince, since, this.opaque);
      }),
    );
  }

  /**
   * @internal Hands the handle a commit writer for a shard registered elsewhere
   * (tests that commit to one shard from many handles). Keeps an existing one.
   */
  insertCommitWriter(writer: WriteHandle<K, V>): Promise<void> {
    return this.port.dataWriters.insertCommitWriter(writer);
  }

  private exclusive<R>(fn: () => Promise<R>): Promise<R> {
    this.checkOpen();
    return this.lock.run(fn);
  }

  private checkOpen(): void {
    if (this.closed) throw new HandleExpired('this TxnsHandle was closed; open a new one');
  }

  /** Expires every handle this TxnsHandle holds (the data writers it was given included). */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.lock.run(async () => {
      this.closed = true;
      await this.port.dataWriters.expireAll();
      await this.txnsWrite.expire().catch(() => undefined);
      await this.cache.expire().catch(() => undefined);
    });
  }
}

/** The rows that take `ids` out of the txns set at `forgetTs`. */
function forgetEntries(ids: ShardId[], forgetTs: number): [TxnsEntry, number][] {
  return ids.map((id) => [registerEntry(id, forgetTs), -1]);
}
