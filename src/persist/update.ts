/**
 * An update: `[key, val, time, diff]`, one change to a multiset collection.
 *
 * `diff` is how many copies of `(key, val)` are added (negative: retracted) at `time`.
 * The contents of a shard as of time t is the consolidation of every update with
 * time ≤ t.
 */
import { arrayOf, invalidArgument } from './argument-checks.js';
import { assertDiff, assertTimestamp, isClosed } from './time.js';

/**
 * One change to a shard: `diff` copies of `(key, val)` added at `ts` (negative: retracted).
 *
 * Example:
 * ```ts
 * const rows: Update<string, null>[] = [['alice', null, 0, 1], ['alice', null, 3, -1]];
 * await writer.compareAndAppend(rows, 0, 4);
 * ```
 */
export type Update<K, V> = readonly [key: K, val: V, ts: number, diff: number];

/**
 * `updates` as an array, every row checked to be `[key, val, ts, diff]` with a
 * timestamp and a safe-integer diff, before anything is encoded or uploaded (keys
 * and values are checked by the codecs as they encode).
 */
export function checkUpdates<K, V>(updates: Iterable<Update<K, V>>, what = 'updates'): Update<K, V>[] {
  const rows = arrayOf(updates, what);
  rows.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== 4) throw invalidArgument(`${what}[${i}]`, 'an array [key, val, ts, diff]', row);
    assertTimestamp(row[2], `${what}[${i}] time`);
    assertDiff(row[3], `${what}[${i}] diff`);
  });
  return rows;
}

/** The updates at times below `until` (all of them, uncopied, when it is `Infinity`). */
export function updatesBelow<K, V>(updates: Update<K, V>[], until: number): Update<K, V>[] {
  return isClosed(until) ? updates : updates.filter((u) => u[2] < until);
}
