/**
 * What `txnwal inspect` reports about one shard, computed from its state alone:
 * upper, since, spine size, and who holds it (leased readers, critical since
 * handles, writers). Plain JSON-ready objects; the JSON output is exactly these.
 *
 * A leased reader or writer whose last heartbeat is older than its lease is
 * reported `expired: true`: the next write to the shard removes it, and until then it
 * holds the since and GC back.
 *
 * Example:
 * ```ts
 * shardSummary(state, Date.now());
 * // { shardId: 's…', seqno: 12, upper: 8, since: 0, batches: 3, parts: 3, partBytes: 812,
 * //   updates: 9, leasedReaders: [], criticalReaders: [{ id: 'c…', since: 0, purpose: 'txns' }], writers: [...] }
 * ```
 */
import type { HollowBatch } from '../persist/hollow-batch.js';
import type { ShardState } from '../persist/state.js';

/** A leased reader as inspect shows it. */
export interface LeasedReaderInfo {
  id: string;
  purpose: string;
  since: number;
  seqnoHold: number;
  lastHeartbeatMs: number;
  leaseDurationMs: number;
  expired: boolean;
}

/** A critical since handle as inspect shows it. */
export interface CriticalReaderInfo {
  id: string;
  purpose: string;
  since: number;
}

/** A writer as inspect shows it. */
export interface WriterInfo {
  id: string;
  purpose: string;
  lastHeartbeatMs: number;
  leaseDurationMs: number;
  mostRecentWriteUpper: number;
  expired: boolean;
}

/** One shard's summary (see the module doc). */
export interface ShardSummary {
  shardId: string;
  keyCodec: string;
  valCodec: string;
  seqno: number;
  upper: number;
  since: number;
  batches: number;
  parts: number;
  /** Encoded size of every part, inline ones included. */
  partBytes: number;
  inlineBytes: number;
  updates: number;
  leasedReaders: LeasedReaderInfo[];
  criticalReaders: CriticalReaderInfo[];
  writers: WriterInfo[];
}

/** Parts and their encoded bytes over `batches`. */
export function partTotals(batches: readonly HollowBatch[]): { parts: number; bytes: number; updates: number } {
  let parts = 0;
  let bytes = 0;
  let updates = 0;
  for (const b of batches) {
    parts += b.parts.length;
    updates += b.updateCount;
    for (const p of b.parts) bytes += p.encodedSizeBytes;
  }
  return { parts, bytes, updates };
}

/** The summary of `state`, with leases judged against `nowMs`. */
export function shardSummary(state: ShardState, nowMs: number): ShardSummary {
  const totals = partTotals(state.spine.map((b) => b.batch));
  return {
    shardId: state.shardId,
    keyCodec: state.meta.keyCodec,
    valCodec: state.meta.valCodec,
    seqno: state.seqno,
    upper: state.meta.upper,
    since: state.meta.since,
    batches: state.spine.length,
    parts: totals.parts,
    partBytes: totals.bytes,
    inlineBytes: state.meta.inlineBytes,
    updates: totals.updates,
    leasedReaders: [...state.leasedReaders].map(([id, r]) => ({
      id,
      purpose: r.purpose,
      since: r.since,
      seqnoHold: r.seqnoHold,
      lastHeartbeatMs: r.lastHeartbeatMs,
      leaseDurationMs: r.leaseDurationMs,
      expired: nowMs > r.lastHeartbeatMs + r.leaseDurationMs,
    })),
    criticalReaders: [...state.criticalReaders].map(([id, r]) => ({ id, purpose: r.purpose, since: r.since })),
    writers: [...state.writers].map(([id, w]) => ({
      id,
      purpose: w.purpose,
      lastHeartbeatMs: w.lastHeartbeatMs,
      leaseDurationMs: w.leaseDurationMs,
      mostRecentWriteUpper: w.mostRecentWriteUpper,
      expired: nowMs > w.lastHeartbeatMs + w.leaseDurationMs,
    })),
  };
}
