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
 * Each field (META, ROLLUPS, …) is one row of the `FIELDS` table: its Field number,
 * its entries in a state, its entry codec, and how changed entries are written into
 * a state being built. Rollups, diffs and applying a diff all walk that table.
 *
 * Encoding each entry is memoized per object, in the shard's {@link EntryCache}: state
 * objects are immutable and shared between versions, so computing a diff re-encodes
 * only what changed.
 */
import { bufferView } from '../location/bytes.js';
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

// ---- the field table ----

/**
 * How one field of ShardState is stored: the `Field` number its entries carry, how to
 * list them from a state (by stored key), how one entry's value is encoded and
 * decoded, and how changed entries are written into a state under construction.
 * Every operation below (rollup encode/decode, computing and applying a diff) walks
 * this one table; a new field is a row here plus its starting value in
 * `StateBuilder.finish`.
 */
/** The stored form of one entry value. */
interface EntryCodec<V> {
  encode(value: V): Uint8Array;
  decode(bytes: Uint8Array, what: string): V;
}

interface FieldSpec<V> extends EntryCodec<V> {
  readonly field: Field;
  /**
   * The field's entries in `state`, by stored key. An unchanged collection yields the
   * same map object, which lets a diff skip the field without looking inside.
   */
  entries(state: ShardState, cache: EntryCache): ReadonlyMap<string, V>;
  /** Writes the field's changed entries (`undefined`: deleted) into `state`, copying what it changes. */
  apply(state: StateUnderConstruction, changes: ReadonlyMap<string, V | undefined>): void;
}

/** A state being built from entries: a shallow copy of its base whose collections are replaced as they change. */
type StateUnderConstruction = { -readonly [P in keyof ShardState]: P extends 'meta' ? ShardMeta | undefined : ShardState[P] };

/** Erases a row's value type so rows of different fields fit one table; each row stays consistent within itself. */
function row<V>(spec: FieldSpec<V>): FieldSpec<unknown> {
  return spec as unknown as FieldSpec<unknown>;
}

/**
 * What encoding and diffing one shard's states remembers about their objects:
 * state objects are immutable and shared between versions, so each is encoded (and
 * each collection that is not a string-keyed map is turned into its entry map) once.
 *
 * One per shard (StateVersions holds it), not one for the process: a process-wide
 * WeakMap holds the objects of every open shard, and with 10,000 shards its lookups
 * cost about 100 µs per commit and grew with the shard count, while each commit
 * touches the objects of two shards only.
 */
export class EntryCache {
  /** Entry maps of collections that are not string-keyed maps (meta, number-keyed maps, the spine). */
  readonly entryMaps = new WeakMap<object, ReadonlyMap<string, unknown>>();
  /** Each state object's encoded entry value. */
  readonly encoded = new WeakMap<object, Uint8Array>();
}

/** The cache of callers that keep none (tests, one-off decodes). */
const SHARED_CACHE = new EntryCache();

function entriesKeyedBy<V>(
  cache: EntryCache,
  collection: object,
  build: () => Iterable<readonly [string, V]>,
): ReadonlyMap<string, V> {
  let m = cache.entryMaps.get(collection) as ReadonlyMap<string, V> | undefined;
  if (!m) {
    m = new Map(build());
    cache.entryMaps.set(collection, m);
  }
  return m;
}

/** A copy of `base` with `changes` applied; stored keys are turned back into the collection's keys by `toKey`. */
function withChanges<K, V>(
  base: ReadonlyMap<K, V>,
  changes: ReadonlyMap<string, V | undefined>,
  toKey: (stored: string) => K,
): Map<K, V> {
  const out = new Map(base);
  for (const [stored, value] of changes) {
    if (value === undefined) out.delete(toKey(stored));
    else out.set(toKey(stored), value);
  }
  return out;
}

/** A map-valued property of ShardState, and whether its keys are stored as they are or printed numbers. */
interface MapProperty<K, V> {
  get(state: Omit<ShardState, 'meta'>): ReadonlyMap<K, V>;
  set(state: StateUnderConstruction, map: ReadonlyMap<K, V>): void;
  keys: K extends string ? 'string' : 'number';
}

