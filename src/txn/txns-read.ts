/**
 * TxnsRead: one shared, self-updating txns cache per process and txns shard, for
 * readers of data shards (spec §2.9).
 *
 * A background pump follows the txns shard while anyone is interested (a pending
 * wait or an open subscription) and stops when nobody is, so an idle process can
 * exit. It serves:
 * - `updateGe(t)` / `updateGt(t)`: wait until the cache's progress is `>= t` / `> t`;
 * - `dataSnapshot(id, asOf)`: no implicit wait, call `updateGt(asOf)` first;
 * - `subscribeRemaps(id, asOf)`: a {@link DataRemapSubscription}, the stream of
 *   {@link DataRemapEntry}s for one data shard (data-remap.ts). Each says
 *   `[physicalUpper, logicalUpper)` of the shard is definitely empty, so a reader
 *   whose physical frontier reached `physicalUpper` may report progress up to
 *   `logicalUpper` without reading anything.
 *
 * `TxnsRead.shared(client, txnsId)` returns the process's one instance for that
 * client and shard.
 *
 * Example (the shard was last written at 3, the txns upper is 6):
 * ```ts
 * const read = await TxnsRead.shared(client, txnsId);
 * await read.updateGt(5);
 * const sub = await read.subscribeRemaps(d0, 5);
 * await sub.next();   // { physicalUpper: 6, logicalUpper: 6 }  (the fill to emptyTo)
 * // a txn not touching d0 commits at 7:
 * await sub.next();   // { physicalUpper: 6, logicalUpper: 8 }
 * ```
 */
import type { PersistClient } from '../persist/client.js';
import type { ShardCodecs } from '../persist/codec.js';
import { InvalidUsage, InvariantViolation } from '../persist/errors.js';
import type { ShardId } from '../persist/shard-id.js';
import { abortableWait } from '../persist/wait.js';
import type { WriteHandle } from '../persist/write-handle.js';
import { DataRemapSubscription } from './data-remap.js';
import type { DataSnapshot } from './data-snapshot.js';
import { TxnsCodecDefault, type TxnsCodec } from './txns-codec.js';
import { TxnsCache } from './txns-cache.js';

interface Waiter {
  ready: (progress: number) => boolean;
  resolve: (progress: number) => void;
  reject: (err: unknown) => void;
}

const sharedByClient = new WeakMap<PersistClient, Map<ShardId, Promise<TxnsRead>>>();

/**
 * One shared, self-updating txns cache per process and txns shard, for readers of data shards: it
 * follows the txns shard only while someone waits or subscribes. Get it with
 * `TxnsRead.shared(client, txnsId)`.
 *
 * Example:
 * ```ts
 * const read = await TxnsRead.shared(client, txnsId);
 * await read.updateGt(5);
 * const sub = await read.subscribeRemaps(d0, 5);
 * await sub.next();   // { physicalUpper, logicalUpper }: [physicalUpper, logicalUpper) of d0 is empty
 * sub.close();
 * ```
 */
export class TxnsRead {
  private readonly waiters = new Set<Waiter>();
  private readonly subscriptions = new Set<DataRemapSubscription>();
  private pumping: AbortController | undefined;
  private failure: unknown;
  private closed = false;

  private constructor(private readonly cache: TxnsCache) {}

  /** Starts a TxnsRead with its own reader of the txns shard. */
  static async start(
    client: PersistClient,
    txnsId: ShardId,
    opts: { codec?: TxnsCodec; useCriticalSince?: boolean } = {},
  ): Promise<TxnsRead> {
    const cache = await TxnsCache.open(client, txnsId, {
      codec: opts.codec ?? TxnsCodecDefault,
      useCriticalSince: opts.useCriticalSince ?? true,
    });
    return new TxnsRead(cache);
  }

  /**
   * `given` if it follows `txnsId` (a caller-supplied TxnsRead), otherwise the
   * process-wide one; a `given` that follows another txns shard is misuse.
   */
  static async forShard(client: PersistClient, txnsId: ShardId, given: TxnsRead | undefined, fn: string): Promise<TxnsRead> {
    const read = given ?? (await TxnsRead.shared(client, txnsId));
    if (read.txnsId !== txnsId) {
      throw new InvalidUsage(
        `${fn}: the txnsRead option follows ${read.txnsId}, not the txns shard ${txnsId}; pass the TxnsRead of ${txnsId} or leave the option out`,
      );
    }
    return read;
  }

  /** The process-wide TxnsRead for this client and txns shard, started on first use. */
  static shared(client: PersistClient, txnsId: ShardId): Promise<TxnsRead> {
    let byId = sharedByClient.get(client);
    if (!byId) {
      byId = new Map();
      sharedByClient.set(client, byId);
    }
    let read = byId.get(txnsId);
    if (!read) {
      read = TxnsRead.start(client, txnsId);
      byId.set(txnsId, read);
      read.catch(() => byId.delete(txnsId));
    }
    return read;
  }

  /** The txns shard it follows. */
  get txnsId(): ShardId {
    return this.cache.txnsId;
  }

  /** Every txns row below this is known. */
  get progress(): number {
    return this.cache.progressExclusive;
  }

  /** Whether the background pump is following the txns shard (only while someone waits or subscribes). */
  get isFollowing(): boolean {
    return this.pumping !== undefined;
  }

  /** How many remap subscriptions are open. */
  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  /** Resolves with the progress once it is `>= ts`. */
  updateGe(ts: number, opts: { signal?: AbortSignal } = {}): Promise<number> {
    return this.wait((p) => p >= ts, opts.signal);
  }

