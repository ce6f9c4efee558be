/**
 * Consolidation: sum the diffs of identical `(key, val, time)` updates and drop
 * the ones that sum to zero. Keys and values are compared as encoded bytes.
 *
 * Example: `[("a",1,+1), ("a",1,+2), ("b",1,+1), ("b",1,-1)]` → `[("a",1,+3)]`.
 *
 * {@link Consolidator} does it incrementally in one open-addressing hash table
 * ({@link hashRanges}: the key and value bytes, mixed with the time), so a snapshot
 * can feed it part by part without building intermediate arrays. The result keeps
 * the order in which each distinct update first appeared. {@link ColumnConsolidator}
 * and {@link consolidateColumns} do the same on columns (UpdateColumns, stored parts),
 * with no view or object per row.
 *
 * A caller that consolidates encoded rows but must keep data of its own per row (say
 * the decoded key and value it will write) uses the index `add` returns: the distinct
 * updates are numbered 0, 1, … in first-appearance order, and {@link
 * Consolidator.finishIndexed} says which of them survived.
 *
 * ```ts
 * const c = new Consolidator();
 * c.add(a, x, 0, +1);  // → 0
 * c.add(b, x, 0, +1);  // → 1
 * c.add(a, x, 0, -1);  // → 0 again: summed into the first
 * c.finishIndexed();   // { updates: [(b, x, 0, +1)], indices: [1] }
 * ```
 */
import { crc32 } from 'node:zlib';
import { emptyPartData, type PartData } from './part.js';
import { UpdateColumns, type ColumnsSource } from './update-columns.js';

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.byteLength;
  if (n !== b.byteLength) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Rows of at most this many key and value bytes are hashed in JavaScript, longer ones by zlib. */
const SHORT_ROW_BYTES = 64;

/**
 * @internal The hash of an update whose key is `kd[k0, k1)` and value `vd[v0, v1)`,
 * at time `t`. Short rows: FNV-1a over the bytes where they lie (no view, no native
 * call). Long rows: zlib's native CRC-32, 15-20× faster than a byte loop on a 1 KiB
 * value. Either way the key is kept apart from the value (("ab","c") and ("a","bc")
 * hash apart), the time is mixed in, and a final avalanche spreads the low bits a
 * hash table indexes by. Equal updates have equal lengths, so they always take the
 * same branch and hash alike.
 *
 * Empty bytes are never passed to zlib: on a zero-length view of a zero-length buffer
 * (an empty slab's `subarray`) node 20's `crc32(data, value)` returns 0, not `value`.
 */
