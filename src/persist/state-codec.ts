/**
 * How shard state is stored: full copies (rollups, in Blob) and diffs between
 * consecutive versions (the data of each Consensus version).
 *
 * State is viewed as a set of entries `(field, key) → bytes`: one META entry, and
 * one entry per rollup, reader, writer, schema and spine batch. A diff lists the
 * entries that were inserted, updated or deleted. Applying a diff checks that each
 * updated or deleted entry had the recorded `from` bytes, so a diff applied to the
 * wrong state fails loudly instead of corrupting it.
 *
 * Example: an append that moves the upper from 5 to 8 and heartbeats writer w
 * becomes the diff `[META update, WRITERS/w update, BATCHES/17 insert]`.
 *
 * Rollups and diffs are sealed with a checksum over their whole encoding (see
 * encoding.ts), so a corrupt one is a StoredFormatError naming it, never a wrong
 * state; those of format version 1, written without one, still read.
 *
 * Encoding each entry is memoized per object: state objects are immutable and
 * shared between versions, so computing a diff re-encodes only what changed.
 */
import {
  Proto,
  FORMAT_VERSION,
  decodeChecksummed,
  decodeMessage,
  encodeChecksummed,
  encodeMessage,
  toNumber,
} from './encoding.js';
import { InvariantViolation, StoredFormatError } from './errors.js';
import { hollowBatchFromProto, hollowBatchToProto, type ProtoHollowBatchShape } from './hollow-batch.js';
import type {
  CriticalReaderState,
  LeasedReaderState,
  SchemaState,
  ShardMeta,
  ShardState,
  SpineBatch,
  WriterState,
} from './state.js';

export enum Field {
  META = 0,
  ROLLUPS = 1,
  LEASED_READERS = 2,
  CRITICAL_READERS = 3,
  WRITERS = 4,
  SCHEMAS = 5,
  BATCHES = 6,
}

const encodedCache = new WeakMap<object, Uint8Array>();

function memo(obj: object, encode: () => Uint8Array): Uint8Array {
  let bytes = encodedCache.get(obj);
  if (!bytes) {
    bytes = encode();
    encodedCache.set(obj, bytes);
  }
  return bytes;
}

// ---- per-field encoders ----

const encodeMeta = (m: ShardMeta) => memo(m, () => encodeMessage(Proto.ShardMeta, m));
const encodeLeased = (r: LeasedReaderState) => memo(r, () => encodeMessage(Proto.LeasedReader, r));
const encodeCritical = (r: CriticalReaderState) => memo(r, () => encodeMessage(Proto.CriticalReader, r));
const encodeWriter = (w: WriterState) => memo(w, () => encodeMessage(Proto.Writer, w));
const encodeSchema = (s: SchemaState) => memo(s, () => encodeMessage(Proto.Schema, s));
const encodeSpineBatch = (b: SpineBatch) =>
  memo(b, () => encodeMessage(Proto.SpineBatch, { id: b.id, batch: hollowBatchToProto(b.batch) }));
// Rollup refs are plain strings (not objects), so they are encoded without memoization.
const encodeRollup = (key: string) => encodeMessage(Proto.RollupRef, { key });

