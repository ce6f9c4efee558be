/**
 * TxnsCacheState: the read-side state machine over the txns shard (spec §2.6).
 *
 * It is fed the txns shard's rows in time order (`pushEntries(rows, progress)`) and
 * answers, for every time below `progressExclusive`:
 * - which data shards are registered (`registeredAtProgress`);
 * - what is committed but not yet tidied (`unapplied`, `minUnappliedTs`), which is
 *   the apply work still possibly outstanding;
 * - how to read a data shard at its *logical* upper (`dataSnapshot`,
 *   `dataListenNext`).
 *
 * Invariants (checked by `validate()`):
 * - unapplied batches are indexed by their raw bytes and ordered by commit time;
 *   unapplied registers/forgets are ordered by time;
 * - per shard, `DataTimes` holds sorted non-overlapping registration intervals and
 *   sorted writes inside them, compacted to what reads may still need: the latest
 *   write and registration, plus everything unapplied.
 *
 * Worked example. Rows `(d0 reg@1 +1)`, `(d0 A@3 +1)`, progress 5:
 * - `registeredAtProgress(d0, 5)` is true; `minUnappliedTs()` is 3;
 * - `dataSnapshot(d0, 4)` has `latestWrite 3`: a read at 4 must wait for A to be
 *   applied, then fills `[upper, 5)`;
 * - `dataListenNext(d0, 4)` is `readDataTo(4)` (A at 3 must be read physically);
 *   `dataListenNext(d0, 5)` waits for more txns progress.
 * After `(d0 A@3 -1)` at 6 and progress 7, nothing is unapplied and `minUnappliedTs()`
 * is 7.
 */
import { bytesKey } from '../location/bytes.js';
import { BatchIndex, bucketOf, sameBytes } from './batch-index.js';
import { InvariantViolation } from '../persist/errors.js';
import type { ShardId } from '../persist/shard-id.js';
import { stepForward } from '../persist/time.js';
import { DataTimes } from './data-times.js';
import { DataSnapshot } from './data-snapshot.js';
import type { Retraction } from './tidy.js';
import { entryTs, type TxnsEntry } from './txns-codec.js';

/** A txns row as read from the shard: its entry, persist time and diff. */
export interface TxnsRow {
  entry: TxnsEntry;
  t: number;
  diff: number;
}

export interface UnappliedBatch {
  dataId: ShardId;
  raw: Uint8Array;
  ts: number;
}

/** One unit of apply work, in time order (spec §2.6 `unapplied()`). */
export type Unapplied =
  | { kind: 'register-forget'; dataId: ShardId; ts: number }
  | { kind: 'batch'; dataId: ShardId; ts: number; raws: Uint8Array[] };

/**
 * What a listener on a data shard should do next (spec §2.8).
 *
 * Example:
 * ```ts
 * const next = cache.dataListenNext(d0, frontier);
 * if (next.kind === 'read-data-to') await readPhysicalTo(next.ts);
 * ```
 */
export type DataListenNext =
  | {
      /**
       * The shard may hold physical writes below `ts` (applied commits, or direct writes while
       * unregistered): read it.
       */
      kind: 'read-data-to';
      /** Read until the physical frontier reaches this. */
      ts: number;
    }
  | {
      /** Registered and nothing written up to `ts`: report that progress without reading. */
      kind: 'emit-logical-progress';
      /** The logical frontier to report. */
      ts: number;
    }
  | {
      /** The txns shard has not passed the frontier yet: wait for its progress. */
      kind: 'wait-for-txns-progress';
    };

function violation(msg: string): never {
  throw new InvariantViolation(`txns cache: ${msg}`);
}

