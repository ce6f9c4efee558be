/**
 * TxnsCache: a {@link TxnsCacheState} kept up to date from a subscription to the
 * txns shard (spec §2.6, "Construction" and `update_gt` / `update_ge`).
 *
 * The cache starts at its reader's since (`initTs`): the snapshot there delivers the
 * rows from before the since (advanced to it, but still carrying their original
 * times), and the listen after it delivers each later txns write as it lands.
 * `updateGt(t)` / `updateGe(t)` wait until the cache has seen every row below a
 * progress `> t` / `>= t` and return that progress.
 *
 * Its own handle's writes go straight in (`pushOwnWrite`): after a compare-and-append
 * of rows at `[upper, ts + 1)` landed, those rows are all the txns shard holds in that
 * range, so the cache takes them as they were written and moves its subscription past
 * them without reading the part back. That is only done when the cache is exactly at
 * `upper` with nothing half-read (no snapshot or rows pending), so every row is
 * pushed once: the subscription would deliver nothing else below `ts + 1`.
 *
 * With `onlyDataId`, only one data shard's rows are kept; only `dataSnapshot`,
 * `dataListenNext` and `registeredAtProgress` for that shard may be asked.
 *
 * Example:
 * ```ts
 * const cache = await TxnsCache.open(client, txnsId, { onlyDataId: d0 });
 * await cache.updateGt(5);
 * const snap = cache.dataSnapshot(d0, 5);
 * const rows = await snap.snapshotAndFetch(await client.openLeasedReader(d0, codecs));
 * await cache.expire();
 * ```
 */
import type { PersistClient } from '../persist/client.js';
import { InvariantViolation } from '../persist/errors.js';
import type { Subscribe } from '../persist/listen.js';
import type { ReadHandle } from '../persist/read-handle.js';
import type { ShardId } from '../persist/shard-id.js';
import { isClosed } from '../persist/time.js';
import type { Update } from '../persist/update.js';
import type { WriteHandle } from '../persist/write-handle.js';
import { Mutex } from '../persist/wait.js';
import { emptyCaa } from './data-append.js';
import type { DataSnapshot } from './data-snapshot.js';
import type { Retraction } from './tidy.js';
import { TxnsCodecDefault, type TxnsCodec } from './txns-codec.js';
import { TxnsCacheState, type DataListenNext, type TxnsRow, type Unapplied } from './txns-cache-state.js';

/**
 * Options of {@link TxnsCache.open}.
 *
 * Example:
 * ```ts
 * const cache = await TxnsCache.open(client, txnsId, { onlyDataId: d0 });
 * ```
 */
export interface TxnsCacheOptions {
  /** Track only this data shard. */
  onlyDataId?: ShardId;
  /** How txns rows are encoded (default: the reference system's codec). */
  codec?: TxnsCodec;
  /** Start at the txns shard's critical since (default true), as txn-wal readers do. */
  useCriticalSince?: boolean;
}

/**
 * An up-to-date view of the txns shard: which data shards are registered when, what is unapplied,
 * and how to read a data shard at a time. Use it to read data shards consistently without a
 * TxnsHandle; most readers use the shared {@link TxnsRead} instead.
 *
 * Example:
 * ```ts
 * const cache = await TxnsCache.open(client, txnsId, { onlyDataId: d0 });
 * await cache.updateGt(5);
 * const rows = await cache.dataSnapshot(d0, 5).snapshotAndFetch(await client.openLeasedReader(d0, codecs));
 * await cache.expire();
 * ```
 */
export class TxnsCache {
  private readonly lock = new Mutex();
  private buffered: TxnsRow[] = [];

  private constructor(
    /** The state machine behind the cache, for txns-handle and apply; not for users. @hidden */
    readonly state: TxnsCacheState,
    private readonly subscription: Subscribe<string, Uint8Array>,
    private readonly codec: TxnsCodec,
  ) {}

  /** Opens a cache on the txns shard `txnsId` with its own leased reader. */
  static async open(client: PersistClient, txnsId: ShardId, opts: TxnsCacheOptions = {}): Promise<TxnsCache> {
    const codec = opts.codec ?? TxnsCodecDefault;
    const reader = await client.openLeasedReader(txnsId, codec.codecs, {
      purpose: 'read txns',
      useCriticalSince: opts.useCriticalSince ?? true,
    });
    return TxnsCache.fromReader(reader, opts.onlyDataId, codec);
  }

  /** Builds a cache from a reader of the txns shard; the cache owns the reader afterwards. */
  static async fromReader(
    reader: ReadHandle<string, Uint8Array>,
    onlyDataId: ShardId | undefined,
    codec: TxnsCodec,
  ): Promise<TxnsCache> {
    const asOf = reader.since();
    if (isClosed(asOf)) throw new InvariantViolation(`txns shard ${reader.shardId} has an empty since`);
    const subscription = await reader.subscribe(asOf);
    const cache = new TxnsCache(new TxnsCacheState(reader.shardId, asOf, onlyDataId), subscription, codec);
    await cache.updateGe(asOf);
    return cache;
  }

  /** Makes sure the txns upper is past `initTs`, then builds the cache up to there (TxnsHandle.open). */
  static async init(
    initTs: number,
    reader: ReadHandle<string, Uint8Array>,
    writer: WriteHandle<string, Uint8Array>,
    codec: TxnsCodec,
  ): Promise<TxnsCache> {
    await emptyCaa('txns init', writer, initTs);
    const cache = await TxnsCache.fromReader(reader, undefined, codec);
    await cache.updateGt(initTs);
    return cache;
  }