function decodeMeta(b: Uint8Array, what: string): ShardMeta {
  const m = decodeMessage<Record<string, unknown>>(Proto.ShardMeta, b, what);
  return {
    keyCodec: m.keyCodec as string,
    valCodec: m.valCodec as string,
    upper: m.upper as number,
    since: m.since as number,
    nextBatchId: m.nextBatchId as number,
    nextSchemaId: m.nextSchemaId as number,
    lastGcReq: m.lastGcReq as number,
    inlineBytes: toNumber(m.inlineBytes),
  };
}
function decodeLeased(b: Uint8Array, what: string): LeasedReaderState {
  const r = decodeMessage<LeasedReaderState>(Proto.LeasedReader, b, what);
  return {
    since: r.since,
    seqnoHold: r.seqnoHold,
    lastHeartbeatMs: r.lastHeartbeatMs,
    leaseDurationMs: r.leaseDurationMs,
    purpose: r.purpose,
  };
}
function decodeCritical(b: Uint8Array, what: string): CriticalReaderState {
  const r = decodeMessage<{ since: number; opaque?: { codec: string; bytes: Uint8Array }; purpose: string }>(
    Proto.CriticalReader,
    b,
    what,
  );
  return {
    since: r.since,
    opaque: { codec: r.opaque?.codec ?? '', bytes: new Uint8Array(r.opaque?.bytes ?? []) },
    purpose: r.purpose,
  };
}
function decodeWriter(b: Uint8Array, what: string): WriterState {
  const w = decodeMessage<WriterState>(Proto.Writer, b, what);
  return {
    lastHeartbeatMs: w.lastHeartbeatMs,
    leaseDurationMs: w.leaseDurationMs,
    mostRecentWriteToken: w.mostRecentWriteToken,
    mostRecentWriteUpper: w.mostRecentWriteUpper,
    purpose: w.purpose,
  };
}
function decodeSchema(b: Uint8Array, what: string): SchemaState {
  const s = decodeMessage<SchemaState>(Proto.Schema, b, what);
  return { keySchema: s.keySchema, valSchema: s.valSchema };
}
export function decodeSpineBatch(b: Uint8Array, what = 'spine batch'): SpineBatch {
  const s = decodeMessage<{ id: number; batch: ProtoHollowBatchShape }>(Proto.SpineBatch, b, what);
  return { id: s.id, batch: hollowBatchFromProto(s.batch) };
}
/** The blob key a ROLLUPS entry points at. */
export function decodeRollup(b: Uint8Array, what = 'rollup ref'): string {
  return decodeMessage<{ key: string }>(Proto.RollupRef, b, what).key;
}

// ---- the entry view ----

interface Entry {
  field: Field;
  key: string;
  value: Uint8Array;
}

/** The collections of a state as (key → object) maps with their encoders, by field. */
function collections(state: ShardState): Array<[Field, ReadonlyMap<string, unknown>, (v: never) => Uint8Array]> {
  return [
    [Field.META, new Map([['', state.meta]]), encodeMeta as (v: never) => Uint8Array],
    [Field.ROLLUPS, mapKeys(state.rollups), encodeRollup as (v: never) => Uint8Array],
    [Field.LEASED_READERS, state.leasedReaders, encodeLeased as (v: never) => Uint8Array],
    [Field.CRITICAL_READERS, state.criticalReaders, encodeCritical as (v: never) => Uint8Array],
    [Field.WRITERS, state.writers, encodeWriter as (v: never) => Uint8Array],
    [Field.SCHEMAS, mapKeys(state.schemas), encodeSchema as (v: never) => Uint8Array],
    [Field.BATCHES, spineMap(state), encodeSpineBatch as (v: never) => Uint8Array],
  ];
}

const spineMaps = new WeakMap<readonly SpineBatch[], Map<string, SpineBatch>>();
function spineMap(state: ShardState): ReadonlyMap<string, SpineBatch> {
  let m = spineMaps.get(state.spine);
  if (!m) {
    m = new Map(state.spine.map((b) => [String(b.id), b]));
    spineMaps.set(state.spine, m);
  }
  return m;
}

function mapKeys<V>(m: ReadonlyMap<number, V>): ReadonlyMap<string, V> {
  const out = new Map<string, V>();
  for (const [k, v] of m) out.set(String(k), v);
  return out;
}

function entriesOf(state: ShardState): Entry[] {
  const out: Entry[] = [];
  for (const [field, map, encode] of collections(state)) {
    for (const [key, obj] of map) out.push({ field, key, value: encode(obj as never) });
  }
  return out;
}

// ---- rollups ----

export function encodeRollupState(state: ShardState): Uint8Array {
  return encodeChecksummed(Proto.StateRollup, {
    formatVersion: FORMAT_VERSION,
    shardId: state.shardId,
    seqno: state.seqno,
    walltimeMs: state.walltimeMs,
    hostname: state.hostname,
    entries: entriesOf(state),
  });
}

export function decodeRollupState(bytes: Uint8Array, what: string): ShardState {
  const r = decodeChecksummed<{
    formatVersion: number;
    shardId: string;
    seqno: number;
    walltimeMs: number;
    hostname: string;
    entries: Entry[];
  }>(Proto.StateRollup, bytes, what);
  const b = new StateBuilder(r.shardId);
  for (const e of r.entries) b.set(e.field, e.key, e.value, what);
  return b.finish(r.seqno, r.walltimeMs, r.hostname, what);
}

// ---- diffs ----

export interface FieldDiff {
  field: Field;
  key: string;
  from?: Uint8Array;
  to?: Uint8Array;
}

export interface StateDiff {
  shardId: string;
  seqnoFrom: number;
  seqnoTo: number;
  walltimeMs: number;
  hostname: string;
  diffs: FieldDiff[];
}

