/**
 * UpdateColumns: a growable buffer of encoded updates in the shape a stored part
 * has, so a batch is built and encoded without one object per key or value.
 *
 * Layout (the part format's columns, see part.ts): every key's bytes back to back in
 * one slab with `n + 1` offsets (`keyOffsets[0] = 0`), the same for values, and times
 * and diffs in two Float64Arrays. `push` copies the key and value bytes in (a string
 * key or value it writes as UTF-8 straight into the slab), so the caller may reuse or
 * mutate its arrays at once, and the memory held is the bytes
 * plus 24 bytes per update (two offsets, a time, a diff) plus the unused capacity.
 *
 * Invariants:
 * - the first `length` entries of every column are the updates, in push order;
 * - `key(i)` / `val(i)` are views into the slabs: valid until the next `push` that
 *   grows a slab, or `clear()`; copy them to keep them longer;
 * - capacity only grows (doubling), and `clear()` keeps it, so a buffer reused for
 *   the next batch (a Txn's spills) allocates nothing once it has grown.
 *
 * Example:
 * ```ts
 * const c = new UpdateColumns();
 * c.push(utf8('a'), new Uint8Array(0), 0, 1);
 * c.push('bc', new Uint8Array([7]), 0, -1);     // a string is stored as its UTF-8
 * c.length;                 // 2
 * c.keyData();              // bytes 'a','b','c'
 * c.keyOffsetsView();       // Uint32Array [0, 1, 3]
 * c.val(1);                 // Uint8Array [7]
 * ```
 */

import { utf8Capacity, writeUtf8 } from './codec.js';

/**
 * A key or value to store: its encoded bytes, or a string, stored as its UTF-8 bytes
 * (what `Codecs.string` encodes it to) without an array of its own in between.
 */
export type RowField = Uint8Array | string;

/**
 * What an update costs beyond its key and value bytes, in these columns and in an
 * encoded part alike: two offsets, a time and a diff. Batches and merges cut parts,
 * and a Txn spills, by {@link UpdateColumns.sizeBytes} counted with it.
 */
export const UPDATE_OVERHEAD_BYTES = 24;

/** Smallest slab or column capacity once anything is pushed: a batch of one short row allocates little. */
const MIN_BYTES = 256;
const MIN_ROWS = 16;

// Until the first push every buffer shares these (never written: any push grows first),
// so an empty UpdateColumns (a builder that is never used, a buffer just taken) costs
// no typed-array allocations, which are dear next to a one-row batch.
const NO_BYTES = new Uint8Array(0);
const NO_NUMBERS = new Float64Array(0);
/** `offsets[0] = 0` of an empty buffer. */
const ZERO_OFFSET = new Uint32Array(1);

/** Columns laid out as UpdateColumns holds them (a decoded part's PartColumns is one). */
export interface ColumnsSource {
  readonly keyData: Uint8Array;
  readonly keyOffsets: Uint32Array;
  readonly valData: Uint8Array;
  readonly valOffsets: Uint32Array;
  readonly times: Float64Array;
  readonly diffs: Float64Array;
}

export class UpdateColumns {
  private keyBytes: Uint8Array = NO_BYTES;
  private valBytes: Uint8Array = NO_BYTES;
  private keyOffsets: Uint32Array = ZERO_OFFSET;
  private valOffsets: Uint32Array = ZERO_OFFSET;
  private timeCol: Float64Array = NO_NUMBERS;
  private diffCol: Float64Array = NO_NUMBERS;
  private n = 0;

  /** Updates held. */
  get length(): number {
    return this.n;
  }

  /** Key and value bytes held. */
  get dataBytes(): number {
    return this.keyOffsets[this.n]! + this.valOffsets[this.n]!;
  }

