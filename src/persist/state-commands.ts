/**
 * Commands: the pure state transitions of a shard.
 *
 * Each command takes the current state and returns `{ next, result }`: `next` is the
 * new state (undefined when nothing changes) and `result` what the caller learns.
 * The machine (machine.ts) writes `next` with a compare-and-set and, on a conflict,
 * re-runs the command on fresher state — so commands must be deterministic given
 * `(state, args)`, and those that may be retried after an indeterminate failure must
 * recognise their own earlier success (compare-and-append does so by its
 * idempotency token).
 *
 * Example: `compareAndAppend(state@upper=5, {expected: 5, new: 8, batch})` returns a
 * state with upper 8 and the batch linked into the spine; with `expected: 4` it returns
 * no state and `{ kind: 'mismatch', current: 5 }`.
 */
import { InvariantViolation } from './errors.js';
import { inlineBytes, type HollowBatch } from './hollow-batch.js';
import { Opaque } from './opaque.js';
import {
  criticalSince,
  withSince,
  type CriticalReaderState,
  type LeasedReaderState,
  type ShardState,
  type SpineBatch,
  type WriterState,
} from './state.js';

export interface CmdOutcome<R> {
  next?: ShardState;
  result: R;
}

/** Drops leased readers and writers whose lease ran out; recomputes the since. */
function expireStaleLeases(state: ShardState, nowMs: number, keep?: string): ShardState {
  let leased: Map<string, LeasedReaderState> | undefined;
  for (const [id, r] of state.leasedReaders) {
    if (id !== keep && r.lastHeartbeatMs + r.leaseDurationMs < nowMs) {
      leased ??= new Map(state.leasedReaders);
      leased.delete(id);
    }
  }
  let writers: Map<string, WriterState> | undefined;
  for (const [id, w] of state.writers) {
    if (id !== keep && w.lastHeartbeatMs + w.leaseDurationMs < nowMs) {
      writers ??= new Map(state.writers);
      writers.delete(id);
    }
  }
  if (!leased && !writers) return state;
  return withSince({ ...state, leasedReaders: leased ?? state.leasedReaders, writers: writers ?? state.writers });
}

// ---- schemas ----

export function registerSchema(state: ShardState, keySchema: string, valSchema: string): CmdOutcome<number> {
  for (const [id, s] of state.schemas) {
    if (s.keySchema === keySchema && s.valSchema === valSchema) return { result: id };
  }
  const id = state.meta.nextSchemaId;
  const schemas = new Map(state.schemas);
  schemas.set(id, { keySchema, valSchema });
  return { next: { ...state, schemas, meta: { ...state.meta, nextSchemaId: id + 1 } }, result: id };
}

// ---- leased readers ----

export interface RegisterLeasedReaderArgs {
  readerId: string;
  purpose: string;
  leaseDurationMs: number;
  nowMs: number;
  useCriticalSince: boolean;
}

export function registerLeasedReader(
  state: ShardState,
  a: RegisterLeasedReaderArgs,
): CmdOutcome<{ since: number; seqnoHold: number }> {
  const existing = state.leasedReaders.get(a.readerId);
  if (existing) return { result: { since: existing.since, seqnoHold: existing.seqnoHold } };
  const since = a.useCriticalSince ? criticalSince(state) : state.meta.since;
  const reader: LeasedReaderState = {
    since,
    seqnoHold: state.seqno,
    lastHeartbeatMs: a.nowMs,
    leaseDurationMs: a.leaseDurationMs,
    purpose: a.purpose,
  };
  const leasedReaders = new Map(state.leasedReaders);
  leasedReaders.set(a.readerId, reader);
  const next = expireStaleLeases(withSince({ ...state, leasedReaders }), a.nowMs, a.readerId);
  return { next, result: { since, seqnoHold: reader.seqnoHold } };
}

export type ReaderUpdate = { kind: 'ok'; since: number } | { kind: 'expired' };

/**
 * Heartbeats a leased reader and moves its holds forward: the since to `since`
 * (never backwards) and the seqno hold to `seqnoHold` (never backwards).
 */
