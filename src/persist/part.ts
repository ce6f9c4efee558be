/**
 * Parts: runs of encoded updates, the unit persist stores in Blob (or inline in
 * shard state when small), and how a reader turns a stored part back into updates.
 *
 * A stored part is read through its {@link HollowPart} metadata, in this order:
 * 1. `tsRewrite` (from Batch.rewriteTs): each time t reads as `max(t, tsRewrite)`;
 * 2. `keep`: only times in `[keep.lower, keep.upper)` survive (set when an append
 *    truncated a batch wider than the interval it was appended at).
 * Readers then apply their own filter (snapshot: `t <= asOf`, advanced to `asOf`;
 * listen: `t > asOf && t >= frontier`).
 *
 * Stored parts, in Blob or inline, are sealed with a checksum (see encoding.ts):
 * {@link decodePartData} refuses a corrupt one with a StoredFormatError naming it,
 * and still reads unsealed parts of format version 1.
 *
 * Compact columns (format version 3): a column whose entries are all alike is stored
 * as that one entry and its bytes field left empty — one time, one diff, or for keys
 * or values of one width (empty values of a keys-only collection) the width instead
 * of the offsets. Decoding rebuilds the full column, so no reader sees the difference.
 * Example: 10,000 keys `k0-0`…`k0-9999` at time 5 with diff 1 and empty values store
 * 10.9 bytes per update (their keys and key offsets) instead of 30.9.
 */
import { bytesToFloat64s, bytesToUint32s, float64ArrayToBytes, uint32sToBytes } from './columns.js';
import { Proto, FORMAT_VERSION, decodeChecksummed, encodeChecksummed, toNumber } from './encoding.js';
import { StoredFormatError } from './errors.js';
import type { ColumnsSource, UpdateColumns } from './update-columns.js';

/** Updates in columns. All four arrays have the same length. */
export interface PartData {
  keys: Uint8Array[];
  vals: Uint8Array[];
  times: number[];
  diffs: number[];
}

export function emptyPartData(): PartData {
  return { keys: [], vals: [], times: [], diffs: [] };
}

/** How to find and interpret one part. Immutable once in shard state. */
export interface HollowPart {
  /** Blob key, or undefined for an inline part. */
  readonly key?: string;
  readonly inline?: Uint8Array;
  readonly encodedSizeBytes: number;
  readonly updateCount: number;
  readonly tsRewrite?: number;
  readonly keep?: { readonly lower: number; readonly upper: number };
  readonly schemaId?: number;
}

export function encodePartData(data: PartData): Uint8Array {
  const [keyData, keyOffsets] = concat(data.keys);
  const [valData, valOffsets] = concat(data.vals);
  const times = Float64Array.from(data.times);
  const diffs = Float64Array.from(data.diffs);
  return encodePartColumns(data.times.length, keyData, keyOffsets, valData, valOffsets, times, diffs);
}

/**
 * Encodes buffered columns (rows `[from, to)`, all by default) as a part, straight
 * from their slabs: the only copy is the encoded part itself (the "one part in
 * flight" of a write's memory), plus the range's offsets when it does not start at 0.
 */
export function encodeUpdateColumns(cols: UpdateColumns, from = 0, to = cols.length): Uint8Array {
  const all = from === 0 && to === cols.length;
  const rebased = (offsets: Uint32Array) => {
    if (from === 0) return offsets.subarray(0, to + 1);
    const out = offsets.slice(from, to + 1);
    const base = out[0]!;
    for (let i = 0; i < out.length; i++) out[i]! -= base;
    return out;
  };
  const keyOffsets = cols.keyOffsetsView();
  const valOffsets = cols.valOffsetsView();
  return encodePartColumns(
    to - from,
    all ? cols.keyData() : cols.keyData().subarray(keyOffsets[from]!, keyOffsets[to]!),
    rebased(keyOffsets),
    all ? cols.valData() : cols.valData().subarray(valOffsets[from]!, valOffsets[to]!),
    rebased(valOffsets),
    cols.timesView().subarray(from, to),
    cols.diffsView().subarray(from, to),
  );
}

function encodePartColumns(
  n: number,
  keyData: Uint8Array,
  keyOffsets: Uint32Array,
  valData: Uint8Array,
  valOffsets: Uint32Array,
  times: Float64Array,
  diffs: Float64Array,
): Uint8Array {
  // A column whose entries are all alike is stored as one entry (format version 3):
  // a batch's times and diffs usually are, and a keys-only collection's values are
  // all empty. Only what is compact gets a field, so the rest encodes as before.
  const msg: Record<string, unknown> = { formatVersion: FORMAT_VERSION, count: n, keyData, valData };
  const keyWidth = fixedWidth(keyOffsets);
  if (keyWidth === undefined) msg.keyOffsets = uint32sToBytes(keyOffsets);
  else Object.assign(msg, { hasKeyWidth: true, keyWidth });
  const valWidth = fixedWidth(valOffsets);
  if (valWidth === undefined) msg.valOffsets = uint32sToBytes(valOffsets);
  else Object.assign(msg, { hasValWidth: true, valWidth });
  const time = allAlike(times);
  if (time === undefined) msg.times = float64ArrayToBytes(times);
  else Object.assign(msg, { hasTime: true, time });
  const diff = allAlike(diffs);
  if (diff === undefined) msg.diffs = float64ArrayToBytes(diffs);
  else Object.assign(msg, { hasDiff: true, diff });
  return encodeChecksummed(Proto.Part, msg);
}