export class TxnsCacheState {
  /** The txns since when the cache started: rows below it may have been tidied unseen. Never changes. */
  readonly initTs: number;
  /** Every txns row with time below this has been pushed. */
  progressExclusive = 0;
  /** Committed batch pointers not yet tidied, keyed by an increasing id (so in time order). */
  readonly unappliedBatches = new Map<number, UnappliedBatch>();
  /** The exact bytes of each batch pointer (and its shard) → its id in unappliedBatches. */
  private readonly batchIdx = new BatchIndex<number>();
  private nextBatchId = 0;
  readonly datas = new Map<ShardId, DataTimes>();
  /** Registers and forgets not yet known to be applied, in time order. */
  unappliedRegisters: { dataId: ShardId; ts: number }[] = [];
  /** Shards holding more than one write: the only ones a rising min unapplied ts can compact. */
  private readonly multiWrite = new Set<ShardId>();

  constructor(
    readonly txnsId: ShardId,
    initTs: number,
    readonly onlyDataId: ShardId | undefined,
  ) {
    this.initTs = initTs;
  }

  /** Pushes every txns row with time below `progress` that was not pushed before. */
  pushEntries(rows: TxnsRow[], progress: number): void {
    if (progress < this.progressExclusive) {
      violation(`progress went backwards from ${this.progressExclusive} to ${progress}`);
    }
    const consolidated = consolidateTxnsRows(rows);
    // Persist orders rows by their bytes, and compaction can move a register and a
    // forget to one time: the original operation time is the order that matters.
    // Ties: earlier persist time first, then additions before retractions.
    const sorted = consolidated
      .map((r) => ({ ...r, ts: entryTs(r.entry) }))
      .sort((a, b) => a.ts - b.ts || a.t - b.t || b.diff - a.diff);
    for (const r of sorted) {
      if (this.onlyDataId !== undefined && r.entry.dataId !== this.onlyDataId) continue;
      if (r.entry.kind === 'register') this.pushRegister(r.entry.dataId, r.ts, r.diff, r.t);
      else this.pushAppend(r.entry.dataId, r.entry.batch, r.ts, r.diff);
    }
    // A tidy of one shard can raise the oldest unapplied time below which *other*
    // shards' writes are no longer needed: compact every shard that holds extras.
    for (const id of [...this.multiWrite]) this.compactDataTimes(id);
    this.progressExclusive = progress;
  }

  private pushRegister(dataId: ShardId, ts: number, diff: number, t: number): void {
    // A row compacted forward (t > ts) is below the since, so applied (invariant I1).
    if (ts === t) this.unappliedRegisters.push({ dataId, ts });
    if (diff === 1) {
      let times = this.datas.get(dataId);
      if (!times) {
        times = new DataTimes();
        this.datas.set(dataId, times);
      } else if (times.lastReg().forgetTs === undefined) {
        violation(`${dataId} registered at ${ts} while its registration at ${times.lastReg().registerTs} is still open`);
      }
      times.registered.push({ registerTs: ts, forgetTs: undefined });
    } else if (diff === -1) {
      const times = this.datas.get(dataId) ?? violation(`${dataId} forgotten at ${ts} but never registered`);
      const last = times.lastReg();
      if (last.forgetTs !== undefined) violation(`${dataId} forgotten at ${ts} but already forgotten at ${last.forgetTs}`);
      last.forgetTs = ts;
    } else {
      violation(`register row for ${dataId} at ${ts} has diff ${diff}; only +1 and -1 are written`);
    }
    this.compactDataTimes(dataId);
  }

  private pushAppend(dataId: ShardId, raw: Uint8Array, ts: number, diff: number): void {
    if (diff === 1) {
      if (this.batchIdx.has(dataId, raw)) violation(`batch for ${dataId} at ${ts} committed twice`);
      const times = this.datas.get(dataId) ?? violation(`batch committed to ${dataId} at ${ts}, which was never registered`);
      if (times.lastReg().forgetTs !== undefined) violation(`batch committed to ${dataId} at ${ts} after it was forgotten`);
      const id = this.nextBatchId++;
      this.batchIdx.set(dataId, raw, id);
      this.unappliedBatches.set(id, { dataId, raw, ts });
      if (times.writes[times.writes.length - 1] !== ts) times.writes.push(ts);
    } else if (diff === -1) {
      const id = this.batchIdx.delete(dataId, raw);
      if (id === undefined) violation(`tidy of a batch for ${dataId} at ${ts} that is not committed`);
      this.unappliedBatches.delete(id);
    } else {
      violation(`batch row for ${dataId} at ${ts} has diff ${diff}; only +1 and -1 are written`);
    }
    this.compactDataTimes(dataId);
  }