/** The entry changes that turn `prev` into `next`. */
export function computeDiff(prev: ShardState, next: ShardState): StateDiff {
  const diffs: FieldDiff[] = [];
  const before = collections(prev);
  const after = collections(next);
  for (let i = 0; i < before.length; i++) {
    const [field, oldMap, encode] = before[i]!;
    const newMap = after[i]![1];
    if (oldMap === newMap) continue;
    for (const [key, oldObj] of oldMap) {
      const newObj = newMap.get(key);
      if (newObj === undefined) {
        diffs.push({ field, key, from: encode(oldObj as never) });
      } else if (newObj !== oldObj) {
        const from = encode(oldObj as never);
        const to = encode(newObj as never);
        if (!Buffer.from(from).equals(Buffer.from(to))) diffs.push({ field, key, from, to });
      }
    }
    for (const [key, newObj] of newMap) {
      if (!oldMap.has(key)) diffs.push({ field, key, to: encode(newObj as never) });
    }
  }
  return {
    shardId: next.shardId,
    seqnoFrom: prev.seqno,
    seqnoTo: next.seqno,
    walltimeMs: next.walltimeMs,
    hostname: next.hostname,
    diffs,
  };
}

export function encodeDiff(d: StateDiff): Uint8Array {
  return encodeChecksummed(Proto.StateDiff, {
    formatVersion: FORMAT_VERSION,
    shardId: d.shardId,
    seqnoFrom: d.seqnoFrom,
    seqnoTo: d.seqnoTo,
    walltimeMs: d.walltimeMs,
    hostname: d.hostname,
    diffs: d.diffs.map((f) => ({
      field: f.field,
      key: f.key,
      hasFrom: f.from !== undefined,
      from: f.from ?? new Uint8Array(0),
      hasTo: f.to !== undefined,
      to: f.to ?? new Uint8Array(0),
    })),
  });
}

export function decodeDiff(bytes: Uint8Array, what: string): StateDiff {
  const d = decodeChecksummed<{
    formatVersion: number;
    shardId: string;
    seqnoFrom: number;
    seqnoTo: number;
    walltimeMs: number;
    hostname: string;
    diffs: Array<{ field: number; key: string; hasFrom: boolean; from: Uint8Array; hasTo: boolean; to: Uint8Array }>;
  }>(Proto.StateDiff, bytes, what);
  return {
    shardId: d.shardId,
    seqnoFrom: d.seqnoFrom,
    seqnoTo: d.seqnoTo,
    walltimeMs: d.walltimeMs,
    hostname: d.hostname,
    diffs: d.diffs.map((f) => {
      const fd: FieldDiff = { field: f.field as Field, key: f.key };
      if (f.hasFrom) fd.from = f.from;
      if (f.hasTo) fd.to = f.to;
      return fd;
    }),
  };
}

/** Applies `diff` to `state`, checking every `from` against the current entry. */
export function applyDiff(state: ShardState, diff: StateDiff): ShardState {
  const what = `state diff ${diff.seqnoFrom}→${diff.seqnoTo} of ${diff.shardId}`;
  if (diff.shardId !== state.shardId || diff.seqnoFrom !== state.seqno) {
    throw new InvariantViolation(`${what} does not apply to ${state.shardId} at seqno ${state.seqno}`);
  }
  const b = StateBuilder.from(state);
  const current = new Map<number, ReadonlyMap<string, unknown>>();
  const encoders = new Map<number, (v: never) => Uint8Array>();
  for (const [field, map, encode] of collections(state)) {
    current.set(field, map);
    encoders.set(field, encode);
  }
  for (const f of diff.diffs) {
    const existing = current.get(f.field)?.get(f.key);
    if (f.from !== undefined) {
      if (existing === undefined) throw new InvariantViolation(`${what}: entry ${Field[f.field]}/${f.key} missing`);
      const have = encoders.get(f.field)!(existing as never);
      if (!Buffer.from(have).equals(Buffer.from(f.from))) {
        throw new InvariantViolation(`${what}: entry ${Field[f.field]}/${f.key} differs from the diff's base`);
      }
    } else if (existing !== undefined) {
      throw new InvariantViolation(`${what}: inserted entry ${Field[f.field]}/${f.key} already exists`);
    }
    if (f.to === undefined) b.delete(f.field, f.key);
    else b.set(f.field, f.key, f.to, what);
  }
  return b.finish(diff.seqnoTo, diff.walltimeMs, diff.hostname, what);
}

