/**
 * Consolidation: sum the diffs of identical `(key, val, time)` updates and drop
 * the ones that sum to zero. Keys and values are compared as encoded bytes.
 *
 * Example: `[("a",1,+1), ("a",1,+2), ("b",1,+1), ("b",1,-1)]` → `[("a",1,+3)]`.
 *
 * {@link Consolidator} does it incrementally in one open-addressing hash table
 * (CRC-32 of the key and value bytes, mixed with the time), so a snapshot can feed
 * it part by part without building intermediate arrays. The result keeps the order in
 * which each distinct update first appeared.
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
import { UpdateColumns } from './update-columns.js';

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.byteLength;
  if (n !== b.byteLength) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * @internal The hash of an update: CRC-32 of the key, then of the value (seeded with
 * the key's CRC and length, so ("ab","c") and ("a","bc") hash apart), mixed with the
 * time. zlib's CRC is native code: 15-20× faster than a byte loop in JavaScript on a
 * 1 KiB value, and faster even on an 11-byte key with no value.
 *
 * Empty bytes are never passed to zlib: on a zero-length view of a zero-length buffer
 * (an empty slab's `subarray`) node 20's `crc32(data, value)` returns 0, not `value`,
 * which made every key-only update hash alike (and consolidation quadratic).
 */
export function hashUpdate(k: Uint8Array, v: Uint8Array, t: number): number {
  let h = ((k.byteLength === 0 ? 0 : crc32(k)) ^ k.byteLength) >>> 0;
  if (v.byteLength > 0) h = crc32(v, h);
  h = Math.imul(h ^ (t | 0), 0x01000193);
  h = Math.imul(h ^ ((t / 0x100000000) | 0), 0x01000193);
  return h >>> 0;
}

export class Consolidator {
  private readonly out: PartData = emptyPartData();
  private hashes: number[] = [];
  private table: Int32Array = new Int32Array(16).fill(-1);
  private mask = 15;

  /**
   * Adds one update. Returns the index of the distinct update it was summed into: 0
   * for the first distinct `(key, val, time)`, 1 for the next, and so on.
   */
  add(k: Uint8Array, v: Uint8Array, t: number, d: number): number {
    const { out } = this;
    const h = hashUpdate(k, v, t);
    let slot = h & this.mask;
    for (;;) {
      const at = this.table[slot]!;
      if (at < 0) break;
      if (this.hashes[at] === h && out.times[at] === t && bytesEqual(out.keys[at]!, k) && bytesEqual(out.vals[at]!, v)) {
        out.diffs[at]! += d;
        return at;
      }
      slot = (slot + 1) & this.mask;
    }
    const index = out.diffs.length;
    this.table[slot] = index;
    this.hashes.push(h);
    out.keys.push(k);
    out.vals.push(v);
    out.times.push(t);
    out.diffs.push(d);
    // Keep the table at most half full so probes stay short.
    if ((index + 1) * 2 > this.table.length) this.grow();
    return index;
  }

  addAll(data: PartData): void {
    for (let i = 0; i < data.times.length; i++) this.add(data.keys[i]!, data.vals[i]!, data.times[i]!, data.diffs[i]!);
  }

  private grow(): void {
    const size = this.table.length * 2;
    this.table = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    for (let i = 0; i < this.hashes.length; i++) {
      let slot = this.hashes[i]! & this.mask;
      while (this.table[slot]! >= 0) slot = (slot + 1) & this.mask;
      this.table[slot] = i;
    }
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
    this.hashes = [];
    this.table = new Int32Array(0);
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
 * new, consolidated UpdateColumns.
 */
export function consolidateColumns(cols: UpdateColumns): UpdateColumns {
  const c = new Consolidator();
  const n = cols.length;
  let unchanged = true;
  for (let i = 0; i < n; i++) {
    const d = cols.diff(i);
    // Distinct updates are numbered in first-appearance order: row i got a number of
    // its own only if no earlier row had its (key, val, time).
    if (c.add(cols.key(i), cols.val(i), cols.time(i), d) !== i || d === 0) unchanged = false;
  }
  if (unchanged) return cols;
  // Something sums or cancels (rare for a write): copy out what survives.
  const data = c.finish();
  const out = new UpdateColumns();
  for (let i = 0; i < data.times.length; i++) out.push(data.keys[i]!, data.vals[i]!, data.times[i]!, data.diffs[i]!);
  return out;
}