  /**
   * Drops what reads can no longer need: writes older than the oldest unapplied
   * batch (keeping the latest), and registrations that ended before both the oldest
   * unapplied register and the first remaining write (keeping the latest).
   */
  private compactDataTimes(dataId: ShardId): void {
    const times = this.datas.get(dataId);
    if (!times) return;
    const oldestBatch = this.oldestUnappliedBatchTs();
    if (oldestBatch !== undefined) {
      while (times.writes.length > 1 && times.writes[0]! < oldestBatch) times.writes.shift();
    } else if (times.writes.length > 1) {
      times.writes.splice(0, times.writes.length - 1);
    }
    const candidates = [this.unappliedRegisters[0]?.ts, times.writes[0]].filter((x): x is number => x !== undefined);
    if (candidates.length > 0) {
      const bound = Math.min(...candidates);
      while (times.registered.length > 1) {
        const first = times.registered[0]!;
        if (first.forgetTs === undefined) violation(`${dataId}: only the latest registration may be open`);
        if (first.forgetTs >= bound) break;
        times.registered.shift();
      }
    } else if (times.registered.length > 1) {
      times.registered.splice(0, times.registered.length - 1);
    }
    if (times.writes.length > 1) this.multiWrite.add(dataId);
    else this.multiWrite.delete(dataId);
  }

  private oldestUnappliedBatchTs(): number | undefined {
    for (const b of this.unappliedBatches.values()) return b.ts;
    return undefined;
  }

  /** Drops the locally tracked register/forget work at times `<= ts` (it was applied). */
  markRegisterApplied(ts: number): void {
    let i = 0;
    while (i < this.unappliedRegisters.length && this.unappliedRegisters[i]!.ts <= ts) i++;
    if (i > 0) this.unappliedRegisters = this.unappliedRegisters.slice(i);
  }

  /** The least time with apply or tidy work outstanding (progress if none). */
  minUnappliedTs(): number {
    this.assertAllShards('minUnappliedTs');
    return this.minUnappliedTsInner();
  }

  private minUnappliedTsInner(): number {
    const b = this.oldestUnappliedBatchTs() ?? this.progressExclusive;
    const r = this.unappliedRegisters[0]?.ts ?? this.progressExclusive;
    return Math.min(b, r);
  }

  /**
   * Every outstanding unit of work in time order. At one time, registers/forgets
   * come first, then the batches grouped per data shard.
   */
  unapplied(): Unapplied[] {
    this.assertAllShards('unapplied');
    const out: Unapplied[] = [];
    const regs = this.unappliedRegisters;
    let ri = 0;
    const batches = [...this.unappliedBatches.values()];
    for (let i = 0; i < batches.length; ) {
      const ts = batches[i]!.ts;
      while (ri < regs.length && regs[ri]!.ts <= ts) {
        const r = regs[ri++]!;
        out.push({ kind: 'register-forget', dataId: r.dataId, ts: r.ts });
      }
      const byShard = new Map<ShardId, Uint8Array[]>();
      for (; i < batches.length && batches[i]!.ts === ts; i++) {
        const b = batches[i]!;
        const raws = byShard.get(b.dataId);
        if (raws) raws.push(b.raw);
        else byShard.set(b.dataId, [b.raw]);
      }
      for (const [dataId, raws] of byShard) out.push({ kind: 'batch', dataId, ts, raws });
    }
    while (ri < regs.length) {
      const r = regs[ri++]!;
      out.push({ kind: 'register-forget', dataId: r.dataId, ts: r.ts });
    }
    return out;
  }

