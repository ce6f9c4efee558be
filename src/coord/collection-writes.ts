/**
 * Writes by collection: what callers hand to group commit, checked on arrival and
 * merged per collection when a group commits.
 *
 * Invariants:
 * - A row is checked when it is submitted (its diff is a safe integer; key and value
 *   encode with the data codecs), so one bad write is rejected alone and can never
 *   fail the group it would have joined.
 * - Merging is consolidation: rows of one collection with equal *encoded* key and
 *   value are one row whose diff is the sum; rows summing to zero disappear. The
 *   result does not depend on how the rows were split between writes or in which
 *   order they came.
 *
 * Worked example (collection `d0`):
 * ```
 * write 1: d0 ← ("a", +1), ("b", +1)
 * write 2: d0 ← ("a", +1), ("b", -1)
 * merged:  d0 ← ("a", +2)
 * ```
 */
import type { ShardCodecs } from '../persist/codec.js';
import { arrayOf, invalidArgument } from '../persist/argument-checks.js';
import { assertShardId, type ShardId } from '../persist/shard-id.js';
import { assertDiff } from '../persist/time.js';

/** One row of a write: key, value and diff; its time is the commit time. */
export type WriteRow<K, V> = readonly [key: K, val: V, diff: number];

/** Rows per collection, as a Map or a plain object keyed by collection (data shard) id. */
export type WritesByCollection<K, V> =
  | ReadonlyMap<ShardId, Iterable<WriteRow<K, V>>>
  | Readonly<Record<ShardId, Iterable<WriteRow<K, V>>>>;

/** A checked row, with the identity consolidation groups it by. */
export interface CheckedRow<K, V> {
  readonly key: K;
  readonly val: V;
  readonly diff: number;
  /** The encoded key and value as one exact string. */
  readonly identity: string;
}

export type CheckedWrites<K, V> = Map<ShardId, CheckedRow<K, V>[]>;

/**
 * Checks and encodes `writes`. Throws (InvalidUsage subclasses, or the codec's own
 * error) on a bad collection id, diff, key or value, naming the collection and row.
 */
export function checkWrites<K, V>(writes: WritesByCollection<K, V>, codecs: ShardCodecs<K, V>): CheckedWrites<K, V> {
  const out: CheckedWrites<K, V> = new Map();
  if (!(writes instanceof Map) && !isPlainObject(writes)) {
    throw invalidArgument(
      'writes',
      'a Map or a plain object from collection id to rows [key, val, diff] (e.g. { [id]: [["k", null, 1]] })',
      writes,
    );
  }
  const entries: Iterable<[ShardId, Iterable<WriteRow<K, V>>]> =
    writes instanceof Map ? writes.entries() : Object.entries(writes as Record<ShardId, Iterable<WriteRow<K, V>>>);
  for (const [id, rows] of entries) {
    assertShardId(id, 'collection id of a write');
    let list = out.get(id);
    if (!list) out.set(id, (list = []));
    let i = 0;
    for (const row of arrayOf(rows, `rows written to ${id}`)) {
      if (!Array.isArray(row) || row.length !== 3) {
        throw invalidArgument(`row ${i} written to ${id}`, 'an array [key, val, diff]', row);
      }
      const [key, val, diff] = row as WriteRow<K, V>;
      assertDiff(diff, `diff of row ${i} written to ${id}`);
      const k = codecs.key.encode(key);
      const v = codecs.val.encode(val);
      list.push({ key, val, diff, identity: identityOf(k, v) });
      i++;
    }
  }
  return out;
}

/** Merges every write and consolidates each collection's rows. */
export function mergeWrites<K, V>(writes: Iterable<CheckedWrites<K, V>>): CheckedWrites<K, V> {
  const sums = new Map<ShardId, Map<string, { key: K; val: V; diff: number; identity: string }>>();
  for (const w of writes) {
    for (const [id, rows] of w) {
      let byIdentity = sums.get(id);
      if (!byIdentity) sums.set(id, (byIdentity = new Map()));
      for (const r of rows) {
        const prev = byIdentity.get(r.identity);
        if (prev) prev.diff += r.diff;
        else byIdentity.set(r.identity, { ...r });
      }
    }
  }
  const out: CheckedWrites<K, V> = new Map();
  for (const [id, byIdentity] of sums) {
    // A collection stays in the result even when its rows cancel out: it was written,
    // so it still needs its lock and its "was it dropped?" check.
    out.set(
      id,
      [...byIdentity.values()].filter((r) => r.diff !== 0),
    );
  }
  return out;
}

/**
 * Key and value bytes as one string: the key's length first, so ("ab", "c") and
 * ("a", "bc") differ; latin1 maps each byte to one code unit, so it is exact.
 */
function identityOf(k: Uint8Array, v: Uint8Array): string {
  return `${k.byteLength}:${latin1(k)}${latin1(v)}`;
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

function isPlainObject(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
