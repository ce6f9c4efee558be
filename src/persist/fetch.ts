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
import type { Codec, ShardCodecs } from './codec.js';
import type { PersistConfig } from './config.js';
import { InvariantViolation } from './errors.js';
import { decodePartColumns, partTime, type HollowPart, type PartColumns } from './part.js';
import { withStorageRetry } from './storage-retry.js';
import type { Update } from './update.js';
import type { UpdateColumns } from './update-columns.js';

/** Reads a part's columns as stored (inline or from Blob); its rewrite and keep bounds are not applied yet. */
export async function fetchPartColumns(blob: Blob, cfg: PersistConfig, shardId: string, part: HollowPart): Promise<PartColumns> {
  return decodePartColumns(await fetchPartBytes(blob, cfg, shardId, part), partName(part));
}

/** Names a part in errors. */
export function partName(part: HollowPart): string {
  return `batch part ${part.key ?? '(inline)'}`;
}

/** The stored bytes of `part`: inline, or read from Blob (a missing blob is an InvariantViolation). */
export async function fetchPartBytes(blob: Blob, cfg: PersistConfig, shardId: string, part: HollowPart): Promise<Uint8Array> {
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
  return bytes;
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

/**
 * Appends to `out` the updates of one fetched part that a listen started at `asOf` and
 * now at `frontier` delivers, decoded with `codecs`, in one pass over the stored
 * columns: the part's own rewrite and keep bounds (part.ts), then the listen's filter
 * (`t > asOf && t >= frontier`). One tuple per delivered update and what the codecs
 * make; with codecs that have `decodeFrom`, no views of the key and value bytes.
 */
export function appendListenUpdates<K, V>(
  cols: PartColumns,
  part: HollowPart,
  asOf: number,
  frontier: number,
  codecs: ShardCodecs<K, V>,
  out: Update<K, V>[],
): void {
  const { keyData, keyOffsets, valData, valOffsets, times, diffs } = cols;
  const decodeKey = decoderFrom(codecs.key);
  const decodeVal = decoderFrom(codecs.val);
  for (let i = 0; i < cols.count; i++) {
    const t = partTime(part, times[i]!);
    // NaN (dropped by the part's keep bounds) fails both comparisons.
    if (!(t > asOf && t >= frontier)) continue;
    out.push([
      decodeKey(keyData, keyOffsets[i]!, keyOffsets[i + 1]!),
      decodeVal(valData, valOffsets[i]!, valOffsets[i + 1]!),
      t,
      diffs[i]!,
    ]);
  }
}

/** The codec's `decodeFrom`, or `decode` of a view for codecs without it. */
function decoderFrom<T>(codec: Codec<T>): (data: Uint8Array, start: number, end: number) => T {
  if (codec.decodeFrom) return codec.decodeFrom.bind(codec);
  return (data, start, end) => codec.decode(data.subarray(start, end));
}

/** The updates buffered in `cols`, decoded with `codecs` (with `decodeFrom`, no views of their bytes). */
export function decodeColumns<K, V>(cols: UpdateColumns, codecs: ShardCodecs<K, V>): Update<K, V>[] {
  const { keyData, keyOffsets, valData, valOffsets, times, diffs } = cols.asSource();
  const decodeKey = decoderFrom(codecs.key);
  const decodeVal = decoderFrom(codecs.val);
  const out: Update<K, V>[] = new Array(cols.length);
  for (let i = 0; i < cols.length; i++) {
    out[i] = [
      decodeKey(keyData, keyOffsets[i]!, keyOffsets[i + 1]!),
      decodeVal(valData, valOffsets[i]!, valOffsets[i + 1]!),
      times[i]!,
      diffs[i]!,
    ];
  }
  return out;
}