/** The one value every entry of `col` holds (exactly: -0 is not 0), or undefined; an empty column has none. */
function allAlike(col: Float64Array): number | undefined {
  if (col.length === 0) return undefined;
  const first = col[0]!;
  for (let i = 1; i < col.length; i++) if (col[i] !== first) return undefined;
  if (first === 0) for (let i = 1; i < col.length; i++) if (!Object.is(col[i], first)) return undefined;
  return first;
}

/** The length every item delimited by `offsets` has, or undefined; an empty column has none. */
function fixedWidth(offsets: Uint32Array): number | undefined {
  const n = offsets.length - 1;
  if (n < 1) return undefined;
  const w = offsets[1]! - offsets[0]!;
  for (let i = 1; i < n; i++) if (offsets[i + 1]! - offsets[i]! !== w) return undefined;
  return w;
}

/** `n` entries of `value`, when a compact column's bytes field is empty as it must be. */
function alikeColumn(bytes: Uint8Array, n: number, value: number): Float64Array | undefined {
  // `.length`: an absent bytes field decodes as protobufjs's default, an empty plain array.
  return bytes.length === 0 ? new Float64Array(n).fill(value) : undefined;
}

/** The `n + 1` offsets of `n` items of `width` bytes each, when the offsets field is empty as it must be. */
function widthOffsets(bytes: Uint8Array, n: number, width: number): Uint32Array | undefined {
  if (bytes.length !== 0 || n * width > 0xffffffff) return undefined;
  const out = new Uint32Array(n + 1);
  for (let i = 1; i <= n; i++) out[i] = i * width;
  return out;
}

/** The byte strings back to back, and the n+1 offsets that delimit them. */
function concat(items: readonly Uint8Array[]): [Uint8Array, Uint32Array] {
  const offsets = new Uint32Array(items.length + 1);
  let total = 0;
  for (let i = 0; i < items.length; i++) {
    total += items[i]!.byteLength;
    offsets[i + 1] = total;
  }
  const data = new Uint8Array(total);
  for (let i = 0; i < items.length; i++) data.set(items[i]!, offsets[i]!);
  return [data, offsets];
}

interface DecodedPart {
  formatVersion: number;
  count: number;
  keyData: Uint8Array;
  keyOffsets: Uint8Array;
  valData: Uint8Array;
  valOffsets: Uint8Array;
  times: Uint8Array;
  diffs: Uint8Array;
  hasTime: boolean;
  time: number;
  hasDiff: boolean;
  diff: number;
  hasKeyWidth: boolean;
  keyWidth: number;
  hasValWidth: boolean;
  valWidth: number;
}

/** The first format version whose parts may store compact columns. */
const COMPACT_COLUMNS_FORMAT_VERSION = 3;

const EMPTY = new Uint8Array(0);

export function decodePartData(bytes: Uint8Array, what: string): PartData {
  const c = decodePartColumns(bytes, what);
  return {
    keys: split(c.keyData, c.keyOffsets),
    vals: split(c.valData, c.valOffsets),
    times: Array.from(c.times),
    diffs: Array.from(c.diffs),
  };
}

/**
 * A stored part's columns as they are stored: update `i` has key bytes
 * `keyData[keyOffsets[i], keyOffsets[i+1])`, value bytes likewise, `times[i]` and
 * `diffs[i]`. Decoding allocates a handful of objects per part, none per update, so a
 * reader can go from here straight to the updates it emits. The offsets are checked
 * (they start at 0, never go backwards, end at the column's length).
 */
export interface PartColumns extends ColumnsSource {
  readonly count: number;
}

