/**
 * collectUntil(ts): everything a stream holds below `ts`, as one consolidated array.
 *
 * It gathers the updates at times `< ts` and, once progress reaches `ts` (so every
 * such update has arrived), emits them consolidated (diffs summed, zeros dropped,
 * sorted by time) and completes, unsubscribing from the source. Updates at or
 * past `ts` are ignored. If the source completes before its progress reaches `ts`
 * the result would be incomplete, so the stream errors instead.
 *
 * Example, with writes a@1, b@2, a@3 (retraction) and progress 4:
 * ```
 * dataSubscribe$(…, { asOf: 0 }).pipe(collectUntil(3))  → [['a', null, 1, 1], ['b', null, 2, 1]]
 * ```
 */
import { Observable, type OperatorFunction } from 'rxjs';
import { InvalidUsage } from '../persist/errors.js';
import { assertFrontier, isClosed } from '../persist/time.js';
import type { Update } from '../persist/update.js';
import type { ShardEvent } from '../sources/shard-source.js';
import { consolidateUpdates } from './consolidate-updates.js';
import { operatorObserver } from './operator-observer.js';

/**
 * The stream given to {@link collectUntil} completed before its progress reached the time asked
 * for: the result would have missed updates.
 *
 * Example:
 * ```ts
 * shardListen$(client, id, codecs, { asOf: 0, until: 2 }).pipe(collectUntil(5));   // errors with IncompleteCollection
 * ```
 */
export class IncompleteCollection extends Error {
  /**
   * Builds the error with the time asked for and the progress reached.
   *
   * @param message What was asked for and how far the stream got.
   */
  constructor(message: string) {
    super(message);
    this.name = 'IncompleteCollection';
  }
}

/**
 * Everything a stream holds below `ts`, as one consolidated array, emitted once progress reaches
 * `ts`; then it completes and unsubscribes. Use it to read a consistent snapshot out of a live
 * stream.
 *
 * Example:
 * ```ts
 * const rows = await firstValueFrom(dataSubscribe$(client, txnsId, id, { codecs, asOf: 0 }).pipe(collectUntil(3)));
 * // [['a', null, 1, 1], ['b', null, 2, 1]]: consolidated, sorted by time
 * ```
 */
export function collectUntil<K, V>(ts: number): OperatorFunction<ShardEvent<K, V>, Update<K, V>[]> {
  assertFrontier(ts, 'collectUntil ts');
  if (isClosed(ts)) throw new InvalidUsage('collectUntil(Infinity) would wait for the shard to close; pass a finite time');
  return (source) =>
    new Observable<Update<K, V>[]>((subscriber) => {
      const collected: Update<K, V>[] = [];
      let progress = -Infinity;
      let done = false;
      return source.subscribe(
        operatorObserver<ShardEvent<K, V>>(subscriber, {
          next: (ev) => {
            if (done) return;
            if (ev.kind === 'updates') {
              for (const u of ev.updates) if (u[2] < ts) collected.push(u);
              return;
            }
            progress = ev.upper;
            if (progress >= ts) {
              done = true;
              subscriber.next(consolidateUpdates(collected));
              subscriber.complete();
            }
          },
          complete: () => {
            if (done) return;
            subscriber.error(
              new IncompleteCollection(`collectUntil(${ts}): the stream completed at progress ${progress}, before every update below ${ts} could arrive`),
            );
          },
        }),
      );
    });
}