/** The row of a field stored as a map: one entry per map entry, keyed by the map key (printed if a number). */
function mapRow<K extends string | number, V>(field: Field, codec: EntryCodec<V>, prop: MapProperty<K, V>): FieldSpec<unknown> {
  // A string-keyed map is its own entry map; a number-keyed one is printed once per map.
  const toKey = (prop.keys === 'string' ? (stored: string) => stored : Number) as (stored: string) => K;
  const entries = (state: ShardState, cache: EntryCache): ReadonlyMap<string, V> => {
    const m = prop.get(state);
    if (prop.keys === 'string') return m as ReadonlyMap<string, V>;
    return entriesKeyedBy(cache, m, () => [...m].map(([k, v]) => [String(k), v] as const));
  };
  return row<V>({
    field,
    entries,
    ...codec,
    apply: (state, changes) => prop.set(state, withChanges(prop.get(state), changes, toKey)),
  });
}

const message = <V extends object>(type: Parameters<typeof encodeMessage>[0]) => (value: V) => encodeMessage(type, value);

const FIELDS: readonly FieldSpec<unknown>[] = [
  row<ShardMeta>({
    field: Field.META,
    entries: (s, cache) => entriesKeyedBy(cache, s.meta, () => [['', s.meta]]),
    encode: message(Proto.ShardMeta),
    decode: decodeMeta,
    apply: (s, changes) => {
      for (const m of changes.values()) {
        if (m === undefined) throw new InvariantViolation('shard meta cannot be deleted');
        s.meta = m;
      }
    },
  }),
  // A ROLLUPS entry's value is the blob key of the rollup.
  mapRow(Field.ROLLUPS, { encode: (key) => encodeMessage(Proto.RollupRef, { key }), decode: decodeRollup }, {
    get: (s) => s.rollups,
    set: (s, m) => (s.rollups = m),
    keys: 'number',
  }),
  mapRow(Field.LEASED_READERS, { encode: message(Proto.LeasedReader), decode: decodeLeased }, {
    get: (s) => s.leasedReaders,
    set: (s, m) => (s.leasedReaders = m),
    keys: 'string',
  }),
  mapRow(Field.CRITICAL_READERS, { encode: message(Proto.CriticalReader), decode: decodeCritical }, {
    get: (s) => s.criticalReaders,
    set: (s, m) => (s.criticalReaders = m),
    keys: 'string',
  }),
  mapRow(Field.WRITERS, { encode: message(Proto.Writer), decode: decodeWriter }, {
    get: (s) => s.writers,
    set: (s, m) => (s.writers = m),
    keys: 'string',
  }),
  mapRow(Field.SCHEMAS, { encode: message(Proto.Schema), decode: decodeSchema }, {
    get: (s) => s.schemas,
    set: (s, m) => (s.schemas = m),
    keys: 'number',
  }),
  // The spine is a sorted list, stored as one entry per batch keyed by its id.
  row<SpineBatch>({
    field: Field.BATCHES,
    entries: (s, cache) => entriesKeyedBy(cache, s.spine, () => s.spine.map((b) => [String(b.id), b] as const)),
    encode: (b) => encodeMessage(Proto.SpineBatch, { id: b.id, batch: hollowBatchToProto(b.batch) }),
    decode: decodeSpineBatch,
    apply: (s, changes) => {
      const byId = withChanges(new Map(s.spine.map((b) => [b.id, b])), changes, Number);
      s.spine = [...byId.values()].sort((a, b) => a.batch.lower - b.batch.lower || a.batch.upper - b.batch.upper);
    },
  }),
];

/** The table's row for `field`; a field this version does not know is a stored-format error. */
function fieldSpec(field: Field, what: string): FieldSpec<unknown> {
  const spec = FIELDS[field];
  if (spec?.field !== field) throw new StoredFormatError(`${what}: unknown state field ${field as number}`);
  return spec;
}