  /** The unapplied batches, oldest first. */
  unappliedBatchList(): UnappliedBatch[] {
    return [...this.unappliedBatches.values()];
  }

  /** Keeps only the retractions whose batch is still committed and untidied. */
  filterRetractions(expectedUpper: number, retractions: Iterable<Retraction>): Retraction[] {
    if (this.progressExclusive < expectedUpper) {
      violation(`filterRetractions needs progress ${this.progressExclusive} >= ${expectedUpper}`);
    }
    const out: Retraction[] = [];
    for (const r of retractions) if (this.batchIdx.has(r.dataId, r.raw)) out.push(r);
    return out;
  }

  /** Whether `dataId` is registered at `ts`, which must be the current progress. */
  registeredAtProgress(dataId: ShardId, ts: number): boolean {
    this.assertOnlyDataId(dataId);
    if (ts !== this.progressExclusive) {
      violation(`registeredAtProgress asked at ${ts} but the cache is at ${this.progressExclusive}; update it first`);
    }
    const times = this.datas.get(dataId);
    return times !== undefined && times.lastReg().forgetTs === undefined;
  }

  /** Every data shard registered at `ts`, which must be the current progress; sorted by id. */
  allRegisteredAtProgress(ts: number): ShardId[] {
    this.assertAllShards('allRegisteredAtProgress');
    if (ts !== this.progressExclusive) {
      violation(`allRegisteredAtProgress asked at ${ts} but the cache is at ${this.progressExclusive}; update it first`);
    }
    const out: ShardId[] = [];
    for (const [id, times] of this.datas) if (times.lastReg().forgetTs === undefined) out.push(id);
    return out.sort();
  }

  /** How to read `dataId` as of `asOf` (requires progress > asOf). */
  dataSnapshot(dataId: ShardId, asOf: number): DataSnapshot {
    this.assertOnlyDataId(dataId);
    if (!(this.progressExclusive > asOf)) {
      violation(`dataSnapshot at ${asOf} needs progress > ${asOf}, the cache is at ${this.progressExclusive}; updateGt(${asOf}) first`);
    }
    const emptyTo = Math.max(stepForward(asOf), this.initTs);
    const times = this.datas.get(dataId);
    let latestWrite: number | undefined;
    if (times) {
      const m = this.oldestUnappliedBatchTs() ?? this.progressExclusive;
      for (let i = times.writes.length - 1; i >= 0; i--) {
        const w = times.writes[i]!;
        if (w <= asOf) {
          if (w >= m) latestWrite = w;
          break;
        }
      }
    }
    return new DataSnapshot(dataId, latestWrite, asOf, emptyTo);
  }

  /** What a listener of `dataId` whose frontier is `ts` should do next (spec §2.8). */
  dataListenNext(dataId: ShardId, ts: number): DataListenNext {
    this.assertOnlyDataId(dataId);
    const p = this.progressExclusive;
    if (!(p >= ts)) violation(`dataListenNext at ${ts} is ahead of the cache at ${p}`);
    if (!(ts >= this.initTs)) {
      violation(`dataListenNext at ${ts} is below the cache's start ${this.initTs}; history before it may have been tidied`);
    }
    const times = this.datas.get(dataId);
    if (!times) return ts < p ? { kind: 'read-data-to', ts: p } : { kind: 'wait-for-txns-progress' };
    const phys = times.latestPhysicalTs();
    if (ts >= p) return { kind: 'wait-for-txns-progress' };
    if (ts <= phys) return { kind: 'read-data-to', ts: stepForward(phys) };
    const last = times.lastReg();
    if (last.forgetTs === undefined) {
      if (!(last.registerTs <= ts)) violation(`${dataId} listen at ${ts} before its registration at ${last.registerTs}`);
      return { kind: 'emit-logical-progress', ts: p };
    }
    return { kind: 'read-data-to', ts: p };
  }

