/**
 * Fetching parts and filtering them for a read (and deleting the Blob objects of parts
 * no longer referenced).
 *
 * - snapshot at `asOf`: keep updates with `t <= asOf` and advance each to `asOf`
 *   (done while consolidating, in ReadHandle.snapshotAndFetch);
 * - listen from frontier `f` (started at `asOf`): keep `t > asOf` and `t >= f`, times
 *   unchanged — the second condition drops updates replayed after compaction merged a
 *   batch the listener had already passed.
 */
import type { Blob } from '../location/blob.js';
import type { ShardCodecs } from './codec.js';
import type { PersistConfig } from './config.js';
import { InvariantViolation } from './errors.js';
import { decodePartData, emptyPartData, interpretPart, type HollowPart, type PartData } from './part.js';
import { withStorageRetry } from './storage-retry.js';
import type { Update } from './update.js';

/** Reads a part (inline or from Blob) and applies its own rewrite and keep bounds. */
export async function fetchPart(blob: Blob, cfg: PersistConfig, shardId: string, part: HollowPart): Promise<PartData> {
  let bytes = part.inline;
  if (!bytes) {
    const key = part.key!;
    bytes = await withStorageRetry(cfg, `reading batch part ${key}`, () => blob.get(key));
    if (!bytes) {
      throw new InvariantViolation(
        `batch part ${key} of shard ${shardId} is missing from Blob: it was deleted while still referenced`,
      );
    }
  }
  return interpretPart(part, decodePartData(bytes, `batch part ${part.key ?? '(inline)'}`));
}

/** Deletes the Blob objects of `parts` (inline parts have none). */
export async function deleteParts(blob: Blob, cfg: PersistConfig, parts: readonly HollowPart[]): Promise<void> {
  for (const p of parts) {
    if (p.key) {
      const key = p.key;
      await withStorageRetry(cfg, `deleting blob ${key}`, () => blob.delete(key), { write: true });
    }
  }
}

/** Appends to `out` the updates of `data` a listen started at `asOf` and now at `frontier` delivers. */
export function filterForListen(data: PartData, asOf: number, frontier: number, out: PartData = emptyPartData()): PartData {
  for (let i = 0; i < data.times.length; i++) {
    const t = data.times[i]!;
    if (t <= asOf || t < frontier) continue;
    out.keys.push(data.keys[i]!);
    out.vals.push(data.vals[i]!);
    out.times.push(t);
    out.diffs.push(data.diffs[i]!);
  }
  return out;
}

export function decodeUpdates<K, V>(data: PartData, codecs: ShardCodecs<K, V>): Update<K, V>[] {
  const out: Update<K, V>[] = new Array(data.times.length);
  const { key, val } = codecs;
  for (let i = 0; i < data.times.length; i++) {
    out[i] = [key.decode(data.keys[i]!), val.decode(data.vals[i]!), data.times[i]!, data.diffs[i]!];
  }
  return out;
}