  /** The txns shard it follows. */
  get txnsId(): ShardId {
    return this.state.txnsId;
  }
  /** Every txns row at a time below this has been seen. */
  get progressExclusive(): number {
    return this.state.progressExclusive;
  }
  /** The txns since it started at: rows below it may have been tidied unseen. */
  get initTs(): number {
    return this.state.initTs;
  }

  /** Waits until the cache has seen every txns row below some progress `> ts`; returns it. */
  updateGt(ts: number, opts: { signal?: AbortSignal } = {}): Promise<number> {
    return this.update((p) => p > ts, opts.signal);
  }

  /** Waits until the cache has seen every txns row below some progress `>= ts`; returns it. */
  updateGe(ts: number, opts: { signal?: AbortSignal } = {}): Promise<number> {
    return this.update((p) => p >= ts, opts.signal);
  }

  private async update(done: (progress: number) => boolean, signal?: AbortSignal): Promise<number> {
    if (done(this.state.progressExclusive)) return this.state.progressExclusive;
    return this.lock.run(async () => {
      while (!done(this.state.progressExclusive)) {
        const events = await this.subscription.next({ signal });
        for (const ev of events) {
          if (ev.kind === 'updates') {
            const only = this.state.onlyDataId;
            for (const [k, v, t, diff] of ev.updates) {
              if (only !== undefined && k !== only) continue;
              this.buffered.push({ entry: this.codec.decode(k, v), t, diff });
            }
          } else {
            if (isClosed(ev.upper)) throw new InvariantViolation(`txns shard ${this.txnsId} was closed; nothing may close it`);
            const rows = this.buffered;
            this.buffered = [];
            this.state.pushEntries(rows, ev.upper);
          }
        }
      }
      return this.state.progressExclusive;
    });
  }

  /**
   * Takes rows its own handle just wrote: `rows` (encoded by the cache's codec, each
   * at time `ts`) landed by a compare-and-append at `[from, ts + 1)`. Pushed, with
   * progress `ts + 1`, only when the cache is exactly at `from` with nothing half-read;
   * otherwise nothing happens and the subscription delivers them as usual. Returns
   * whether they were pushed.
   */
  pushOwnWrite(rows: readonly Update<string, Uint8Array>[], ts: number, from: number): Promise<boolean> {
    return this.lock.run(async () => {
      const to = ts + 1;
      if (this.state.progressExclusive !== from || this.buffered.length > 0 || this.subscription.frontier !== from) return false;
      if (!(from <= ts)) throw new InvariantViolation(`txns cache: own write at ${ts} below its expected upper ${from}`);
      if (!this.subscription.trySkipTo(to)) return false;
      const only = this.state.onlyDataId;
      const pushed: TxnsRow[] = [];
      for (const [k, v, t, diff] of rows) {
        if (t !== ts) throw new InvariantViolation(`txns cache: own write at ${ts} holds a row at ${t}`);
        if (only !== undefined && k !== only) continue;
        pushed.push({ entry: this.codec.decode(k, v), t, diff });
      }
      this.state.pushEntries(pushed, to);
      return true;
    });
  }

  /** How to read `dataId` as of `asOf`; needs progress `> asOf` (call `updateGt(asOf)` first). */
  dataSnapshot(dataId: ShardId, asOf: number): DataSnapshot {
    return this.state.dataSnapshot(dataId, asOf);
  }
  /**
   * What a listener of `dataId` whose frontier is `ts` should do next (read data, report logical
   * progress, or wait).
   */
  dataListenNext(dataId: ShardId, ts: number): DataListenNext {
    return this.state.dataListenNext(dataId, ts);
  }
  /** Whether `dataId` is registered at `ts`, which must be the current progress. */
  registeredAtProgress(dataId: ShardId, ts: number): boolean {
    return this.state.registeredAtProgress(dataId, ts);
  }
  /** Every data shard registered at `ts` (the current progress), sorted by id. */
  allRegisteredAtProgress(ts: number): ShardId[] {
    return this.state.allRegisteredAtProgress(ts);
  }
  /** The least time with apply or tidy work outstanding (the progress if none). */
  minUnappliedTs(): number {
    return this.state.minUnappliedTs();
  }
  /**
   * Every outstanding unit of apply work in time order (registers and forgets first at one time,
   * then batches per shard).
   */
  unapplied(): Unapplied[] {
    return this.state.unapplied();
  }
  /**
   * Keeps the retractions whose batch is still committed and untidied, so a tidy never retracts a
   * row twice.
   */
  filterRetractions(expectedUpper: number, retractions: Iterable<Retraction>): Retraction[] {
    return this.state.filterRetractions(expectedUpper, retractions);
  }
  /**
   * Drops the register and forget work at times `<= ts` from the outstanding work (it was applied).
   */
  markRegisterApplied(ts: number): void {
    this.state.markRegisterApplied(ts);
  }
  /** A description of the first broken invariant, or undefined if all hold. */
  validate(): string | undefined {
    return this.state.validate();
  }

  /** Releases the cache's reader of the txns shard. */
  expire(): Promise<void> {
    return this.subscription.expire();
  }
}