// State objects are immutable and shared between versions, so each is encoded once (per shard: EntryCache).
function encodeEntry(cache: EntryCache, spec: FieldSpec<unknown>, value: unknown): Uint8Array {
  // Rollup refs are plain strings (not objects), so they are encoded without memoization.
  if (typeof value !== 'object' || value === null) return spec.encode(value);
  let bytes = cache.encoded.get(value);
  if (!bytes) {
    bytes = spec.encode(value);
    cache.encoded.set(value, bytes);
  }
  return bytes;
}

function decodeEntry(cache: EntryCache, spec: FieldSpec<unknown>, bytes: Uint8Array, what: string): unknown {
  const value = spec.decode(bytes, what);
  // The bytes just read are this object's encoding: a later diff need not re-encode it.
  if (typeof value === 'object' && value !== null) cache.encoded.set(value, bytes);
  return value;
}

// ---- per-field decoders ----
// Each copies exactly the state's fields out of the decoded message, so a state
// object has the same shape whether it was built in memory or read back.

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

function entriesOf(state: ShardState, cache: EntryCache): Entry[] {
  const out: Entry[] = [];
  for (const spec of FIELDS) {
    for (const [key, value] of spec.entries(state, cache)) out.push({ field: spec.field, key, value: encodeEntry(cache, spec, value) });
  }
  return out;
}

// ---- rollups ----

export function encodeRollupState(state: ShardState, cache: EntryCache = SHARED_CACHE): Uint8Array {
  return encodeChecksummed(Proto.StateRollup, {
    formatVersion: FORMAT_VERSION,
    shardId: state.shardId,
    seqno: state.seqno,
    walltimeMs: state.walltimeMs,
    hostname: state.hostname,
    entries: entriesOf(state, cache),
  });
}