export function heartbeatLeasedReader(
  state: ShardState,
  readerId: string,
  nowMs: number,
  since: number | undefined,
  seqnoHold: number | undefined,
): CmdOutcome<ReaderUpdate> {
  const r = state.leasedReaders.get(readerId);
  if (!r) return { result: { kind: 'expired' } };
  const updated: LeasedReaderState = {
    ...r,
    since: since === undefined ? r.since : Math.max(r.since, since),
    seqnoHold: seqnoHold === undefined ? r.seqnoHold : Math.max(r.seqnoHold, Math.min(seqnoHold, state.seqno)),
    lastHeartbeatMs: Math.max(r.lastHeartbeatMs, nowMs),
  };
  const leasedReaders = new Map(state.leasedReaders);
  leasedReaders.set(readerId, updated);
  const next = expireStaleLeases(withSince({ ...state, leasedReaders }), nowMs, readerId);
  return { next, result: { kind: 'ok', since: updated.since } };
}

export function expireLeasedReader(state: ShardState, readerId: string): CmdOutcome<boolean> {
  if (!state.leasedReaders.has(readerId)) return { result: false };
  const leasedReaders = new Map(state.leasedReaders);
  leasedReaders.delete(readerId);
  return { next: withSince({ ...state, leasedReaders }), result: true };
}

// ---- critical readers ----

export function registerCriticalReader(
  state: ShardState,
  readerId: string,
  purpose: string,
  defaultOpaque: Opaque,
): CmdOutcome<CriticalReaderState> {
  const existing = state.criticalReaders.get(readerId);
  if (existing) return { result: existing };
  const reader: CriticalReaderState = { since: state.meta.since, opaque: defaultOpaque, purpose };
  const criticalReaders = new Map(state.criticalReaders);
  criticalReaders.set(readerId, reader);
  return { next: withSince({ ...state, criticalReaders }), result: reader };
}

export type CadsResult = { ok: true; since: number; opaque: Opaque } | { ok: false; since: number; opaque: Opaque };

export function compareAndDowngradeSince(
  state: ShardState,
  readerId: string,
  expected: Opaque,
  newOpaque: Opaque,
  newSince: number,
): CmdOutcome<CadsResult> {
  const r = state.criticalReaders.get(readerId);
  if (!r) {
    throw new InvariantViolation(
      `critical reader ${readerId} is not registered on shard ${state.shardId}; open it with openCriticalSince first`,
    );
  }
  if (!Opaque.equals(r.opaque, expected)) return { result: { ok: false, since: r.since, opaque: r.opaque } };
  const updated: CriticalReaderState = { ...r, opaque: newOpaque, since: Math.max(r.since, newSince) };
  const criticalReaders = new Map(state.criticalReaders);
  criticalReaders.set(readerId, updated);
  return {
    next: withSince({ ...state, criticalReaders }),
    result: { ok: true, since: updated.since, opaque: updated.opaque },
  };
}

// ---- writers and appends ----

export interface AppendArgs {
  writerId: string;
  purpose: string;
  leaseDurationMs: number;
  nowMs: number;
  /** Random per call: a retry that finds it recorded knows the first try committed. */
  idempotencyToken: string;
  expectedUpper: number;
  newUpper: number;
  /** Description must be `[expectedUpper, newUpper)`. */
  batch: HollowBatch;
  inlineTotalMaxBytes: number;
}

export type AppendResult =
  | { kind: 'ok' }
  | { kind: 'already-committed' }
  | { kind: 'mismatch'; current: number }
  /** Inline parts would push the shard over its inline budget: flush them to blob and retry. */
  | { kind: 'inline-budget-exceeded' };