  /**
   * Appends one update, copying its key and value bytes (a string field is written as
   * its UTF-8 bytes, straight into the slab: no array of its own). Returns the key and
   * value bytes stored.
   */
  push(key: RowField, val: RowField, t: number, d: number): number {
    const n = this.n;
    if (n === this.timeCol.length) this.growRows(n + 1);
    const k0 = this.keyOffsets[n]!;
    const v0 = this.valOffsets[n]!;
    const kRoom = fieldCapacity(key);
    const vRoom = fieldCapacity(val);
    if (k0 + kRoom > this.keyBytes.byteLength) this.keyBytes = grown(this.keyBytes, k0, k0 + kRoom);
    if (v0 + vRoom > this.valBytes.byteLength) this.valBytes = grown(this.valBytes, v0, v0 + vRoom);
    const k1 = k0 + writeField(key, this.keyBytes, k0);
    const v1 = v0 + writeField(val, this.valBytes, v0);
    this.keyOffsets[n + 1] = k1;
    this.valOffsets[n + 1] = v1;
    this.timeCol[n] = t;
    this.diffCol[n] = d;
    this.n = n + 1;
    return k1 - k0 + (v1 - v0);
  }

  /**
   * Keeps only the first `length` updates (undoing pushes: a batch of rows that
   * failed part way); capacity is kept.
   */
  truncate(length: number): void {
    if (!(length >= 0 && length <= this.n)) throw new RangeError(`UpdateColumns.truncate(${length}) of ${this.n} updates`);
    this.n = length;
  }

  /** Key and value bytes plus the per-update overhead ({@link UPDATE_OVERHEAD_BYTES}) of every update held. */
  get sizeBytes(): number {
    return this.dataBytes + UPDATE_OVERHEAD_BYTES * this.n;
  }

  /** Key plus value bytes of update `i`, from the offsets (no view). */
  rowBytes(i: number): number {
    return this.keyOffsets[i + 1]! - this.keyOffsets[i]! + (this.valOffsets[i + 1]! - this.valOffsets[i]!);
  }

  key(i: number): Uint8Array {
    return this.keyBytes.subarray(this.keyOffsets[i]!, this.keyOffsets[i + 1]!);
  }
  val(i: number): Uint8Array {
    return this.valBytes.subarray(this.valOffsets[i]!, this.valOffsets[i + 1]!);
  }
  time(i: number): number {
    return this.timeCol[i]!;
  }
  diff(i: number): number {
    return this.diffCol[i]!;
  }

  /** The keys' bytes back to back (a view). */
  keyData(): Uint8Array {
    return this.keyBytes.subarray(0, this.keyOffsets[this.n]!);
  }
  /** The `length + 1` key offsets (a view). */
  keyOffsetsView(): Uint32Array {
    return this.keyOffsets.subarray(0, this.n + 1);
  }
  valData(): Uint8Array {
    return this.valBytes.subarray(0, this.valOffsets[this.n]!);
  }
  valOffsetsView(): Uint32Array {
    return this.valOffsets.subarray(0, this.n + 1);
  }
  timesView(): Float64Array {
    return this.timeCol.subarray(0, this.n);
  }
  diffsView(): Float64Array {
    return this.diffCol.subarray(0, this.n);
  }

  /**
   * Appends rows `[from, to)` of stored columns (a decoded part's, see part.ts) with
   * a few bulk copies: no view or object per row.
   */
  pushRange(src: ColumnsSource, from: number, to: number): void {
    const count = to - from;
    if (count <= 0) return;
    const n = this.n;
    if (n + count > this.timeCol.length) this.growRows(n + count);
    const k0 = this.keyOffsets[n]!;
    const v0 = this.valOffsets[n]!;
    const kFrom = src.keyOffsets[from]!;
    const kTo = src.keyOffsets[to]!;
    const vFrom = src.valOffsets[from]!;
    const vTo = src.valOffsets[to]!;
    if (k0 + kTo - kFrom > this.keyBytes.byteLength) this.keyBytes = grown(this.keyBytes, k0, k0 + kTo - kFrom);
    if (v0 + vTo - vFrom > this.valBytes.byteLength) this.valBytes = grown(this.valBytes, v0, v0 + vTo - vFrom);
    if (kTo > kFrom) this.keyBytes.set(src.keyData.subarray(kFrom, kTo), k0);
    if (vTo > vFrom) this.valBytes.set(src.valData.subarray(vFrom, vTo), v0);
    for (let i = 1; i <= count; i++) {
      this.keyOffsets[n + i] = k0 + src.keyOffsets[from + i]! - kFrom;
      this.valOffsets[n + i] = v0 + src.valOffsets[from + i]! - vFrom;
    }
    this.timeCol.set(src.times.subarray(from, to), n);
    this.diffCol.set(src.diffs.subarray(from, to), n);
    this.n = n + count;
  }

