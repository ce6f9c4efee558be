/**
 * BatchIndex: values keyed by the exact bytes of a batch pointer (a committed
 * ProtoBatch, which carries small parts inline and so runs to kilobytes), without
 * making a string of those bytes. A key is a short bucket name — the data shard, the
 * length and a hash of a sample of the bytes — and within a bucket the bytes are
 * compared exactly, so two pointers share an entry only when they are equal.
 *
 * Why: the txns cache looks every batch up twice (at its commit and at its tidy), and a
 * latin1 string of the whole pointer per lookup was a tenth of a catching-up reader's
 * time (allocating, hashing and collecting kilobyte strings).
 *
 * Example:
 * ```ts
 * const idx = new BatchIndex<number>();
 * idx.set('s1', raw, 7);
 * idx.get('s1', Uint8Array.from(raw));  // 7: equal bytes, another array
 * idx.delete('s1', raw);                // 7, and gone
 * ```
 */
import { bufferView } from '../location/bytes.js';

/** How many bytes the bucket hash reads at most (spread over the whole pointer). */
const SAMPLE = 64;

/** A short name for `raw`'s bucket: equal bytes always land in the same one. */
export function bucketOf(dataId: string, raw: Uint8Array): string {
  const n = raw.byteLength;
  const step = n <= SAMPLE ? 1 : Math.floor(n / SAMPLE);
  // FNV-1a over the sampled bytes.
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i += step) h = Math.imul(h ^ raw[i]!, 0x01000193);
  // The last byte always, so pointers differing only at the end still spread.
  if (n > 0) h = Math.imul(h ^ raw[n - 1]!, 0x01000193);
  return `${dataId}|${n}|${h >>> 0}`;
}

/** Whether two byte arrays hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && bufferView(a).equals(b);
}

export class BatchIndex<V> {
  private readonly buckets = new Map<string, { raw: Uint8Array; value: V }[]>();
  private count = 0;

  /** How many pointers are indexed. */
  get size(): number {
    return this.count;
  }

  get(dataId: string, raw: Uint8Array): V | undefined {
    return this.buckets.get(bucketOf(dataId, raw))?.find((e) => sameBytes(e.raw, raw))?.value;
  }

  has(dataId: string, raw: Uint8Array): boolean {
    return this.get(dataId, raw) !== undefined;
  }

  /** Indexes `raw` (which must not be indexed yet) with `value`. */
  set(dataId: string, raw: Uint8Array, value: V): void {
    const name = bucketOf(dataId, raw);
    const bucket = this.buckets.get(name);
    if (bucket) bucket.push({ raw, value });
    else this.buckets.set(name, [{ raw, value }]);
    this.count++;
  }

  /** Removes `raw`; returns its value, or undefined if it was not indexed. */
  delete(dataId: string, raw: Uint8Array): V | undefined {
    const name = bucketOf(dataId, raw);
    const bucket = this.buckets.get(name);
    const at = bucket ? bucket.findIndex((e) => sameBytes(e.raw, raw)) : -1;
    if (!bucket || at < 0) return undefined;
    const [removed] = bucket.splice(at, 1);
    if (bucket.length === 0) this.buckets.delete(name);
    this.count--;
    return removed!.value;
  }
}
