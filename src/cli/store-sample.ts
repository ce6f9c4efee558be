/**
 * StoreSampler: a txnwal store's state as numbers, read again and again for
 * `txnwal serve-metrics`: per collection its readersNow, since, spine size and holders;
 * for the txns shard its upper, since and the commits it still points at.
 *
 * It reads as `txnwal inspect` does (StoreView: nothing is registered or written)
 * and counts the same things, but keeps what it read between samples: one
 * {@link ShardReader} per shard, caught up with `refresh()` (a Consensus scan from
 * the last seqno: one small read when nothing changed), and the {@link TxnsView},
 * moved forward with `advanceTxnsView` (only the new txns rows are read). Readers of
 * shards that are no longer needed (a collection dropped, its pointers tidied) are
 * let go.
 *
 * Invariants:
 * - The txns view is read before the data shards (logical-read.ts says why): a
 *   commit the view still points at is `not_applied` exactly when its data shard's
 *   upper, read after, is not past its time; otherwise `applied` (waiting to be
 *   tidied). The two states partition what `txnwal inspect` counts as unapplied.
 * - A transaction (a commit time) is `not_applied` when any of its batches is.
 * - A shard that does not exist yet (a catalog entry whose shard a crash left
 *   uncreated) has no physical upper and no since (null), and is looked for again
 *   at the next sample.
 *
 * Example (a store with `accounts`, one commit at 7 applied, one at 9 not applied):
 * ```ts
 * const sampler = new StoreSampler(store, store.requireTxnsId());
 * const s = await sampler.sample();
 * s.collections[0];   // { name: 'accounts', physicalUpper: 8, logicalUpper: 10, unapplied: { not_applied: { batches: 1, … }, … }, … }
 * s.unapplied.not_applied.transactions;   // 1
 * s.oldestUnappliedTs;                    // 7 (the txns upper, 10, when nothing is pointed at)
 * ```
 */
import type { CatalogEntry } from '../db/catalog.js';
import type { ShardId } from '../persist/shard-id.js';
import { logicalUpper, pendingBatches } from './logical-read.js';
import type { ShardReader } from './shard-reader.js';
import { partTotals, shardSummary } from './shard-summary.js';
import type { StoreView } from './store.js';
import { advanceTxnsView, readTxnsView, type TxnsView } from './txns-view.js';

/** The states of a commit the txns shard still points at. */
export const UNAPPLIED_STATES = ['not_applied', 'applied'] as const;
/** `not_applied`: its data shard's upper is not past it yet; `applied`: it is, the pointer awaits tidying. */
export type UnappliedState = (typeof UNAPPLIED_STATES)[number];

/** Batches (and their encoded part bytes) in one state. */
export interface BatchCounts {
  batches: number;
  bytes: number;
}

/** Who holds a shard: reader and writer registrations in its state (expired leases included). */
export interface Holders {
  leasedReaders: number;
  criticalReaders: number;
  writers: number;
}

/** One collection of the catalog. */
export interface CollectionSample extends Holders {
  name: string;
  /** Null when the data shard does not exist yet. */
  physicalUpper: number | null;
  /** What reads see: the txns upper for a registered shard, else the physical upper. */
  logicalUpper: number;
  /** Null when the data shard does not exist yet. */
  since: number | null;
  batches: number;
  parts: number;
  /** Encoded bytes of every part, inline ones included. */
  bytes: number;
  /** The commits to this collection the txns shard still points at, by state. */
  unapplied: Record<UnappliedState, BatchCounts>;
}

/** The whole store at one sample. */
export interface StoreSample {
  /** Wall clock (ms) when the sample was read. */
  readAtMs: number;
  /** The txns shard; null while it does not exist. */
  txns: (Holders & { upper: number; since: number; parts: number; bytes: number }) | null;
  collections: CollectionSample[];
  /** Every commit the txns shard points at (dropped collections' too), by state. */
  unapplied: Record<UnappliedState, BatchCounts & { transactions: number }>;
  /** The oldest commit time the txns shard points at; the txns upper when none. */
  oldestUnappliedTs: number;
}

function noBatches(): Record<UnappliedState, BatchCounts> {
  return { not_applied: { batches: 0, bytes: 0 }, applied: { batches: 0, bytes: 0 } };
}

/** Samples one store (see the module doc). Not safe for two samples at once: the caller runs one at a time. */
export class StoreSampler {
  private txnsReader: ShardReader | undefined;
  private view: TxnsView | undefined;
  private readonly readers = new Map<string, ShardReader>();

