/**
 * Writes by collection: what callers hand to group commit, checked on arrival and
 * merged per collection when a group commits.
 *
 * Invariants:
 * - A row is checked when it is submitted (its diff is a safe integer; key and value
 *   encode with the data codecs), so one bad write is rejected alone and can never
 *   fail the group it would have joined.
 * - Merging is consolidation, by persist's {@link Consolidator} over the encoded key
 *   and value (every row at time 0: they all commit at the group's one time): rows of
 *   one collection with equal encoded key and value are one row whose diff is the
 *   sum; rows summing to zero disappear. Its rows do not depend on how the rows were
 *   split between writes; they come in first-appearance order, and each keeps the
 *   decoded key and value of its first occurrence (group commit writes those).
 * - A collection that was written stays in the merge even when its rows cancel out:
 *   it still needs its lock and its "was it dropped?" check.
 *
 * Worked example (collection `d0`):
 * ```
 * write 1: d0 ← ("a", +1), ("b", +1)
 * write 2: d0 ← ("a", +1), ("b", -1)
 * merged:  d0 ← ("a", +2)
 * ```
 */
import { Consolidator } from '../persist/consolidate.js';
import { arrayOf, invalidArgument } from '../persist/argument-checks.js';
import { assertShardId, type ShardId } from '../persist/shard-id.js';
import { assertDiff } from '../persist/time.js';
import type { RowEncoder } from '../txn/row-encoder.js';

/**
 * One row of a write: key, value and diff; its time is the commit time.
 *
 * Example:
 * ```ts
 * const row: WriteRow<string, null> = ['alice', null, +1];
 * ```
 */
export type WriteRow<K, V> = readonly [key: K, val: V, diff: number];

/**
 * Rows per collection, as a Map or a plain object keyed by collection (data shard) id.
 *
 * Example:
 * ```ts
 * const writes: WritesByCollection<string, null> = { [accounts]: [['alice', null, -1], ['bob', null, 1]] };
 * await gc.submitWrite(writes);
 * ```
 */
export type WritesByCollection<K, V> =
  | ReadonlyMap<ShardId, Iterable<WriteRow<K, V>>>
  | Readonly<Record<ShardId, Iterable<WriteRow<K, V>>>>;

/** A checked row, with the encoded key and value consolidation compares. */
export interface CheckedRow<K, V> {
  readonly key: K;
  readonly val: V;
  readonly diff: number;
  readonly keyBytes: Uint8Array;
  readonly valBytes: Uint8Array;
}

export type CheckedWrites<K, V> = Map<ShardId, CheckedRow<K, V>[]>;

/**
 * Checks and encodes `writes` (strings in bulk, through `encoder`'s slabs). Throws
 * (InvalidUsage subclasses, or the codec's own error) on a bad collection id, diff,
 * key or value, naming the collection and row. `knownId` may vouch for ids already
 * known to be well-formed (registered ones), which skips their format check.
 */
export function checkWrites<K, V>(
  writes: WritesByCollection<K, V>,
  encoder: RowEncoder<K, V>,
  knownId?: (id: string) => boolean,
): CheckedWrites<K, V> {
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
    if (!knownId?.(id)) assertShardId(id, 'collection id of a write');
    let list = out.get(id);
    if (!list) out.set(id, (list = []));
    let i = 0;
    for (const row of arrayOf(rows, `rows written to ${id}`)) {
      if (!Array.isArray(row) || row.length !== 3) {
        throw invalidArgument(`row ${i} written to ${id}`, 'an array [key, val, diff]', row);
      }
      const [key, val, diff] = row as WriteRow<K, V>;
      assertDiff(diff, `diff of row ${i} written to ${id}`);
      list.push({ key, val, diff, keyBytes: encoder.key(key), valBytes: encoder.val(val) });
      i++;
    }
  }
  return out;
}

/** Merges every write and consolidates each collection's rows. */
export function mergeWrites<K, V>(writes: Iterable<CheckedWrites<K, V>>): CheckedWrites<K, V> {
  // Per collection: the sums, and the first row of each distinct (key, value) under
  // the index the consolidator numbers it by.
  const byCollection = new Map<ShardId, { sums: Consolidator; firsts: CheckedRow<K, V>[] }>();
  for (const w of writes) {
    for (const [id, rows] of w) {
      let c = byCollection.get(id);
      if (!c) byCollection.set(id, (c = { sums: new Consolidator(), firsts: [] }));
      for (const r of rows) {
        if (c.sums.add(r.keyBytes, r.valBytes, 0, r.diff) === c.firsts.length) c.firsts.push(r);
      }
    }
  }
  const out: CheckedWrites<K, V> = new Map();
  for (const [id, { sums, firsts }] of byCollection) {
    const { updates, indices } = sums.finishIndexed();
    // Set even when empty: a written collection keeps its lock and "dropped?" check.
    // A row whose diff nothing changed is kept as it is (the usual case: no copy).
    out.set(
      id,
      indices.map((at, i) => {
        const first = firsts[at]!;
        const diff = updates.diffs[i]!;
        return first.diff === diff ? first : { ...first, diff };
      }),
    );
  }
  return out;
}

function isPlainObject(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
