/**
 * forCollection(name): one collection's view of a merged stream.
 *
 * From a stream of {@link CollectionEvent}s (`mergeCollections`, or
 * `db.subscribe$([…names])`) it keeps the updates of `name` and every progress event,
 * so the result is a plain {@link ShardEvent} stream again and works with
 * `materialize()`, `consolidate()` or `collectUntil()`. Progress stays the merged
 * frontier: a view of `accounts` built from it is consistent with a view of `audit`
 * built from the same (shared) merged stream at the same progress.
 *
 * Example:
 * ```ts
 * const both$ = db.subscribe$(['accounts', 'audit']).pipe(share());
 * both$.pipe(forCollection('accounts'), materialize()).subscribe((v) => console.log(v.upper, v.size));
 * ```
 */
import { Observable, type OperatorFunction } from 'rxjs';
import { InvalidArgument } from '../persist/errors.js';
import type { ShardEvent } from '../sources/shard-source.js';
import type { CollectionEvent } from './merge-collections.js';
import { operatorObserver } from './operator-observer.js';

/**
 * One collection's view of a merged stream: its updates and every (merged) progress event, as a
 * plain {@link ShardEvent} stream for `materialize()`, `consolidate()` or `collectUntil()`.
 *
 * Example:
 * ```ts
 * const both$ = db.subscribe$(['accounts', 'audit']).pipe(share());
 * both$.pipe(forCollection('accounts'), materialize()).subscribe((v) => console.log(v.upper, v.size));
 * ```
 */
export function forCollection<K = unknown, V = unknown>(name: string): OperatorFunction<CollectionEvent<K, V>, ShardEvent<K, V>> {
  if (typeof name !== 'string') throw new InvalidArgument(`forCollection: the collection name must be a string, got ${typeof name}`);
  return (source) =>
    new Observable<ShardEvent<K, V>>((subscriber) =>
      source.subscribe(
        operatorObserver<CollectionEvent<K, V>>(subscriber, {
          next: (ev) => {
            if (ev.kind === 'progress') subscriber.next({ kind: 'progress', upper: ev.upper });
            else if (ev.collection === name) subscriber.next({ kind: 'updates', updates: ev.updates });
          },
        }),
      ),
    );
}