  constructor(
    private readonly store: StoreView,
    private readonly txnsId: ShardId,
  ) {}

  /** Reads the store once more. */
  async sample(): Promise<StoreSample> {
    const view = await this.readTxns();
    const entries: CatalogEntry[] = await this.store.collections();
    // The data shards after the view; dropped collections' shards too when the view points at them.
    const untidied = view.cache.unappliedBatchList();
    const ids = new Set<string>([...entries.map((e) => e.shardId), ...untidied.map((b) => b.dataId)]);
    const readersNow = new Map<string, ShardReader | undefined>();
    await Promise.all([...ids].map(async (id) => readersNow.set(id, await this.reader(id))));
    for (const id of this.readers.keys()) if (!ids.has(id)) this.readers.delete(id);

    const readAtMs = Date.now();
    const stateOf = (dataId: string, ts: number): UnappliedState => {
      const upper = readersNow.get(dataId)?.state.meta.upper;
      return upper !== undefined && ts < upper ? 'applied' : 'not_applied';
    };
    const collections = entries.map((e): CollectionSample => {
      const state = readersNow.get(e.shardId)?.state;
      const summary = state && shardSummary(state, readAtMs);
      const unapplied = noBatches();
      for (const p of pendingBatches(view, e.shardId)) {
        const c = unapplied[stateOf(e.shardId, p.ts)];
        c.batches++;
        c.bytes += partTotals([p.batch]).bytes;
      }
      return {
        name: e.name,
        physicalUpper: state ? state.meta.upper : null,
        logicalUpper: logicalUpper(view, e.shardId, state?.meta.upper ?? 0),
        since: state ? state.meta.since : null,
        batches: summary?.batches ?? 0,
        parts: summary?.parts ?? 0,
        bytes: summary?.partBytes ?? 0,
        leasedReaders: summary?.leasedReaders.length ?? 0,
        criticalReaders: summary?.criticalReaders.length ?? 0,
        writers: summary?.writers.length ?? 0,
        unapplied,
      };
    });

    const unapplied = { not_applied: { transactions: 0, batches: 0, bytes: 0 }, applied: { transactions: 0, batches: 0, bytes: 0 } };
    const txnState = new Map<number, UnappliedState>();
    for (const dataId of new Set(untidied.map((b) => b.dataId))) {
      for (const p of pendingBatches(view, dataId)) {
        const s = stateOf(dataId, p.ts);
        unapplied[s].batches++;
        unapplied[s].bytes += partTotals([p.batch]).bytes;
        if (txnState.get(p.ts) !== 'not_applied') txnState.set(p.ts, s);
      }
    }
    for (const s of txnState.values()) unapplied[s].transactions++;

    const t = this.txnsReader?.state;
    const ts = t && shardSummary(t, readAtMs);
    return {
      readAtMs,
      txns: ts
        ? {
            upper: view.upper,
            since: ts.since,
            parts: ts.parts,
            bytes: ts.partBytes,
            leasedReaders: ts.leasedReaders.length,
            criticalReaders: ts.criticalReaders.length,
            writers: ts.writers.length,
          }
        : null,
      collections,
      unapplied,
      oldestUnappliedTs: txnState.size === 0 ? view.upper : Math.min(...txnState.keys()),
    };
  }

  /** The txns view, caught up with the shard; a failed read starts afresh next time. */
  private async readTxns(): Promise<TxnsView> {
    try {
      return await this.advanceTxns();
    } catch (err) {
      // advanceTxnsView may have updated the view in place before it failed.
      this.txnsReader = undefined;
      this.view = undefined;
      throw err;
    }
  }

  private async advanceTxns(): Promise<TxnsView> {
    if (!this.txnsReader) {
      this.txnsReader = await this.store.shard(this.txnsId);
      this.view = await readTxnsView(this.txnsReader, this.txnsId);
    } else if ((await this.txnsReader.refresh()) || !this.view) {
      this.view = this.view ? await advanceTxnsView(this.view, this.txnsReader) : await readTxnsView(this.txnsReader, this.txnsId);
    }
    return this.view!;
  }

  /** The cached reader of `id`, caught up; opened when new; undefined while the shard does not exist. */
  private async reader(id: string): Promise<ShardReader | undefined> {
    const cached = this.readers.get(id);
    if (cached) {
      await cached.refresh();
      return cached;
    }
    const opened = await this.store.shard(id);
    if (opened) this.readers.set(id, opened);
    return opened;
  }
}
