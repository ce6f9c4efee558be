/**
 * Shard sources: a shard's updates and frontier progress as a cold Observable.
 *
 * - `shardListen$(client, id, codecs, { asOf })`: every update at times `> asOf`,
 *   batch by batch, each batch followed by a progress event.
 * - `shardSubscribe$(…)`: first the snapshot at `asOf` (times advanced to `asOf`,
 *   consolidated), then the same as `shardListen$`.
 *
 * Invariants (the events are {@link ShardEvent}s):
 * - Every update between two progress events `p` and `q` has `p <= ts < q`
 *   (the snapshot's updates are at `asOf`, before the first progress event).
 * - Progress strictly increases. Updates events are never empty.
 * - With `until`, nothing at or past `until` is emitted, and the stream completes
 *   right after the progress event that reaches `until` (that event says `until`).
 *   Without it, the stream completes only when the shard is closed (progress
 *   `Infinity`).
 * - Cold: each subscription opens its own leased reader and releases it when the
 *   subscriber unsubscribes, when the stream completes, or when it errors. Its
 *   reader's since follows the stream, so the shard can compact what was read.
 *
 * Worked example, for a shard written with `a@0` then `b@3` (upper 5), from asOf 2:
 * ```
 * shardSubscribe$(client, id, codecs, { asOf: 2 })
 *   → { updates: [['a', null, 2, 1]] }        (the snapshot, a@0 advanced to 2)
 *   → { updates: [['b', null, 3, 1]] }, { progress: 5 }
 *   → … waits for the next write
 * shardListen$(client, id, codecs, { asOf: 2, until: 4 })
 *   → { updates: [['b', null, 3, 1]] }, { progress: 4 }, complete
 * ```
 */
import { Observable } from 'rxjs';
import type { PersistClient } from '../persist/client.js';
import type { ShardCodecs } from '../persist/codec.js';
import { InvalidUsage } from '../persist/errors.js';
import type { ListenEvent } from '../persist/listen.js';
import type { ReadHandle } from '../persist/read-handle.js';
import { assertShardId, type ShardId } from '../persist/shard-id.js';
import { assertFrontier, assertTimestamp } from '../persist/time.js';
import { updatesBelow, type Update } from '../persist/update.js';

/**
 * What every stream carries: `{ kind: 'updates', updates }` or `{ kind: 'progress', upper }`.
 *
 * Every update between two progress events `p` and `q` has `p <= ts < q`.
 *
 * Example:
 * ```ts
 * shardSubscribe$(client, id, codecs, { asOf: 0 }).subscribe((ev: ShardEvent<string, null>) =>
 *   ev.kind === 'updates' ? console.log(ev.updates) : console.log('complete below', ev.upper),
 * );
 * ```
 */
export type ShardEvent<K, V> = ListenEvent<K, V>;

/**
 * Options of {@link shardSubscribe$} and {@link shardListen$}.
 *
 * Example:
 * ```ts
 * shardListen$(client, id, codecs, { asOf: 2, until: 10, purpose: 'audit tail' });
 * ```
 */
export interface ShardSourceOptions {
  /** Read as of this time (at least the shard's since). */
  asOf: number;
  /** Complete once progress reaches this; nothing at or past it is emitted. Default: never. */
  until?: number;
  /** Names the reader in the shard's state (default "shard source"). */
  purpose?: string;
  /** Start the reader at the critical since instead of the shard since (default false). */
  useCriticalSince?: boolean;
}

/**
 * A snapshot at `asOf`, then every later batch with its progress.
 *
 * Cold: each subscription opens its own leased reader and releases it on unsubscribe, completion or
 * error. For a shard written through txn-wal, pipe it into {@link dataSubscribe} (or use {@link
 * dataSubscribe$}) to get logical progress.
 *
 * Example:
 * ```ts
 * shardSubscribe$(client, id, { key: Codecs.string, val: Codecs.unit }, { asOf: 2 })
 *   .subscribe((ev) => console.log(ev));   // the snapshot at 2, then every later batch and its progress
 * ```
 */
