/**
 * TailFollower: follows several collections live, at one frontier, by polling the
 * store (no reader is registered, nothing is written), for `txnwal tail`.
 *
 * Output contract (the same as `db.subscribe$` over several names): first the
 * contents as of `asOf` (updates at `asOf`), then `progress asOf + 1`; afterwards,
 * per step, the updates with `frontier <= ts < next` of every collection, then
 * `progress next`. `next` is the txns upper, which is the logical upper of every
 * registered collection at once, so a progress line never shows half a
 * transaction, across all the names.
 *
 * Each step (when the txns shard's head changed): advance the {@link TxnsView}
 * first, then read each collection's range `[frontier, next)` (logical-read.ts says
 * why this order sees every commit once). Without a since hold, compaction may
 * advance times in that range (the since passed the frontier: another process's
 * reader moved it). Then the range's updates below the since cannot be told from
 * older ones advanced to it, so the follower compares instead: it keeps each
 * collection's contents as of its frontier (`materialized`), reads the contents as
 * of the since `s`, and emits the difference at time `s` (`frontier <= s < next`),
 * followed by the exact updates in `(s, next)`. The contents at every progress line
 * are right either way; only times below the since are coarsened, as compaction
 * coarsens them for every reader. A since at or past `next` (the shard moved on
 * during the step) makes the step run again.
 *
 * Example (`accounts` and `audit`, a commit to both at 7 after the snapshot at 5):
 * ```
 * update accounts "alice" null 5 10      ← the snapshot, at asOf 5
 * progress 6
 * update accounts "alice" null 7 -1
 * update audit {"by":"alice"} null 7 1
 * progress 8
 * ```
 */
import { bytesKey } from '../location/bytes.js';
import { Consolidator } from '../persist/consolidate.js';
import type { PartData } from '../persist/part.js';
import type { ShardId } from '../persist/shard-id.js';
import { CliError } from './cli-error.js';
import { collectionAsOf, collectionRange } from './logical-read.js';
import type { ShardReader } from './shard-reader.js';
import type { StoreView } from './store.js';
import { advanceTxnsView, readTxnsView, type TxnsView } from './txns-view.js';

/** One line of a tail: an update of one collection, or the frontier moving. */
export type TailEvent =
  | { kind: 'update'; collection: string; key: Uint8Array; val: Uint8Array; ts: number; diff: number }
  | { kind: 'progress'; upper: number };

/** A collection being followed. */
export interface TailCollection {
  readonly name: string;
  readonly shardId: ShardId;
}

/** Steps in a row whose since ran ahead of the step before a tail gives up. */
const STEP_ATTEMPTS = 10;

interface Followed extends TailCollection {
  reader: ShardReader | undefined;
  /** Contents as of the frontier - 1: (key, val) → [key, val, count]. */
  readonly materialized: Map<string, [Uint8Array, Uint8Array, number]>;
}

function rowKey(k: Uint8Array, v: Uint8Array): string {
  return `${k.byteLength}:${bytesKey(k)}${bytesKey(v)}`;
}

/** Follows `collections` of `store` from `asOf` (see the module doc). */
export class TailFollower {
  private frontier = 0;
  private txnsSeqno = -1;

  private constructor(
    private readonly store: StoreView,
    private txnsReader: ShardReader | undefined,
    private view: TxnsView,
    private readonly followed: Followed[],
  ) {}

  /** Reads the txns shard and each collection's shard once; nothing is emitted yet. */
  static async open(store: StoreView, collections: readonly TailCollection[]): Promise<TailFollower> {
    const txnsId = store.requireTxnsId();
    const txnsReader = await store.shard(txnsId);
    const view = await readTxnsView(txnsReader, txnsId);
    const followed = await Promise.all(
      collections.map(async (c) => ({ ...c, reader: await store.shard(c.shardId), materialized: new Map<string, [Uint8Array, Uint8Array, number]>() })),
    );
    return new TailFollower(store, txnsReader, view, followed);
  }

  /** The time everything below has been emitted. */
  get upper(): number {
    return this.frontier;
  }

  /** The default as-of: the latest complete time (undefined when nothing is complete yet). */
  latestComplete(): number | undefined {
    return this.view.upper > 0 ? this.view.upper - 1 : undefined;
  }