  /**
   * Appends row `j` of `src` at time `t` with diff `d`: a byte loop for short keys
   * and values (no view), one bulk copy for long ones.
   */
  pushFrom(src: ColumnsSource, j: number, t: number, d: number): void {
    const n = this.n;
    if (n === this.timeCol.length) this.growRows(n + 1);
    const ka = src.keyOffsets[j]!;
    const kb = src.keyOffsets[j + 1]!;
    const va = src.valOffsets[j]!;
    const vb = src.valOffsets[j + 1]!;
    const k0 = this.keyOffsets[n]!;
    const v0 = this.valOffsets[n]!;
    if (k0 + kb - ka > this.keyBytes.byteLength) this.keyBytes = grown(this.keyBytes, k0, k0 + kb - ka);
    if (v0 + vb - va > this.valBytes.byteLength) this.valBytes = grown(this.valBytes, v0, v0 + vb - va);
    copyRange(src.keyData, ka, kb, this.keyBytes, k0);
    copyRange(src.valData, va, vb, this.valBytes, v0);
    this.keyOffsets[n + 1] = k0 + kb - ka;
    this.valOffsets[n + 1] = v0 + vb - va;
    this.timeCol[n] = t;
    this.diffCol[n] = d;
    this.n = n + 1;
  }

  /** Whether row `i` has the same key and value bytes as row `j` of `src` (times and diffs not compared). */
  sameKeyVal(i: number, src: ColumnsSource, j: number): boolean {
    return (
      rangesEqual(this.keyBytes, this.keyOffsets[i]!, this.keyOffsets[i + 1]!, src.keyData, src.keyOffsets[j]!, src.keyOffsets[j + 1]!) &&
      rangesEqual(this.valBytes, this.valOffsets[i]!, this.valOffsets[i + 1]!, src.valData, src.valOffsets[j]!, src.valOffsets[j + 1]!)
    );
  }

  /** Adds `d` to row `i`'s diff. */
  addToDiff(i: number, d: number): void {
    this.diffCol[i]! += d;
  }

  /**
   * The buffer as a {@link ColumnsSource}: views of its columns as they are now,
   * valid until the next push that grows a slab, or `clear()`.
   */
  asSource(): ColumnsSource {
    return {
      keyData: this.keyBytes,
      keyOffsets: this.keyOffsets,
      valData: this.valBytes,
      valOffsets: this.valOffsets,
      times: this.timeCol,
      diffs: this.diffCol,
    };
  }

  /** Raises every time of rows `[from, length)` below `floor` to `floor`. */
  raiseTimes(from: number, floor: number): void {
    const times = this.timeCol;
    for (let i = from; i < this.n; i++) if (times[i]! < floor) times[i] = floor;
  }

  /** Forgets every update, keeping the capacity for the next batch. */
  clear(): void {
    this.n = 0;
  }

  /** The bytes this buffer holds allocated, used or not (both slabs and the number columns). */
  get capacityBytes(): number {
    return this.keyBytes.byteLength + this.valBytes.byteLength + this.timeCol.length * UPDATE_OVERHEAD_BYTES;
  }

