/**
 * mergeFrontiers: several shard streams as one, consistent at one frontier.
 *
 * Each input is a stream of {@link ShardEvent}s with its own progress. The output
 * carries every input's updates and reports progress only up to the *least* input
 * progress: a time is complete in the merged stream once it is complete in every
 * input. Updates at or past the merged frontier are held back until the frontier
 * passes them, so the output keeps the stream contract (every update between two
 * progress events `p` and `q` has `p <= ts < q`) and anything folded at a merged
 * progress event — a total over several shards, say — is a consistent state.
 * Together with txn-wal's atomic multi-shard commits and `dataSubscribe`'s logical
 * progress, this is how a reader sees several collections at the same time. To keep
 * which input each update came from, use {@link mergeCollections}; both are the one
 * frontier merge, `mergeAtLeastFrontier` (merge-collections.ts).
 *
 * Invariants:
 * - The output's updates are exactly the inputs' updates (unchanged), each emitted
 *   once, in time windows (one updates event per window, in arrival order);
 *   progress strictly increases and is the minimum of the inputs' latest progress
 *   (an input that has not reported yet holds it at none).
 * - A completed input no longer holds the frontier back. The output completes when
 *   every input has (flushing anything still held), errors as soon as any input
 *   errors, and unsubscribing unsubscribes every input.
 *
 * Worked example, inputs A and B:
 * ```
 * A: {updates: [x@1]} {progress: 3}    → (held: B has no progress yet)
 * B: {updates: [y@1]} {progress: 2}    → {updates: [x@1, y@1]} {progress: 2}
 * B: {updates: [z@2]} {progress: 4}    → {updates: [z@2]} {progress: 3}
 * ```
 */
import { Observable } from 'rxjs';
import type { ShardEvent } from '../sources/shard-source.js';
import { mergeAtLeastFrontier } from './merge-collections.js';

/**
 * Several shard streams as one, whose progress is the least of the inputs': whatever is folded at a
 * progress event is a consistent state of all of them. Use {@link mergeCollections} to keep which
 * input each update came from.
 *
 * Example:
 * ```ts
 * mergeFrontiers([dataSubscribe$(client, txnsId, a, { codecs, asOf: 0 }), dataSubscribe$(client, txnsId, b, { codecs, asOf: 0 })])
 *   .pipe(materialize())
 *   .subscribe((view) => console.log('a and b together at', view.upper, view.size));
 * ```
 */
export function mergeFrontiers<K, V>(inputs: readonly Observable<ShardEvent<K, V>>[]): Observable<ShardEvent<K, V>> {
  return new Observable<ShardEvent<K, V>>((subscriber) =>
    mergeAtLeastFrontier(inputs, subscriber, (ready) => subscriber.next({ kind: 'updates', updates: ready.map((h) => h.update) })),
  );
}