  /** Emits the contents as of `asOf` and `progress asOf + 1`; with `asOf` undefined, only starts at 0. */
  async start(asOf: number | undefined, emit: (e: TailEvent) => void): Promise<void> {
    this.txnsSeqno = this.view.seqno;
    if (asOf === undefined) return;
    const snapshots: PartData[] = [];
    for (const c of this.followed) snapshots.push(await collectionAsOf(this.view, c.reader, c.name, c.shardId, asOf));
    this.followed.forEach((c, i) => this.emitUpdates(c, snapshots[i]!, emit));
    this.frontier = asOf + 1;
    emit({ kind: 'progress', upper: this.frontier });
  }

  /**
   * Polls once: when the txns shard moved past the frontier, emits every update up
   * to its upper and the progress line. Returns whether anything was emitted.
   */
  async step(emit: (e: TailEvent) => void): Promise<boolean> {
    if (!this.txnsReader) {
      // The txns shard did not exist yet: see whether it does now.
      const reader = await this.store.shard(this.view.txnsId);
      if (!reader) return false;
      this.txnsReader = reader;
      this.view = await readTxnsView(reader, this.view.txnsId);
    } else {
      await this.txnsReader.refresh();
      if (this.txnsReader.state.seqno === this.txnsSeqno) return false;
      this.view = await advanceTxnsView(this.view, this.txnsReader);
    }
    this.txnsSeqno = this.view.seqno;
    const next = this.view.upper;
    if (next <= this.frontier) return false;
    for (let attempt = 1; ; attempt++) {
      const reads = await this.readStep(this.frontier, next);
      if (reads) {
        this.followed.forEach((c, i) => this.emitUpdates(c, reads[i]!, emit));
        this.frontier = next;
        emit({ kind: 'progress', upper: next });
        return true;
      }
      if (attempt >= STEP_ATTEMPTS) {
        throw new CliError(`the collections' since kept running past the txns upper ${next} while reading; try again when the store is less busy`);
      }
    }
  }

  /** Every collection's updates in `[lower, upper)`, or undefined when a since ran past `upper` meanwhile. */
  private async readStep(lower: number, upper: number): Promise<PartData[] | undefined> {
    const out: PartData[] = [];
    for (const c of this.followed) {
      if (c.reader) await c.reader.refresh();
      else c.reader = await this.store.shard(c.shardId);
      const range = await collectionRange(this.view, c.reader, c.shardId, lower, upper);
      if (range.kind === 'exact') {
        out.push(range.updates);
        continue;
      }
      const s = range.since;
      if (s >= upper) return undefined;
      // Compaction passed the frontier: emit what changed up to s by comparing contents (module doc).
      const atSince = await collectionAsOf(this.view, c.reader, c.name, c.shardId, s);
      const diff = new Consolidator();
      diff.addAll(atSince);
      for (const [k, v, n] of c.materialized.values()) diff.add(k, v, s, -n);
      const rest = await collectionRange(this.view, c.reader, c.shardId, s + 1, upper);
      if (rest.kind !== 'exact') return undefined;
      const updates = diff.finish();
      for (let i = 0; i < rest.updates.times.length; i++) {
        updates.keys.push(rest.updates.keys[i]!);
        updates.vals.push(rest.updates.vals[i]!);
        updates.times.push(rest.updates.times[i]!);
        updates.diffs.push(rest.updates.diffs[i]!);
      }
      out.push(updates);
    }
    return out;
  }

  /** Emits `data` (consolidated, in time order) as updates of `c` and folds them into its contents. */
  private emitUpdates(c: Followed, data: PartData, emit: (e: TailEvent) => void): void {
    const consolidator = new Consolidator();
    consolidator.addAll(data);
    const d = consolidator.finish();
    const order = d.times.map((_, i) => i).sort((a, b) => d.times[a]! - d.times[b]! || a - b);
    for (const i of order) {
      const [key, val, ts, diff] = [d.keys[i]!, d.vals[i]!, d.times[i]!, d.diffs[i]!];
      emit({ kind: 'update', collection: c.name, key, val, ts, diff });
      const rk = rowKey(key, val);
      const row = c.materialized.get(rk);
      const n = (row?.[2] ?? 0) + diff;
      if (n === 0) c.materialized.delete(rk);
      else c.materialized.set(rk, [key, val, n]);
    }
  }
}