  /** Returns a description of the first broken invariant, or undefined if all hold. */
  validate(): string | undefined {
    if (this.batchIdx.size !== this.unappliedBatches.size) {
      return `index has ${this.batchIdx.size} entries for ${this.unappliedBatches.size} batches`;
    }
    let prev = 0;
    for (const [id, b] of this.unappliedBatches) {
      if (this.batchIdx.get(b.dataId, b.raw) !== id) return `batch ${id} is not indexed`;
      if (b.ts < prev) return `unapplied batch at ${b.ts} out of order after ${prev}`;
      prev = b.ts;
    }
    prev = 0;
    for (const r of this.unappliedRegisters) {
      if (r.ts < prev) return `unapplied register at ${r.ts} out of order after ${prev}`;
      prev = r.ts;
    }
    const minUnapplied = this.minUnappliedTsInner();
    for (const [id, times] of this.datas) {
      const bad = times.validate();
      if (bad) return `${id}: ${bad}`;
      const firstWrite = times.writes[0];
      if (firstWrite !== undefined && times.writes.length > 1 && firstWrite < minUnapplied) {
        return `${id}: write ${firstWrite} kept although below the min unapplied ts ${minUnapplied}`;
      }
      for (const b of this.unappliedBatches.values()) {
        if (b.dataId !== id) continue;
        if (firstWrite !== undefined && firstWrite > b.ts) return `${id}: first write ${firstWrite} after unapplied batch ${b.ts}`;
        break;
      }
      const reg = this.unappliedRegisters.find((r) => r.dataId === id);
      if (reg && times.firstReg().registerTs > reg.ts) {
        return `${id}: first registration ${times.firstReg().registerTs} after unapplied register ${reg.ts}`;
      }
    }
    return undefined;
  }

  private assertOnlyDataId(dataId: ShardId): void {
    if (this.onlyDataId !== undefined && this.onlyDataId !== dataId) {
      violation(`this cache tracks only ${this.onlyDataId}, not ${dataId}`);
    }
  }

  private assertAllShards(op: string): void {
    if (this.onlyDataId !== undefined) violation(`${op} needs a cache over all data shards, this one tracks only ${this.onlyDataId}`);
  }
}

/**
 * Sums the diffs of identical rows (same entry and persist time) and drops zeros,
 * keeping the order in which each distinct row first appeared.
 *
 * This is a keyed sum over decoded entries rather than persist's `Consolidator`
 * over encoded rows: the cache is handed entries (whatever the txns codec), and a
 * row's identity is just its fields. Rows are bucketed by their short fields (kind,
 * time, the 8 ts bytes, the shard, and for an append its batch's {@link bucketOf});
 * within a bucket two appends are one row only if their batch bytes are equal, so the
 * sum is exact without a string of every batch.
 *
 * Example: `(d0 A@3 t=5 +1), (d0 A@3 t=5 -1), (d0 reg@1 t=5 +1)` → `(d0 reg@1 t=5 +1)`.
 */
export function consolidateTxnsRows(rows: Iterable<TxnsRow>): TxnsRow[] {
  // Bucketed by the short fields (and, for an append, a sample of its batch bytes);
  // rows in one bucket are equal when their batch bytes are (BatchIndex's scheme).
  const buckets = new Map<string, TxnsRow[]>();
  const order: TxnsRow[] = [];
  for (const r of rows) {
    const e = r.entry;
    const name = `${e.kind}|${r.t}|${bytesKey(e.ts)}|${e.kind === 'append' ? bucketOf(e.dataId, e.batch) : e.dataId}`;
    const bucket = buckets.get(name);
    const prev = bucket?.find((x) => x.entry.kind !== 'append' || sameBytes((x.entry as { batch: Uint8Array }).batch, (e as { batch: Uint8Array }).batch));
    if (prev) {
      prev.diff += r.diff;
      continue;
    }
    const sum = { entry: e, t: r.t, diff: r.diff };
    if (bucket) bucket.push(sum);
    else buckets.set(name, [sum]);
    order.push(sum);
  }
  return order.filter((r) => r.diff !== 0);
}