export function decodeRollupState(bytes: Uint8Array, what: string, cache: EntryCache = SHARED_CACHE): ShardState {
  const r = decodeChecksummed<{
    formatVersion: number;
    shardId: string;
    seqno: number;
    walltimeMs: number;
    hostname: string;
    entries: Entry[];
  }>(Proto.StateRollup, bytes, what);
  const b = new StateBuilder(r.shardId, undefined, what, cache);
  for (const e of r.entries) b.set(e.field, e.key, e.value);
  return b.finish(r.seqno, r.walltimeMs, r.hostname);
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

/**
 * The spine entries of `prev` and `next` that may differ, keyed by stored id: the two
 * spines without the batches (the same objects, at the same place from either end)
 * they share. A write appends one batch and a merge replaces a run, so this is a
 * handful of entries however long the spine, and no map of the whole spine is built.
 * Sound because ids are unique in a spine: a batch shared at the ends is in neither
 * middle, and one in both middles is compared like any other entry.
 */
function changedSpineEntries(
  prev: readonly SpineBatch[],
  next: readonly SpineBatch[],
): [ReadonlyMap<string, SpineBatch>, ReadonlyMap<string, SpineBatch>] {
  const shortest = Math.min(prev.length, next.length);
  let head = 0;
  while (head < shortest && prev[head] === next[head]) head++;
  let tail = 0;
  while (tail < shortest - head && prev[prev.length - 1 - tail] === next[next.length - 1 - tail]) tail++;
  const byId = (spine: readonly SpineBatch[]) =>
    new Map(spine.slice(head, spine.length - tail).map((b) => [String(b.id), b] as const));
  return [byId(prev), byId(next)];
}

/** The entry changes that turn `prev` into `next`. */
export function computeDiff(prev: ShardState, next: ShardState, cache: EntryCache = SHARED_CACHE): StateDiff {
  const diffs: FieldDiff[] = [];
  for (const spec of FIELDS) {
    const { field } = spec;
    let oldMap: ReadonlyMap<string, unknown>;
    let newMap: ReadonlyMap<string, unknown>;
    if (field === Field.BATCHES) {
      if (prev.spine === next.spine) continue;
      [oldMap, newMap] = changedSpineEntries(prev.spine, next.spine);
    } else {
      oldMap = spec.entries(prev, cache);
      newMap = spec.entries(next, cache);
    }
    if (oldMap === newMap) continue;
    for (const [key, oldObj] of oldMap) {
      const newObj = newMap.get(key);
      if (newObj === undefined) {
        diffs.push({ field, key, from: encodeEntry(cache, spec, oldObj) });
      } else if (newObj !== oldObj) {
        const from = encodeEntry(cache, spec, oldObj);
        const to = encodeEntry(cache, spec, newObj);
        if (!bufferView(from).equals(to)) diffs.push({ field, key, from, to });
      }
    }
    for (const [key, newObj] of newMap) {
      if (!oldMap.has(key)) diffs.push({ field, key, to: encodeEntry(cache, spec, newObj) });
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
export function applyDiff(state: ShardState, diff: StateDiff, cache: EntryCache = SHARED_CACHE): ShardState {
  const what = `state diff ${diff.seqnoFrom}→${diff.seqnoTo} of ${diff.shardId}`;
  if (diff.shardId !== state.shardId || diff.seqnoFrom !== state.seqno) {
    throw new InvariantViolation(`${what} does not apply to ${state.shardId} at seqno ${state.seqno}`);
  }
  const b = new StateBuilder(state.shardId, state, what, cache);
  for (const f of diff.diffs) {
    const spec = fieldSpec(f.field, what);
    const existing = spec.entries(state, cache).get(f.key);
    if (f.from !== undefined) {
      if (existing === undefined) throw new InvariantViolation(`${what}: entry ${Field[f.field]}/${f.key} missing`);
      if (!bufferView(encodeEntry(cache, spec, existing)).equals(f.from)) {
        throw new InvariantViolation(`${what}: entry ${Field[f.field]}/${f.key} differs from the diff's base`);
      }
    } else if (existing !== undefined) {
      throw new InvariantViolation(`${what}: inserted entry ${Field[f.field]}/${f.key} already exists`);
    }
    if (f.to === undefined) b.delete(f.field, f.key);
    else b.set(f.field, f.key, f.to);
  }
  return b.finish(diff.seqnoTo, diff.walltimeMs, diff.hostname);
}

/**
 * Builds a state from entries on top of `base` (none, for a rollup). Changes are
 * gathered per field and written by the field's row at the end, so each collection
 * that changes is copied once and every other one is shared with the base.
 */
class StateBuilder {
  private readonly changes = new Map<Field, Map<string, unknown>>();

  constructor(
    private readonly shardId: string,
    private readonly base: ShardState | undefined,
    /** Names the stored object, for errors. */
    private readonly what: string,
    private readonly cache: EntryCache,
  ) {}

  set(field: Field, key: string, bytes: Uint8Array): void {
    const spec = fieldSpec(field, this.what);
    // Names the entry inside the stored object, for a parse error.
    const value = decodeEntry(this.cache, spec, bytes, `${this.what}, entry ${Field[field]}/${key}`);
    this.changesOf(field).set(key, value);
  }

  delete(field: Field, key: string): void {
    fieldSpec(field, this.what);
    this.changesOf(field).set(key, undefined);
  }

  private changesOf(field: Field): Map<string, unknown> {
    let m = this.changes.get(field);
    if (!m) this.changes.set(field, (m = new Map()));
    return m;
  }

  finish(seqno: number, walltimeMs: number, hostname: string): ShardState {
    const base = this.base;
    const state: StateUnderConstruction = {
      shardId: this.shardId,
      seqno,
      walltimeMs,
      hostname,
      meta: base?.meta,
      rollups: base?.rollups ?? new Map(),
      leasedReaders: base?.leasedReaders ?? new Map(),
      criticalReaders: base?.criticalReaders ?? new Map(),
      writers: base?.writers ?? new Map(),
      schemas: base?.schemas ?? new Map(),
      spine: base?.spine ?? [],
    };
    for (const spec of FIELDS) {
      const changes = this.changes.get(spec.field);
      if (changes) spec.apply(state, changes);
    }
    const meta = state.meta;
    if (!meta) throw new StoredFormatError(`${this.what}: state has no META entry`);
    return { ...state, meta };
  }
}