/** Builds a state from entries, copying the collections it changes. */
class StateBuilder {
  meta: ShardMeta | undefined;
  rollups: Map<number, string> | undefined;
  leasedReaders: Map<string, LeasedReaderState> | undefined;
  criticalReaders: Map<string, CriticalReaderState> | undefined;
  writers: Map<string, WriterState> | undefined;
  schemas: Map<number, SchemaState> | undefined;
  batches: Map<number, SpineBatch> | undefined;

  constructor(
    readonly shardId: string,
    readonly base?: ShardState,
  ) {}

  static from(state: ShardState): StateBuilder {
    const b = new StateBuilder(state.shardId, state);
    b.meta = state.meta;
    return b;
  }

  private rollupsMut() {
    return (this.rollups ??= new Map(this.base?.rollups));
  }
  private leasedMut() {
    return (this.leasedReaders ??= new Map(this.base?.leasedReaders));
  }
  private criticalMut() {
    return (this.criticalReaders ??= new Map(this.base?.criticalReaders));
  }
  private writersMut() {
    return (this.writers ??= new Map(this.base?.writers));
  }
  private schemasMut() {
    return (this.schemas ??= new Map(this.base?.schemas));
  }
  private batchesMut() {
    return (this.batches ??= new Map(this.base?.spine.map((b) => [b.id, b])));
  }

  set(field: Field, key: string, value: Uint8Array, what: string): void {
    // Names the entry inside the stored object, for a parse error.
    const entry = `${what}, entry ${Field[field] ?? field}/${key}`;
    switch (field) {
      case Field.META:
        this.meta = decodeMeta(value, entry);
        encodedCache.set(this.meta, value);
        return;
      case Field.ROLLUPS:
        this.rollupsMut().set(Number(key), decodeRollup(value, entry));
        return;
      case Field.LEASED_READERS: {
        const v = decodeLeased(value, entry);
        encodedCache.set(v, value);
        this.leasedMut().set(key, v);
        return;
      }
      case Field.CRITICAL_READERS: {
        const v = decodeCritical(value, entry);
        encodedCache.set(v, value);
        this.criticalMut().set(key, v);
        return;
      }
      case Field.WRITERS: {
        const v = decodeWriter(value, entry);
        encodedCache.set(v, value);
        this.writersMut().set(key, v);
        return;
      }
      case Field.SCHEMAS: {
        const v = decodeSchema(value, entry);
        encodedCache.set(v, value);
        this.schemasMut().set(Number(key), v);
        return;
      }
      case Field.BATCHES: {
        const v = decodeSpineBatch(value, entry);
        encodedCache.set(v, value);
        this.batchesMut().set(Number(key), v);
        return;
      }
      default:
        throw new StoredFormatError(`${what}: unknown state field ${field as number}`);
    }
  }

  delete(field: Field, key: string): void {
    switch (field) {
      case Field.META:
        throw new InvariantViolation('shard meta cannot be deleted');
      case Field.ROLLUPS:
        this.rollupsMut().delete(Number(key));
        return;
      case Field.LEASED_READERS:
        this.leasedMut().delete(key);
        return;
      case Field.CRITICAL_READERS:
        this.criticalMut().delete(key);
        return;
      case Field.WRITERS:
        this.writersMut().delete(key);
        return;
      case Field.SCHEMAS:
        this.schemasMut().delete(Number(key));
        return;
      case Field.BATCHES:
        this.batchesMut().delete(Number(key));
        return;
    }
  }

  finish(seqno: number, walltimeMs: number, hostname: string, what: string): ShardState {
    if (!this.meta) throw new StoredFormatError(`${what}: state has no META entry`);
    const base = this.base;
    const spine = this.batches
      ? [...this.batches.values()].sort((a, b) => a.batch.lower - b.batch.lower || a.batch.upper - b.batch.upper)
      : (base?.spine ?? []);
    return {
      shardId: this.shardId,
      seqno,
      walltimeMs,
      hostname,
      meta: this.meta,
      rollups: this.rollups ?? base?.rollups ?? new Map(),
      leasedReaders: this.leasedReaders ?? base?.leasedReaders ?? new Map(),
      criticalReaders: this.criticalReaders ?? base?.criticalReaders ?? new Map(),
      writers: this.writers ?? base?.writers ?? new Map(),
      schemas: this.schemas ?? base?.schemas ?? new Map(),
      spine,
    };
  }
}