export function shardSubscribe$<K, V>(
  client: PersistClient,
  shardId: ShardId,
  codecs: ShardCodecs<K, V>,
  opts: ShardSourceOptions,
): Observable<ShardEvent<K, V>> {
  return shardSource(client, shardId, codecs, opts, true, 'shardSubscribe$');
}

/**
 * Every batch after `asOf` with its progress (no snapshot).
 *
 * Example:
 * ```ts
 * shardListen$(client, id, codecs, { asOf: 2, until: 4 })
 *   .subscribe((ev) => console.log(ev));   // updates at 3, then { progress: 4 }, then complete
 * ```
 */
export function shardListen$<K, V>(
  client: PersistClient,
  shardId: ShardId,
  codecs: ShardCodecs<K, V>,
  opts: ShardSourceOptions,
): Observable<ShardEvent<K, V>> {
  return shardSource(client, shardId, codecs, opts, false, 'shardListen$');
}

/** @internal Checks the options every source and `dataSubscribe` share. */
export function checkReadOptions(fn: string, shardId: unknown, opts: { asOf?: unknown; until?: unknown } | undefined): void {
  if (opts === undefined || opts === null || typeof opts !== 'object') {
    throw new InvalidUsage(`${fn}: options are required, e.g. { asOf: 0 }`);
  }
  assertShardId(shardId);
  assertTimestamp(opts.asOf, `${fn} asOf`);
  if (opts.until !== undefined) assertFrontier(opts.until, `${fn} until`);
}

function shardSource<K, V>(
  client: PersistClient,
  shardId: ShardId,
  codecs: ShardCodecs<K, V>,
  opts: ShardSourceOptions,
  withSnapshot: boolean,
  fn: string,
): Observable<ShardEvent<K, V>> {
  checkReadOptions(fn, shardId, opts);
  const { asOf } = opts;
  const until = opts.until ?? Infinity;
  return new Observable<ShardEvent<K, V>>((subscriber) => {
    const abort = new AbortController();
    let reader: ReadHandle<K, V> | undefined;
    let released: Promise<void> | undefined;
    const release = (): Promise<void> => {
      // The reader is released exactly once, whichever way the stream ends.
      released ??= reader
        ? reader.expire().catch((err: unknown) => client.cfg.logger.warn({ err, shard: shardId }, `${fn}: releasing the reader failed`))
        : Promise.resolve();
      return released;
    };
    const emitUpdates = (updates: Update<K, V>[]): void => {
      const kept = updatesBelow(updates, until);
      if (kept.length > 0) subscriber.next({ kind: 'updates', updates: kept });
    };

    const run = async (): Promise<void> => {
      if (until <= asOf) return; // nothing is at a time >= asOf and < until
      reader = await client.openLeasedReader(shardId, codecs, {
        purpose: opts.purpose ?? 'shard source',
        useCriticalSince: opts.useCriticalSince ?? false,
      });
      if (abort.signal.aborted) {
        // Unsubscribed while the reader was being opened: the teardown could not see it.
        await reader.expire();
        return;
      }
      if (withSnapshot) {
        emitUpdates(await reader.snapshotAndFetch(asOf, { signal: abort.signal }));
        if (abort.signal.aborted) return;
      }
      const listen = await reader.listen(asOf);
      for (;;) {
        const events = await listen.next({ signal: abort.signal });
        if (abort.signal.aborted || events.length === 0) return;
        for (const ev of events) {
          if (ev.kind === 'updates') {
            emitUpdates(ev.updates);
          } else if (ev.upper >= until) {
            subscriber.next({ kind: 'progress', upper: until });
            return;
          } else {
            subscriber.next(ev);
          }
        }
      }
    };

    run().then(
      async () => {
        await release();
        subscriber.complete();
      },
      async (err: unknown) => {
        await release();
        // After an unsubscribe the abort rejects the pending wait: nobody is listening.
        if (!abort.signal.aborted) subscriber.error(err);
      },
    );

    return () => {
      abort.abort();
      void release();
    };
  });
}