  /** Grows the four number columns together, in one ArrayBuffer (one allocation, not four). */
  private growRows(need: number): void {
    const size = Math.max(need, MIN_ROWS, this.timeCol.length * 2);
    const buf = new ArrayBuffer(size * 16 + (size + 1) * 8);
    const times = new Float64Array(buf, 0, size);
    const diffs = new Float64Array(buf, size * 8, size);
    const keyOffsets = new Uint32Array(buf, size * 16, size + 1);
    const valOffsets = new Uint32Array(buf, size * 16 + (size + 1) * 4, size + 1);
    times.set(this.timeCol.subarray(0, this.n));
    diffs.set(this.diffCol.subarray(0, this.n));
    keyOffsets.set(this.keyOffsets.subarray(0, this.n + 1));
    valOffsets.set(this.valOffsets.subarray(0, this.n + 1));
    this.timeCol = times;
    this.diffCol = diffs;
    this.keyOffsets = keyOffsets;
    this.valOffsets = valOffsets;
  }
}

/** The bytes `field` may take in a slab (a string's worst case, see writeUtf8). */
function fieldCapacity(field: RowField): number {
  return typeof field === 'string' ? utf8Capacity(field) : field.byteLength;
}

/** Writes `field` into `slab` at `at`; returns the bytes written. An empty field writes nothing (the shared empty slab is never touched). */
function writeField(field: RowField, slab: Uint8Array, at: number): number {
  if (typeof field === 'string') return field.length === 0 ? 0 : writeUtf8(field, slab, at);
  if (field.byteLength > 0) slab.set(field, at);
  return field.byteLength;
}

/** A slab of at least `need` bytes (double the old one at least) holding its first `used` bytes. */
function grown(old: Uint8Array, used: number, need: number): Uint8Array {
  const next = new Uint8Array(Math.max(need, MIN_BYTES, old.byteLength * 2));
  next.set(old.subarray(0, used));
  return next;
}

/** Ranges at most this long are copied and compared byte by byte: a view would cost more. */
const SHORT_RANGE = 32;

/** Copies `from[a, b)` to `to` at `at`. */
function copyRange(from: Uint8Array, a: number, b: number, to: Uint8Array, at: number): void {
  if (b - a <= SHORT_RANGE) {
    for (let i = a; i < b; i++) to[at + i - a] = from[i]!;
  } else {
    to.set(from.subarray(a, b), at);
  }
}

/** Whether `x[xa, xb)` and `y[ya, yb)` hold the same bytes. */
function rangesEqual(x: Uint8Array, xa: number, xb: number, y: Uint8Array, ya: number, yb: number): boolean {
  if (xb - xa !== yb - ya) return false;
  for (let i = 0; i < xb - xa; i++) if (x[xa + i] !== y[ya + i]) return false;
  return true;
}

/**
 * A few emptied UpdateColumns kept for reuse, so a stream of similar batches (a
 * sink's transactions, group commits) does not grow a fresh buffer from empty for
 * each. Only buffers up to `maxBytes` of capacity are kept, at most `maxBuffers` of
 * them: a big transaction's buffer goes to the garbage collector, not into the pool.
 *
 * Invariant: a buffer is given back only once nothing reads it any more (its rows
 * uploaded, no builder still borrowing it); `take` hands it out empty.
 *
 * Example:
 * ```ts
 * const pool = new ColumnsPool();
 * const c = pool.take();   // empty; grown capacity if one was given back
 * c.push('k', '', 0, 1);
 * pool.give(c);            // cleared and kept for the next take
 * ```
 */
export class ColumnsPool {
  private readonly free: UpdateColumns[] = [];

  constructor(
    private readonly maxBuffers = 4,
    private readonly maxBytes = 1024 * 1024,
  ) {}

  /** An empty buffer: a kept one if there is one, else a new one. */
  take(): UpdateColumns {
    return this.free.pop() ?? new UpdateColumns();
  }

  /** Gives `cols` back (emptied); kept only while the pool has room and it is small enough. */
  give(cols: UpdateColumns): void {
    cols.clear();
    if (this.free.length < this.maxBuffers && cols.capacityBytes <= this.maxBytes && !this.free.includes(cols)) this.free.push(cols);
  }
}
