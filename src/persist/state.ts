/**
 * ShardState: everything persist knows about one shard, at one SeqNo.
 *
 * State is immutable: a command produces a new state object that shares every
 * untouched entry with the old one. The difference between two states is what is
 * written to Consensus (see state-codec.ts), so sharing untouched entries keeps
 * diffs small and cheap to compute.
 *
 * Invariants (checked by {@link validateState}):
 * - the spine's batches are sorted, contiguous (`b[i].upper == b[i+1].lower`), start
 *   at the first batch's lower and end at `meta.upper`;
 * - `meta.since` is the meet of every reader's since (leased and critical), and never
 *   regresses; with no readers it stays where it is;
 * - `meta.inlineBytes` is the total size of inline parts in the spine.
 */
import { InvariantViolation } from './errors.js';
import { inlineBytes, type HollowBatch } from './hollow-batch.js';
import type { Opaque } from './opaque.js';

export interface ShardMeta {
  readonly keyCodec: string;
  readonly valCodec: string;
  readonly upper: number;
  readonly since: number;
  readonly nextBatchId: number;
  readonly nextSchemaId: number;
  /** The seqno at which GC last ran (or was last asked to). */
  readonly lastGcReq: number;
  readonly inlineBytes: number;
}

export interface LeasedReaderState {
  readonly since: number;
  /** The oldest state version this reader may still fetch parts from; GC keeps it. */
  readonly seqnoHold: number;
  readonly lastHeartbeatMs: number;
  readonly leaseDurationMs: number;
  readonly purpose: string;
}

export interface CriticalReaderState {
  readonly since: number;
  readonly opaque: Opaque;
  readonly purpose: string;
}

export interface WriterState {
  readonly lastHeartbeatMs: number;
  readonly leaseDurationMs: number;
  readonly mostRecentWriteToken: string;
  readonly mostRecentWriteUpper: number;
  readonly purpose: string;
}

export interface SchemaState {
  readonly keySchema: string;
  readonly valSchema: string;
}

export interface SpineBatch {
  readonly id: number;
  readonly batch: HollowBatch;
}

export interface ShardState {
  readonly shardId: string;
  readonly seqno: number;
  readonly walltimeMs: number;
  readonly hostname: string;
  readonly meta: ShardMeta;
  /** seqno → blob key of a full copy of the state at that seqno. */
  readonly rollups: ReadonlyMap<number, string>;
  readonly leasedReaders: ReadonlyMap<string, LeasedReaderState>;
  readonly criticalReaders: ReadonlyMap<string, CriticalReaderState>;
  readonly writers: ReadonlyMap<string, WriterState>;
  readonly schemas: ReadonlyMap<number, SchemaState>;
  readonly spine: readonly SpineBatch[];
}

export function initialState(shardId: string, keyCodec: string, valCodec: string, hostname: string): ShardState {
  return {
    shardId,
    seqno: 0,
    walltimeMs: Date.now(),
    hostname,
    meta: {
      keyCodec,
      valCodec,
      upper: 0,
      since: 0,
      nextBatchId: 1,
      nextSchemaId: 1,
      lastGcReq: 0,
      inlineBytes: 0,
    },
    rollups: new Map(),
    leasedReaders: new Map(),
    criticalReaders: new Map(),
    writers: new Map(),
    schemas: new Map(),
    spine: [],
  };
}

/** The meet of all readers' sinces, never below the current since; unchanged with no readers. */
function computeSince(state: ShardState): number {
  let meet = Infinity;
  for (const r of state.leasedReaders.values()) meet = Math.min(meet, r.since);
  for (const r of state.criticalReaders.values()) meet = Math.min(meet, r.since);
  if (meet === Infinity && state.leasedReaders.size + state.criticalReaders.size === 0) return state.meta.since;
  return Math.max(state.meta.since, meet);
}

/** The meet of the critical readers' sinces (or the shard since when there are none). */
export function criticalSince(state: ShardState): number {
  let meet = Infinity;
  for (const r of state.criticalReaders.values()) meet = Math.min(meet, r.since);
  return meet === Infinity ? state.meta.since : Math.max(meet, state.meta.since);
}

/** The oldest seqno some leased reader may still read parts from (GC keeps it). */
export function seqnoSince(state: ShardState): number {
  let min = state.seqno;
  for (const r of state.leasedReaders.values()) min = Math.min(min, r.seqnoHold);
  return min;
}

export function withSince(state: ShardState): ShardState {
  const since = computeSince(state);
  return since === state.meta.since ? state : { ...state, meta: { ...state.meta, since } };
}

/** The spine batch with `lower <= t < upper`, if any. */
export function batchContaining(state: ShardState, t: number): SpineBatch | undefined {
  const spine = state.spine;
  let lo = 0;
  let hi = spine.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const b = spine[mid]!.batch;
    if (t < b.lower) hi = mid - 1;
    else if (t >= b.upper) lo = mid + 1;
    else return spine[mid];
  }
  return undefined;
}

export function validateState(state: ShardState): void {
  const spine = state.spine;
  let inline = 0;
  for (let i = 0; i < spine.length; i++) {
    const b = spine[i]!.batch;
    if (!(b.lower <= b.upper)) throw new InvariantViolation(`spine batch ${spine[i]!.id} has lower > upper`);
    if (i > 0 && spine[i - 1]!.batch.upper !== b.lower) {
      throw new InvariantViolation(`spine is not contiguous at batch ${spine[i]!.id}`);
    }
    inline += inlineBytes(b);
  }
  const last = spine[spine.length - 1];
  if (last && last.batch.upper !== state.meta.upper) {
    throw new InvariantViolation(`spine ends at ${last.batch.upper} but the upper is ${state.meta.upper}`);
  }
  if (inline !== state.meta.inlineBytes) {
    throw new InvariantViolation(`inline bytes ${state.meta.inlineBytes} != ${inline} counted in the spine`);
  }
}
