/**
 * An update: `[key, val, time, diff]`, one change to a multiset collection.
 *
 * `diff` is how many copies of `(key, val)` are added (negative: retracted) at `time`.
 * The contents of a shard as of time t is the consolidation of every update with
 * time ≤ t.
 */
export type Update<K, V> = readonly [key: K, val: V, ts: number, diff: number];
