/**
 * Consolidation: sum the diffs of identical `(key, val, time)` updates and drop
 * the ones that sum to zero. Keys and values are compared as encoded bytes.
 *
 * Example: `[("a",1,+1), ("a",1,+2), ("b",1,+1), ("b",1,-1)]` → `[("a",1,+3)]`.
 *
 * The result keeps the order in which each distinct update first appeared.
 */
import { emptyPartData, type PartData } from './part.js';

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

export function consolidatePartData(data: PartData): PartData {
  const n = data.times.length;
  const index = new Map<string, number>();
  const out = emptyPartData();
  for (let i = 0; i < n; i++) {
    const k = data.keys[i]!;
    const v = data.vals[i]!;
    const t = data.times[i]!;
    // The key length prefix keeps ("ab","c") and ("a","bc") apart.
    const id = `${t}:${k.byteLength}:${latin1(k)}${latin1(v)}`;
    const at = index.get(id);
    if (at === undefined) {
      index.set(id, out.diffs.length);
      out.keys.push(k);
      out.vals.push(v);
      out.times.push(t);
      out.diffs.push(data.diffs[i]!);
    } else {
      out.diffs[at]! += data.diffs[i]!;
    }
  }
  let w = 0;
  for (let r = 0; r < out.diffs.length; r++) {
    if (out.diffs[r] === 0) continue;
    out.keys[w] = out.keys[r]!;
    out.vals[w] = out.vals[r]!;
    out.times[w] = out.times[r]!;
    out.diffs[w] = out.diffs[r]!;
    w++;
  }
  out.keys.length = out.vals.length = out.times.length = out.diffs.length = w;
  return out;
}

/** Appends `src` to `dst` in place. */
export function appendPartData(dst: PartData, src: PartData): void {
  for (let i = 0; i < src.times.length; i++) {
    dst.keys.push(src.keys[i]!);
    dst.vals.push(src.vals[i]!);
    dst.times.push(src.times[i]!);
    dst.diffs.push(src.diffs[i]!);
  }
}