export function compareAndAppend(state: ShardState, a: AppendArgs): CmdOutcome<AppendResult> {
  const writer = state.writers.get(a.writerId);
  if (writer && writer.mostRecentWriteToken === a.idempotencyToken) return { result: { kind: 'already-committed' } };
  const emptyInterval = a.expectedUpper === a.newUpper;
  // Checked for empty intervals too: `[u, u)` at a stale `u` is a mismatch, as any
  // append at the wrong upper is.
  if (state.meta.upper !== a.expectedUpper) {
    return { result: { kind: 'mismatch', current: state.meta.upper } };
  }
  const added = inlineBytes(a.batch);
  if (added > 0 && state.meta.inlineBytes + added > a.inlineTotalMaxBytes) {
    return { result: { kind: 'inline-budget-exceeded' } };
  }
  let spine = state.spine;
  let nextBatchId = state.meta.nextBatchId;
  // `[u, u)` without data links nothing but still heartbeats the writer (the caller
  // rejects it with data).
  if (emptyInterval) {
    // nothing to link
  } else if (a.batch.parts.length === 0) {
    // Metadata only: stretch the newest batch over the empty interval rather than
    // adding a batch, so empty appends never create compaction work.
    const last = spine[spine.length - 1];
    if (last) {
      spine = [...spine.slice(0, -1), { id: last.id, batch: { ...last.batch, upper: a.newUpper } }];
    } else {
      spine = [{ id: nextBatchId++, batch: a.batch }];
    }
  } else {
    spine = [...spine, { id: nextBatchId++, batch: a.batch }];
  }
  const writers = new Map(state.writers);
  writers.set(a.writerId, {
    lastHeartbeatMs: a.nowMs,
    leaseDurationMs: a.leaseDurationMs,
    mostRecentWriteToken: a.idempotencyToken,
    mostRecentWriteUpper: emptyInterval ? (writer?.mostRecentWriteUpper ?? 0) : a.newUpper,
    purpose: writer?.purpose ?? a.purpose,
  });
  const next: ShardState = {
    ...state,
    spine,
    writers,
    meta: { ...state.meta, upper: emptyInterval ? state.meta.upper : a.newUpper, nextBatchId, inlineBytes: state.meta.inlineBytes + added },
  };
  return { next: expireStaleLeases(next, a.nowMs, a.writerId), result: { kind: 'ok' } };
}

export function expireWriter(state: ShardState, writerId: string): CmdOutcome<boolean> {
  if (!state.writers.has(writerId)) return { result: false };
  const writers = new Map(state.writers);
  writers.delete(writerId);
  return { next: { ...state, writers }, result: true };
}

// ---- compaction ----

/**
 * Replaces the spine batches `inputIds` (contiguous, in order) with `output`.
 * Refused (result false) when the inputs are no longer exactly in the spine, e.g.
 * another process compacted them first. The newest input may since have been
 * stretched by empty appends; the output is stretched to match.
 */
export function applyMergeResult(state: ShardState, inputIds: readonly number[], output: HollowBatch): CmdOutcome<boolean> {
  const start = state.spine.findIndex((b) => b.id === inputIds[0]);
  if (start < 0) return { result: false };
  for (let i = 0; i < inputIds.length; i++) {
    if (state.spine[start + i]?.id !== inputIds[i]) return { result: false };
  }
  const inputs = state.spine.slice(start, start + inputIds.length);
  const first = inputs[0]!.batch;
  const last = inputs[inputs.length - 1]!.batch;
  if (first.lower !== output.lower || last.upper < output.upper) return { result: false };
  const replaced: SpineBatch = { id: state.meta.nextBatchId, batch: { ...output, upper: last.upper } };
  let removedInline = 0;
  for (const b of inputs) removedInline += inlineBytes(b.batch);
  const spine = [...state.spine.slice(0, start), replaced, ...state.spine.slice(start + inputIds.length)];
  return {
    next: {
      ...state,
      spine,
      meta: {
        ...state.meta,
        nextBatchId: state.meta.nextBatchId + 1,
        inlineBytes: state.meta.inlineBytes - removedInline + inlineBytes(output),
      },
    },
    result: true,
  };
}

// ---- rollups and GC ----

export function addRollup(state: ShardState, seqno: number, key: string): CmdOutcome<boolean> {
  if (state.rollups.has(seqno)) return { result: false };
  const rollups = new Map(state.rollups);
  rollups.set(seqno, key);
  return { next: { ...state, rollups }, result: true };
}

/** Forgets rollups below `seqno` (their versions were truncated) and records the GC. */
export function finishGc(state: ShardState, truncatedBelow: number, gcSeqno: number): CmdOutcome<string[]> {
  const removed: string[] = [];
  let rollups: Map<number, string> | undefined;
  for (const [s, key] of state.rollups) {
    if (s < truncatedBelow) {
      rollups ??= new Map(state.rollups);
      rollups.delete(s);
      removed.push(key);
    }
  }
  const lastGcReq = Math.max(state.meta.lastGcReq, gcSeqno);
  if (!rollups && lastGcReq === state.meta.lastGcReq) return { result: [] };
  return {
    next: { ...state, rollups: rollups ?? state.rollups, meta: { ...state.meta, lastGcReq } },
    result: removed,
  };
}