export function hashRanges(kd: Uint8Array, k0: number, k1: number, vd: Uint8Array, v0: number, v1: number, t: number): number {
  let h: number;
  if (k1 - k0 + (v1 - v0) <= SHORT_ROW_BYTES) {
    h = 0x811c9dc5;
    for (let i = k0; i < k1; i++) h = Math.imul(h ^ kd[i]!, 0x01000193);
    h = Math.imul(h ^ 0xff, 0x01000193);
    for (let i = v0; i < v1; i++) h = Math.imul(h ^ vd[i]!, 0x01000193);
  } else {
    h = ((k1 > k0 ? crc32(kd.subarray(k0, k1)) : 0) ^ (k1 - k0)) >>> 0;
    if (v1 > v0) h = crc32(vd.subarray(v0, v1), h);
  }
  h = Math.imul(h ^ (t | 0), 0x01000193);
  h = Math.imul(h ^ ((t / 0x100000000) | 0), 0x01000193);
  // murmur3's finalizer: every input bit reaches the low bits.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** @internal The hash of update `(k, v, t)` ({@link hashRanges} over whole arrays). */
export function hashUpdate(k: Uint8Array, v: Uint8Array, t: number): number {
  return hashRanges(k, 0, k.byteLength, v, 0, v.byteLength, t);
}

/** The hash of row `j` of `src` at time `t`. */
function hashRow(src: ColumnsSource, j: number, t: number): number {
  return hashRanges(src.keyData, src.keyOffsets[j]!, src.keyOffsets[j + 1]!, src.valData, src.valOffsets[j]!, src.valOffsets[j + 1]!, t);
}

/** An open-addressing table of row numbers by hash, at most half full. */
class RowTable {
  private slots: Int32Array;
  private mask: number;
  /** Row `i`'s hash at `hashCol[i]`, for the first `count` rows (a typed array: no boxed numbers). */
  private hashCol: Uint32Array;
  private count = 0;

  /** Sized for `expectedRows` without growing (a buffer of known length hashes each row once, never rehashes). */
  constructor(expectedRows = 0) {
    let size = 16;
    while (size < expectedRows * 2) size *= 2;
    this.slots = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    // At most half the slots are used, plus the row whose insert makes the table grow.
    this.hashCol = new Uint32Array((size >>> 1) + 1);
  }

  /** The first slot of `h`'s probe sequence; follow with {@link next}. */
  start(h: number): number {
    return h & this.mask;
  }
  next(slot: number): number {
    return (slot + 1) & this.mask;
  }
  at(slot: number): number {
    return this.slots[slot]!;
  }
  /** The hash of row `row`. */
  hash(row: number): number {
    return this.hashCol[row]!;
  }

  /** Records row `row` (the next row number) with hash `h` in free slot `slot`. */
  insert(slot: number, row: number, h: number): void {
    this.slots[slot] = row;
    this.hashCol[this.count++] = h;
    if (this.count * 2 > this.slots.length) this.grow();
  }

  private grow(): void {
    const size = this.slots.length * 2;
    this.slots = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    const hashes = new Uint32Array((size >>> 1) + 1);
    hashes.set(this.hashCol.subarray(0, this.count));
    this.hashCol = hashes;
    for (let i = 0; i < this.count; i++) {
      let slot = hashes[i]! & this.mask;
      while (this.slots[slot]! >= 0) slot = (slot + 1) & this.mask;
      this.slots[slot] = i;
    }
  }
}

/**
 * Consolidation straight on columns: rows of stored parts (or any {@link
 * ColumnsSource}) go in by index, and the distinct updates are copied into one
 * UpdateColumns as they first appear, so neither side makes a view or an object per
 * row. The result keeps first-appearance order, like {@link Consolidator}.
 *
 * ```ts
 * const c = new ColumnConsolidator();
 * for (let i = 0; i < part.count; i++) c.add(part, i, Math.max(part.times[i]!, since), part.diffs[i]!);
 * const merged = c.finish();   // UpdateColumns, zeros dropped
 * ```
 */
export class ColumnConsolidator {
  private rows = new UpdateColumns();
  private readonly table = new RowTable();

  /** Adds row `j` of `src` at time `t` with diff `d`. */
  add(src: ColumnsSource, j: number, t: number, d: number): void {
    const h = hashRow(src, j, t);
    const { rows, table } = this;
    let slot = table.start(h);
    for (;;) {
      const at = table.at(slot);
      if (at < 0) break;
      if (table.hash(at) === h && rows.time(at) === t && rows.sameKeyVal(at, src, j)) {
        rows.addToDiff(at, d);
        return;
      }
      slot = table.next(slot);
    }
    table.insert(slot, rows.length, h);
    rows.pushFrom(src, j, t, d);
  }

  /** The consolidated updates, zeros dropped. The consolidator is spent afterwards. */
  finish(): UpdateColumns {
    const rows = this.rows;
    this.rows = new UpdateColumns();
    return withoutZeros(rows);
  }
}

/** `cols` itself when no diff is zero, else a copy without those rows. */
function withoutZeros(cols: UpdateColumns): UpdateColumns {
  let zeros = 0;
  for (let i = 0; i < cols.length; i++) if (cols.diff(i) === 0) zeros++;
  if (zeros === 0) return cols;
  const src = cols.asSource();
  const out = new UpdateColumns();
  // Runs of kept rows, each in one bulk copy.
  for (let i = 0; i < cols.length; ) {
    if (cols.diff(i) === 0) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < cols.length && cols.diff(j) !== 0) j++;
    out.pushRange(src, i, j);
    i = j;
  }
  return out;
}

