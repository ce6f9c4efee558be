/**
 * DataSubscribe: reads a txn data shard with correct *logical* progress (spec §2.10,
 * the `txns_progress` logic without a dataflow runtime).
 *
 * Two inputs are followed:
 * - the data shard's own physical subscription at `asOf` (a snapshot, then a
 *   listen), whose updates are passed through unchanged;
 * - the shard's {@link DataRemapEntry}s from the process's shared {@link TxnsRead}.
 *
 * Progress (the output frontier) is the physical frontier, lifted to the newest
 * entry's `logicalUpper` once the physical frontier has reached its
 * `physicalUpper`: by then every physical update below it was delivered, and
 * `[physicalUpper, logicalUpper)` is known empty (the logic is {@link TxnsProgress}).
 * Data is never delayed or changed; updates at or past `until` are not output. The
 * subscription finishes (progress `Infinity`) once progress reaches `until` (an idle
 * shard finishes on logical progress alone) or the shard is closed.
 *
 * Worked example: the shard was last written at 3, the txns upper is 6, `asOf` 5.
 * Progress jumps to 6 once the physical input passes 3 (the read is filled to 6). A
 * txn not touching the shard commits at 7: progress 8. A txn touching it commits at
 * 9: progress 10 only after the physical input itself reaches 10 (after the apply).
 *
 * Example:
 * ```ts
 * const sub = await DataSubscribe.open(client, txnsId, d0, codecs, { asOf: 4 });
 * await sub.stepPast(4);
 * sub.output();   // every update at times <= 4 (advanced to 4 for the snapshot part)
 * await sub.close();
 * ```
 */
import type { PersistClient } from '../persist/client.js';
import type { ShardCodecs } from '../persist/codec.js';
import type { ListenEvent, Subscribe } from '../persist/listen.js';
import type { ShardId } from '../persist/shard-id.js';
import { updatesBelow, type Update } from '../persist/update.js';
import type { DataRemapEntry, DataRemapSubscription } from './txns-read.js';
import { TxnsProgress } from './txns-progress.js';
import { TxnsRead } from './txns-read.js';

export interface DataSubscribeOptions {
  asOf: number;
  /** Finish once progress reaches this (default: never). */
  until?: number;
  /** The TxnsRead to use (default: the process's shared one for this client and txns shard). */
  txnsRead?: TxnsRead;
}

export class DataSubscribe<K, V> {
  private readonly tracker: TxnsProgress;
  private readonly captured: Update<K, V>[] = [];
  private physPending: Promise<ListenEvent<K, V>[]> | undefined;
  private remapPending: Promise<DataRemapEntry> | undefined;
  private readonly abort = new AbortController();

  private constructor(
    readonly dataId: ShardId,
    readonly asOf: number,
    readonly until: number,
    private readonly physical: Subscribe<K, V>,
    private readonly remaps: DataRemapSubscription,
  ) {
    this.tracker = new TxnsProgress(dataId, until);
  }

  static async open<K, V>(
    client: PersistClient,
    txnsId: ShardId,
    dataId: ShardId,
    codecs: ShardCodecs<K, V>,
    opts: DataSubscribeOptions,
  ): Promise<DataSubscribe<K, V>> {
    const read = await TxnsRead.forShard(client, txnsId, opts.txnsRead, 'DataSubscribe.open');
    const remaps = await read.dataSubscribeUnblocked(client, dataId, codecs, opts.asOf);
    try {
      const reader = await client.openLeasedReader(dataId, codecs, { purpose: 'data subscribe', useCriticalSince: true });
      const physical = await reader.subscribe(opts.asOf);
      return new DataSubscribe(dataId, opts.asOf, opts.until ?? Infinity, physical, remaps);
    } catch (err) {
      remaps.close();
      throw err;
    }
  }

  /** The output frontier: every update below it has been output. `Infinity` once finished. */
  progress(): number {
    return this.tracker.progress;
  }

  /** Every update output so far: physical times, the snapshot part at `asOf`. */
  output(): Update<K, V>[] {
    return this.captured;
  }

  get isFinished(): boolean {
    return this.tracker.finished;
  }

  /** Processes one event from either input, waiting for one if needed. */
  async step(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.tracker.finished) return;
    if (!this.physPending) {
      const p = this.physical.next({ signal: this.abort.signal });
      p.catch(() => undefined);
      this.physPending = p;
    }
    if (!this.remapPending) {
      const p = this.remaps.next({ signal: this.abort.signal });
      p.catch(() => undefined);
      this.remapPending = p;
    }
    const waits: Promise<'phys' | 'remap' | 'abort'>[] = [
      this.physPending.then(() => 'phys' as const),
      this.remapPending.then(() => 'remap' as const),
    ];
    let onAbort: (() => void) | undefined;
    if (opts.signal) {
      const signal = opts.signal;
      signal.throwIfAborted();
      waits.push(new Promise((resolve) => signal.addEventListener('abort', (onAbort = () => resolve('abort')), { once: true })));
    }
    let which: 'phys' | 'remap' | 'abort';
    try {
      which = await Promise.race(waits);
    } finally {
      if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
    }
    if (which === 'abort') opts.signal!.throwIfAborted();
    if (which === 'remap') {
      const e = await this.remapPending!;
      this.remapPending = undefined;
      this.tracker.onRemap(e);
    } else {
      const events = await this.physPending;
      this.physPending = undefined;
      if (events.length === 0) this.tracker.onPhysicalProgress(Infinity);
      for (const ev of events) {
        if (this.tracker.finished) break;
        if (ev.kind === 'updates') {
          for (const u of updatesBelow(ev.updates, this.until)) this.captured.push(u);
        } else {
          this.tracker.onPhysicalProgress(ev.upper);
        }
      }
    }
    if (this.tracker.finished) await this.close();
  }

  /** Steps until `progress() > ts`. */
  async stepPast(ts: number, opts: { signal?: AbortSignal } = {}): Promise<void> {
    while (!(this.progress() > ts)) await this.step(opts);
  }

  /** Releases the physical reader and the remap subscription. */
  async close(): Promise<void> {
    this.abort.abort();
    this.remaps.close();
    await this.physical.expire();
  }
}
