/**
 * consolidateUpdates: sums the diffs of equal `(key, val, ts)` and drops rows whose
 * diffs cancel. The result is sorted by time (then by first appearance), so a
 * consolidated window reads in time order.
 *
 * Invariant: for every `(key, val, ts)`, the sum of diffs in the output equals the
 * sum in the input, and no output row has diff 0.
 *
 * Example: `[['a', null, 1, 1], ['b', null, 1, 1], ['a', null, 1, -1], ['b', null, 0, 2]]`
 * → `[['b', null, 0, 2], ['b', null, 1, 1]]`.
 */
import type { Update } from '../persist/update.js';
import { rowIdentity } from './row-identity.js';

export function consolidateUpdates<K, V>(updates: Iterable<Update<K, V>>): Update<K, V>[] {
  const byRow = new Map<string, [K, V, number, number]>();
  for (const [k, v, t, d] of updates) {
    const id = `${t}|${rowIdentity(k, v)}`;
    const prev = byRow.get(id);
    if (prev) prev[3] += d;
    else byRow.set(id, [k, v, t, d]);
  }
  const out: Update<K, V>[] = [];
  for (const u of byRow.values()) if (u[3] !== 0) out.push(u);
  // Stable: equal times keep their first-appearance order.
  return out.sort((a, b) => a[2] - b[2]);
}
