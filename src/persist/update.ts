/**
 * An update: `[key, val, time, diff]`, one change to a multiset collection.
 *
 * `diff` is how many copies of `(key, val)` are added (negative: retracted) at `time`.
 * The contents of a shard as of time t is the consolidation of every update with
 * time ≤ t.
 */
import { isClosed } from './time.js';

export type Update<K, V> = readonly [key: K, val: V, ts: number, diff: number];

/** The updates at times below `until` (all of them, uncopied, when it is `Infinity`). */
export function updatesBelow<K, V>(updates: Update<K, V>[], until: number): Update<K, V>[] {
  return isClosed(until) ? updates : updates.filter((u) => u[2] < until);
}