export class Consolidator {
  private readonly out: PartData = emptyPartData();
  private table = new RowTable();

  /**
   * Adds one update. Returns the index of the distinct update it was summed into: 0
   * for the first distinct `(key, val, time)`, 1 for the next, and so on.
   */
  add(k: Uint8Array, v: Uint8Array, t: number, d: number): number {
    const { out, table } = this;
    const h = hashUpdate(k, v, t);
    let slot = table.start(h);
    for (;;) {
      const at = table.at(slot);
      if (at < 0) break;
      if (table.hash(at) === h && out.times[at] === t && bytesEqual(out.keys[at]!, k) && bytesEqual(out.vals[at]!, v)) {
        out.diffs[at]! += d;
        return at;
      }
      slot = table.next(slot);
    }
    const index = out.diffs.length;
    table.insert(slot, index, h);
    out.keys.push(k);
    out.vals.push(v);
    out.times.push(t);
    out.diffs.push(d);
    return index;
  }

  addAll(data: PartData): void {
    for (let i = 0; i < data.times.length; i++) this.add(data.keys[i]!, data.vals[i]!, data.times[i]!, data.diffs[i]!);
  }

  /** The consolidated updates, zeros dropped. The consolidator is spent afterwards. */
  finish(): PartData {
    return this.dropZeros(undefined);
  }

  /**
   * Like {@link finish}, and also, for each update kept, the index `add` returned for
   * it (increasing, since the order is first appearance).
   */
  finishIndexed(): { updates: PartData; indices: number[] } {
    const indices: number[] = [];
    return { updates: this.dropZeros(indices), indices };
  }

  private dropZeros(keptIndices: number[] | undefined): PartData {
    const out = this.out;
    let w = 0;
    for (let r = 0; r < out.diffs.length; r++) {
      if (out.diffs[r] === 0) continue;
      keptIndices?.push(r);
      out.keys[w] = out.keys[r]!;
      out.vals[w] = out.vals[r]!;
      out.times[w] = out.times[r]!;
      out.diffs[w] = out.diffs[r]!;
      w++;
    }
    out.keys.length = out.vals.length = out.times.length = out.diffs.length = w;
    this.table = new RowTable();
    return out;
  }
}

export function consolidatePartData(data: PartData): PartData {
  const c = new Consolidator();
  c.addAll(data);
  return c.finish();
}

/**
 * Consolidates buffered columns. When nothing sums or cancels (the usual case for a
 * batch being written) the columns come back as they are, with no copy; otherwise a
 * new, consolidated UpdateColumns. Rows are hashed where they lie in the slabs: no
 * view or object per row.
 */
export function consolidateColumns(cols: UpdateColumns): UpdateColumns {
  const n = cols.length;
  const src = cols.asSource();
  const table = new RowTable(n);
  for (let i = 0; i < n; i++) {
    if (cols.diff(i) === 0) return consolidateAll(cols);
    const t = cols.time(i);
    const h = hashRow(src, i, t);
    let slot = table.start(h);
    for (;;) {
      const at = table.at(slot);
      if (at < 0) break;
      // An earlier row with the same (key, val, time): something sums.
      if (table.hash(at) === h && cols.time(at) === t && cols.sameKeyVal(at, src, i)) return consolidateAll(cols);
      slot = table.next(slot);
    }
    table.insert(slot, i, h);
  }
  return cols;
}

/** Every row of `cols` through a ColumnConsolidator (rare for a write: something sums or cancels). */
function consolidateAll(cols: UpdateColumns): UpdateColumns {
  const src = cols.asSource();
  const c = new ColumnConsolidator();
  for (let i = 0; i < cols.length; i++) c.add(src, i, cols.time(i), cols.diff(i));
  return c.finish();
}
