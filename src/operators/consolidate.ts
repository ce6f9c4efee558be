/**
 * consolidate(): one consolidated updates event per progress window.
 *
 * Updates between two progress events are buffered; when the progress event comes
 * they are emitted as ONE updates event (diffs of equal `(key, val, ts)` summed,
 * zeros dropped, sorted by time), followed by the progress event. A window whose
 * updates cancel out emits only its progress. When the source completes, buffered
 * updates are flushed first.
 *
 * Invariant: the output carries the same multiset of updates per window as the
 * input (same sums per `(key, val, ts)`), so anything downstream that folds the
 * stream gets the same result with fewer, smaller events.
 *
 * Example:
 * ```
 * {updates:[a@1 +1]} {updates:[a@1 -1, b@2 +1]} {progress:3}
 *   → {updates:[b@2 +1]} {progress:3}
 * ```
 */
import { Observable, type MonoTypeOperatorFunction } from 'rxjs';
import type { Update } from '../persist/update.js';
import type { ShardEvent } from '../sources/shard-source.js';
import { consolidateUpdates } from './consolidate-updates.js';
import { operatorObserver } from './operator-observer.js';

/**
 * One consolidated updates event per progress window (diffs summed, zeros dropped, sorted by time),
 * then the progress: the same contents with fewer, smaller events.
 *
 * Example:
 * ```ts
 * // {updates: [a@1 +1]} {updates: [a@1 -1, b@2 +1]} {progress: 3}  →  {updates: [b@2 +1]} {progress: 3}
 * source$.pipe(consolidate()).subscribe(console.log);
 * ```
 */
export function consolidate<K, V>(): MonoTypeOperatorFunction<ShardEvent<K, V>> {
  return (source) =>
    new Observable<ShardEvent<K, V>>((subscriber) => {
      let pending: Update<K, V>[] = [];
      const flush = (): void => {
        if (pending.length === 0) return;
        const updates = consolidateUpdates(pending);
        pending = [];
        if (updates.length > 0) subscriber.next({ kind: 'updates', updates });
      };
      return source.subscribe(
        operatorObserver<ShardEvent<K, V>>(subscriber, {
          next: (ev) => {
            if (ev.kind === 'updates') {
              for (const u of ev.updates) pending.push(u);
            } else {
              flush();
              subscriber.next(ev);
            }
          },
          complete: () => {
            flush();
            subscriber.complete();
          },
        }),
      );
    });
}