  /** Resolves with the progress once it is `> ts`. */
  updateGt(ts: number, opts: { signal?: AbortSignal } = {}): Promise<number> {
    return this.wait((p) => p > ts, opts.signal);
  }

  /** How to read `dataId` at `asOf`; the progress must already be past `asOf` (see `updateGt`). */
  dataSnapshot(dataId: ShardId, asOf: number): DataSnapshot {
    return this.cache.dataSnapshot(dataId, asOf);
  }

  /**
   * Subscribes to `dataId`'s remap entries from `asOf`. When `writer` is given, the
   * snapshot read at `asOf` is unblocked through it first (waiting for the latest
   * write before `asOf` to be applied, and filling to `emptyTo`).
   */
  async subscribeRemaps<K, V>(
    dataId: ShardId,
    asOf: number,
    writer?: WriteHandle<K, V>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<DataRemapSubscription> {
    this.checkOpen();
    await this.updateGt(asOf, opts);
    const snapshot = this.cache.dataSnapshot(dataId, asOf);
    const sub = new DataRemapSubscription(dataId, snapshot, (closed) => this.unsubscribe(closed));
    this.subscriptions.add(sub);
    this.advance(sub);
    this.ensurePump();
    if (writer) {
      try {
        await snapshot.unblockRead(writer, opts);
      } catch (err) {
        sub.close();
        throw err;
      }
    }
    return sub;
  }

  /**
   * `subscribeRemaps` with the read at `asOf` unblocked through a short-lived writer of
   * `dataId` (opened with `codecs`, expired before this returns).
   */
  async subscribeRemapsUnblocked<K, V>(
    client: PersistClient,
    dataId: ShardId,
    codecs: ShardCodecs<K, V>,
    asOf: number,
    opts: { signal?: AbortSignal } = {},
  ): Promise<DataRemapSubscription> {
    const writer = await client.openWriter(dataId, codecs, { purpose: 'data read physical upper' });
    try {
      return await this.subscribeRemaps(dataId, asOf, writer, opts);
    } finally {
      await writer.expire();
    }
  }

  /** Stops following the txns shard and releases its reader. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pumping?.abort();
    for (const s of [...this.subscriptions]) s.close();
    await this.cache.expire();
  }

  private unsubscribe(sub: DataRemapSubscription): void {
    this.subscriptions.delete(sub);
    this.maybeStopPump();
  }

  private wait(ready: (p: number) => boolean, signal?: AbortSignal): Promise<number> {
    this.checkOpen();
    if (ready(this.progress)) return Promise.resolve(this.progress);
    if (this.failure !== undefined) return Promise.reject(this.failure as Error);
    return abortableWait<number>({
      signal,
      register: (resolve, reject) => {
        const waiter: Waiter = { ready, resolve, reject };
        this.waiters.add(waiter);
        this.ensurePump();
        // Still registered means nobody settled it (it was aborted): it no longer needs the pump.
        return () => {
          if (this.waiters.delete(waiter)) this.maybeStopPump();
        };
      },
    });
  }

  private ensurePump(): void {
    if (this.pumping || this.closed) return;
    const ctrl = new AbortController();
    this.pumping = ctrl;
    void this.pump(ctrl.signal).finally(() => {
      if (this.pumping === ctrl) this.pumping = undefined;
      // Interest may have arrived while the pump was winding down.
      if (this.hasInterest() && this.failure === undefined) this.ensurePump();
    });
  }

  private maybeStopPump(): void {
    if (!this.hasInterest()) this.pumping?.abort();
  }

  private hasInterest(): boolean {
    return this.waiters.size > 0 || this.subscriptions.size > 0;
  }

  private async pump(signal: AbortSignal): Promise<void> {
    try {
      while (!signal.aborted && this.hasInterest()) {
        await this.cache.updateGt(this.progress, { signal });
        this.onProgress();
      }
    } catch (err) {
      if (signal.aborted) return;
      this.failure = err;
      for (const w of [...this.waiters]) {
        this.waiters.delete(w);
        w.reject(err);
      }
      for (const s of [...this.subscriptions]) s.fail(err);
    }
  }

  private onProgress(): void {
    for (const sub of this.subscriptions) this.advance(sub);
    const p = this.progress;
    for (const w of [...this.waiters]) {
      if (w.ready(p)) {
        this.waiters.delete(w);
        w.resolve(p);
      }
    }
  }

  /** Moves a subscription's remap up to the current progress, sending each step. */
  private advance(sub: DataRemapSubscription): void {
    for (;;) {
      const cur = sub.current;
      const next = this.cache.dataListenNext(sub.dataId, cur.logicalUpper);
      if (next.kind === 'wait-for-txns-progress') break;
      if (next.kind === 'read-data-to') {
        sub.push({ physicalUpper: next.ts, logicalUpper: next.ts });
      } else {
        if (!(next.ts > cur.logicalUpper && next.ts >= cur.physicalUpper)) {
          throw new InvariantViolation(`remap of ${sub.dataId}: logical progress ${next.ts} does not advance ${cur.logicalUpper}`);
        }
        sub.push({ physicalUpper: cur.physicalUpper, logicalUpper: next.ts });
      }
    }
    if (sub.current.logicalUpper !== this.progress) {
      throw new InvariantViolation(
        `remap of ${sub.dataId} stopped at ${sub.current.logicalUpper}, not at the txns progress ${this.progress}`,
      );
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new InvariantViolation('this TxnsRead was closed');
  }
}