/** The columns of a stored part (see {@link PartColumns}); a StoredFormatError names `what` if it is corrupt. */
export function decodePartColumns(bytes: Uint8Array, what: string): PartColumns {
  const p = decodeChecksummed<DecodedPart>(Proto.Part, bytes, what);
  const n = p.count;
  if ((p.hasTime || p.hasDiff || p.hasKeyWidth || p.hasValWidth) && p.formatVersion < COMPACT_COLUMNS_FORMAT_VERSION) {
    throw new StoredFormatError(
      // Only damage makes one: no build wrote compact columns under an older version.
      `${what} is corrupt (${bytes.byteLength} bytes): it stores compact columns ` +
        `(format version ${COMPACT_COLUMNS_FORMAT_VERSION}) but says format version ${p.formatVersion}`,
    );
  }
  const keyOffsets = p.hasKeyWidth ? widthOffsets(p.keyOffsets, n, p.keyWidth) : bytesToUint32s(p.keyOffsets, n + 1);
  const valOffsets = p.hasValWidth ? widthOffsets(p.valOffsets, n, p.valWidth) : bytesToUint32s(p.valOffsets, n + 1);
  const times = p.hasTime ? alikeColumn(p.times, n, p.time) : bytesToFloat64s(p.times, n);
  const diffs = p.hasDiff ? alikeColumn(p.diffs, n, p.diff) : bytesToFloat64s(p.diffs, n);
  if (!keyOffsets || !valOffsets || !times || !diffs) {
    throw new StoredFormatError(`${what}: its columns do not hold ${n} updates`);
  }
  // Plain Uint8Array views: subarrays of them are cheaper than Buffer slices.
  const keyData = new Uint8Array(p.keyData.buffer, p.keyData.byteOffset, p.keyData.byteLength);
  const valData = new Uint8Array(p.valData.buffer, p.valData.byteOffset, p.valData.byteLength);
  checkOffsets(keyOffsets, keyData.byteLength, what);
  checkOffsets(valOffsets, valData.byteLength, what);
  return { count: n, keyData, keyOffsets, valData, valOffsets, times, diffs };
}

function checkOffsets(offsets: Uint32Array, length: number, what: string): void {
  const n = offsets.length - 1;
  if (offsets[0] !== 0 || offsets[n] !== length) throw new StoredFormatError(`${what}: column offsets do not span the column`);
  for (let i = 0; i < n; i++) {
    if (offsets[i + 1]! < offsets[i]!) throw new StoredFormatError(`${what}: column offsets go backwards at ${i}`);
  }
}

/** Views (no copies) of each item in `data`, by offsets already checked. */
function split(data: Uint8Array, offsets: Uint32Array): Uint8Array[] {
  const n = offsets.length - 1;
  const out: Uint8Array[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const from = offsets[i]!;
    const to = offsets[i + 1]!;
    out[i] = to === from ? EMPTY : data.subarray(from, to);
  }
  return out;
}

/**
 * The time a stored time `t` of `part` reads as, by the part's own metadata (the
 * module docs' order: rewrite, then keep bounds), or NaN when the keep bounds drop it.
 * Every reader of stored parts interprets times through this.
 */
export function partTime(part: Pick<HollowPart, 'tsRewrite' | 'keep'>, t: number): number {
  const { tsRewrite, keep } = part;
  if (tsRewrite !== undefined && t < tsRewrite) t = tsRewrite;
  if (keep !== undefined && (t < keep.lower || t >= keep.upper)) return NaN;
  return t;
}

/** Applies the part's own metadata (rewrite, keep bounds): `data` itself when it has none, else a filtered copy. */
export function interpretPart(part: HollowPart, data: PartData): PartData {
  if (part.tsRewrite === undefined && part.keep === undefined) return data;
  const out = emptyPartData();
  for (let i = 0; i < data.times.length; i++) {
    const t = partTime(part, data.times[i]!);
    if (Number.isNaN(t)) continue;
    out.keys.push(data.keys[i]!);
    out.vals.push(data.vals[i]!);
    out.times.push(t);
    out.diffs.push(data.diffs[i]!);
  }
  return out;
}

// ---- protobuf form of HollowPart ----

export interface ProtoHollowPartShape {
  key: string;
  inline: Uint8Array;
  encodedSizeBytes: number | { toNumber(): number };
  updateCount: number | { toNumber(): number };
  hasTsRewrite: boolean;
  tsRewrite: number;
  hasKeep: boolean;
  keepLower: number;
  keepUpper: number;
  schemaId: number;
  hasSchemaId: boolean;
}

export function hollowPartToProto(p: HollowPart): Partial<ProtoHollowPartShape> {
  return {
    key: p.key ?? '',
    inline: p.inline ?? new Uint8Array(0),
    encodedSizeBytes: p.encodedSizeBytes,
    updateCount: p.updateCount,
    hasTsRewrite: p.tsRewrite !== undefined,
    tsRewrite: p.tsRewrite ?? 0,
    hasKeep: p.keep !== undefined,
    keepLower: p.keep?.lower ?? 0,
    keepUpper: p.keep?.upper ?? 0,
    hasSchemaId: p.schemaId !== undefined,
    schemaId: p.schemaId ?? 0,
  };
}

export function hollowPartFromProto(p: ProtoHollowPartShape): HollowPart {
  const part: {
    -readonly [K in keyof HollowPart]: HollowPart[K];
  } = {
    encodedSizeBytes: toNumber(p.encodedSizeBytes),
    updateCount: toNumber(p.updateCount),
  };
  if (p.key) part.key = p.key;
  else part.inline = p.inline;
  if (p.hasTsRewrite) part.tsRewrite = p.tsRewrite;
  if (p.hasKeep) part.keep = { lower: p.keepLower, upper: p.keepUpper };
  if (p.hasSchemaId) part.schemaId = p.schemaId;
  return part;
}
