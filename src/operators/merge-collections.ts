/**
 * mergeCollections: several collections' streams as one, consistent at one frontier,
 * with every row still saying which collection it belongs to.
 *
 * Inputs are named streams of {@link ShardEvent}s, each with its own progress. The
 * output reports progress only up to the *least* input progress (a time is complete
 * once it is complete in every input) and holds back every update at or past that
 * frontier until the frontier passes it. So whatever a consumer folds at an output
 * progress event is one consistent state of all the collections: with txn-wal's
 * atomic commits and `dataSubscribe`'s logical progress, never half a transaction.
 *
 * Invariants:
 * - The output's updates are exactly the inputs' updates (unchanged), each emitted
 *   once, in an updates event `{ kind: 'updates', collection, updates }` naming the
 *   input it came from; per window, one event per collection that had updates, in
 *   the order the collections were named.
 * - Progress strictly increases and is the minimum of the inputs' latest progress
 *   (an input that has not reported yet holds it at none). Every update between two
 *   progress events `p` and `q` has `p <= ts < q`.
 * - A completed input no longer holds the frontier back. The output completes when
 *   every input has (flushing anything still held), errors as soon as any input
 *   errors, and unsubscribing unsubscribes every input.
 *
 * {@link mergeFrontiers} is this operator with the collection names dropped: both
 * are {@link mergeAtLeastFrontier}, the one frontier merge.
 *
 * Worked example, inputs `accounts` and `audit`:
 * ```
 * accounts: {updates: [a@1]} {progress: 3}  → (held: audit has no progress yet)
 * audit:    {updates: [t@1]} {progress: 2}  → {collection: 'accounts', updates: [a@1]}
 *                                             {collection: 'audit', updates: [t@1]} {progress: 2}
 * audit:    {progress: 4}                   → {progress: 3}
 * ```
 */
import { Observable, type Subscriber } from 'rxjs';
import type { Update } from '../persist/update.js';
import type { ShardEvent } from '../sources/shard-source.js';
import { operatorObserver } from './operator-observer.js';

/**
 * An event of a merged stream: updates of one named collection, or the common progress.
 *
 * Example:
 * ```ts
 * db.subscribe$(['accounts', 'audit']).subscribe((ev: CollectionEvent) =>
 *   ev.kind === 'updates' ? console.log(ev.collection, ev.updates) : console.log('both complete below', ev.upper),
 * );
 * ```
 */
export type CollectionEvent<K = unknown, V = unknown> =
  | {
      /** Updates of one collection. */
      kind: 'updates';
      /** The name of the collection they belong to. */
      collection: string;
      /** The updates, unchanged from that collection's stream. */
      updates: Update<K, V>[];
    }
  | {
      /** Progress of all the collections together. */
      kind: 'progress';
      /** Every update below this, of every collection, has been delivered. */
      upper: number;
    };

/** An update held by the merge, with the index of the input it came from. */
export interface HeldUpdate<K, V> {
  readonly input: number;
  readonly update: Update<K, V>;
}

/**
 * The one frontier merge: subscribes to every input, and whenever the least input
 * progress passes what was emitted, hands `emitReady` the held updates below it (in
 * arrival order) and then emits progress. Once every input completed, hands over
 * what is left and completes.
 */
export function mergeAtLeastFrontier<K, V, O>(
  inputs: readonly Observable<ShardEvent<K, V>>[],
  subscriber: Subscriber<O | { kind: 'progress'; upper: number }>,
  emitReady: (ready: HeldUpdate<K, V>[]) => void,
): () => void {
  if (inputs.length === 0) {
    subscriber.complete();
    return () => undefined;
  }
  const progress = inputs.map(() => -Infinity);
  const done = inputs.map(() => false);
  let held: HeldUpdate<K, V>[] = [];
  let emitted = -Infinity;

  const release = (frontier: number): void => {
    if (frontier <= emitted) return;
    const ready: HeldUpdate<K, V>[] = [];
    const later: HeldUpdate<K, V>[] = [];
    for (const h of held) (h.update[2] < frontier ? ready : later).push(h);
    held = later;
    if (ready.length > 0) emitReady(ready);
    emitted = frontier;
    subscriber.next({ kind: 'progress', upper: frontier });
  };

  const subs = inputs.map((source, input) =>
    source.subscribe(
      operatorObserver<ShardEvent<K, V>>(subscriber, {
        next: (ev) => {
          if (ev.kind === 'updates') {
            for (const update of ev.updates) held.push({ input, update });
            return;
          }
          progress[input] = Math.max(progress[input]!, ev.upper);
          release(Math.min(...progress));
        },
        complete: () => {
          // A finished input holds nothing back any more.
          done[input] = true;
          progress[input] = Infinity;
          if (!done.every(Boolean)) return release(Math.min(...progress));
          if (held.length > 0) emitReady(held.splice(0));
          subscriber.complete();
        },
      }),
    ),
  );
  return () => {
    for (const s of subs) s.unsubscribe();
  };
}

/**
 * Merges named collection streams at their least common frontier; see the module doc.
 *
 * Example:
 * ```ts
 * mergeCollections({ accounts: accounts$, audit: audit$ })
 *   .pipe(forCollection('accounts'), materialize())
 *   .subscribe((view) => console.log(view.upper));
 * ```
 */
export function mergeCollections<K = unknown, V = unknown>(
  inputs: Readonly<Record<string, Observable<ShardEvent<K, V>>>>,
): Observable<CollectionEvent<K, V>> {
  const names = Object.keys(inputs);
  const streams = names.map((n) => inputs[n]!);
  return new Observable<CollectionEvent<K, V>>((subscriber) =>
    mergeAtLeastFrontier(streams, subscriber, (ready) => {
      // One event per collection, in the order the collections were named.
      const byInput = new Map<number, Update<K, V>[]>();
      for (const { input, update } of ready) {
        let list = byInput.get(input);
        if (!list) byInput.set(input, (list = []));
        list.push(update);
      }
      for (const [input, updates] of [...byInput].sort((a, b) => a[0] - b[0])) {
        subscriber.next({ kind: 'updates', collection: names[input]!, updates });
      }
    }),
  );
}
