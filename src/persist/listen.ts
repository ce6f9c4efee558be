/**
 * Listen and Subscribe: following a shard's updates as they are written.
 *
 * A listen starts at `asOf` with `frontier = asOf`. Each `next()` waits for the spine
 * batch with `lower <= frontier < upper`, returns its updates with
 * `t > asOf && t >= frontier` (unconsolidated, times unchanged) and then a progress
 * event with the batch's upper, which becomes the new frontier. So every update
 * between two progress events `p` and `q` has `p <= t < q`.
 *
 * The listen pushes its reader's since to just below its frontier (rate-limited), so
 * the shard can compact what it has passed without disturbing what it will read.
 * It reaches its reader only through {@link ListenReader} (listen-reader.ts), whose
 * contract says who owns the lease and what expiring does.
 *
 * Example, for a shard written at `[0,3)` then `[3,7)`, listened from 1:
 * ```
 * next() → [{updates: t=2 only}, {progress: 3}]
 * next() → [{updates: t in 3..6}, {progress: 7}]
 * next() → waits for the next write
 * ```
 */
import { InvalidUsage, InvariantViolation, LeaseExpired } from './errors.js';
import type { ListenReader } from './listen-reader.js';
import { batchContaining } from './state.js';
import { isClosed } from './time.js';
import type { Update } from './update.js';

/**
 * What a listen yields: a batch of updates, or progress (every update below `upper` was delivered).
 *
 * Example:
 * ```ts
 * for (const ev of await listen.next()) {
 *   if (ev.kind === 'updates') apply(ev.updates);
 *   else console.log('complete below', ev.upper);
 * }
 * ```
 */
export type ListenEvent<K, V> =
  | {
      /** A batch of updates. */
      kind: 'updates';
      /** The updates, unconsolidated, each at a time the listen had not passed. */
      updates: Update<K, V>[];
    }
  | {
      /** Progress. */
      kind: 'progress';
      /** Every update at a time below this has been delivered. */
      upper: number;
    };

/**
 * Follows a shard from `asOf`: every update with `t > asOf`, batch by batch, each batch followed by
 * progress. Get one from `ReadHandle.listen`.
 *
 * Example:
 * ```ts
 * const listen = await reader.listen(0);
 * for await (const events of listen) console.log(events);   // expires the reader when the loop ends
 * ```
 */
export class Listen<K, V> implements AsyncIterable<ListenEvent<K, V>[]> {
  private currentFrontier: number;
  private busy = false;

  constructor(
    private readonly reader: ListenReader<K, V>,
    /** The time the listen started from; it delivers updates with `t > asOf`. */
    readonly asOf: number,
  ) {
    this.currentFrontier = asOf;
  }

  /** Every update below this has been delivered. `Infinity` once the shard is closed. */
  get frontier(): number {
    return this.currentFrontier;
  }

  /** The id of the leased reader behind this listen. */
  get readerId(): string {
    return this.reader.readerId;
  }

  /**
   * The next batch of updates and the progress after it. Waits until there is one.
   * Returns `[]` once the shard is closed and everything was delivered.
   */
  async next(opts: { signal?: AbortSignal } = {}): Promise<ListenEvent<K, V>[]> {
    if (this.busy) throw new InvalidUsage('Listen.next() called while a previous next() is still pending; await it first');
    this.busy = true;
    try {
      return await this.nextInner(opts.signal);
    } finally {
      this.busy = false;
    }
  }

  private async nextInner(signal?: AbortSignal): Promise<ListenEvent<K, V>[]> {
    if (isClosed(this.currentFrontier)) return [];
    const reader = this.reader;
    let state = await reader.currentState();
    for (;;) {
      reader.checkLive('listen');
      const found = batchContaining(state, this.currentFrontier);
      if (found) {
        const batch = found.batch;
        if (batch.since > this.currentFrontier) {
          const msg =
            `listen on ${reader.shardId} at frontier ${this.currentFrontier} received a batch compacted to since ${batch.since}: ` +
            'its since hold was not respected';
          throw reader.isLeaseLost ? new LeaseExpired(msg) : new InvariantViolation(msg);
        }
        const updates = await reader.fetchListenUpdates(state, batch.parts, this.asOf, this.currentFrontier);
        this.currentFrontier = batch.upper;
        if (!isClosed(batch.upper) && batch.upper > 0) {
          // Lazily let the shard compact up to just below what we have read.
          reader.downgradeSinceLazily(Math.max(this.asOf, batch.upper - 1));
        }
        return [
          { kind: 'updates', updates },
          { kind: 'progress', upper: batch.upper },
        ];
      }
      state = await reader.waitForNewerThan(state.seqno, signal);
    }
  }

  /**
   * Moves the frontier to `frontier` without reading: for a caller that already
   * knows every update in `[frontier now, frontier)` because it wrote them itself
   * (the txns cache after its handle's own compare-and-append). The next `next()`
   * then delivers only updates at `t >= frontier`. Lets the shard compact up to just
   * below it, as reading would have. Throws if `frontier` is behind, or a read is
   * pending.
   */
  skipTo(frontier: number): void {
    if (this.busy) throw new InvalidUsage('Listen.skipTo() called while a next() is pending; await it first');
    if (!(frontier >= this.currentFrontier)) {
      throw new InvariantViolation(`listen on ${this.reader.shardId}: skipTo(${frontier}) is behind its frontier ${this.currentFrontier}`);
    }
    if (frontier === this.currentFrontier) return;
    this.currentFrontier = frontier;
    if (!isClosed(frontier)) this.reader.downgradeSinceLazily(Math.max(this.asOf, frontier - 1));
  }

  /** Yields `next()` until the shard is closed; expires the reader when the loop ends or breaks. */
  async *[Symbol.asyncIterator](): AsyncIterator<ListenEvent<K, V>[]> {
    try {
      while (!isClosed(this.currentFrontier)) yield await this.next();
    } finally {
      await this.expire();
    }
  }

  /** Releases the reader behind this listen. */
  expire(): Promise<void> {
    return this.reader.expire();
  }
}

/**
 * A snapshot at `asOf` (delivered first, with no progress event), then a listen from `asOf`.
 *
 * Get one from `ReadHandle.subscribe`.
 *
 * Example:
 * ```ts
 * const sub = await reader.subscribe(4);
 * await sub.next();   // [{ kind: 'updates', updates: the contents as of 4 }]
 * await sub.next();   // [{ kind: 'updates', … }, { kind: 'progress', upper: 9 }]
 * ```
 */
export class Subscribe<K, V> implements AsyncIterable<ListenEvent<K, V>[]> {
  private snapshotPending: Update<K, V>[] | undefined;

  constructor(
    snapshot: Update<K, V>[],
    /** The listen that runs after the snapshot. */
    readonly listen: Listen<K, V>,
  ) {
    this.snapshotPending = snapshot;
  }

  /** Every update below this has been delivered (the listen's frontier). */
  get frontier(): number {
    return this.listen.frontier;
  }

  /**
   * {@link Listen.skipTo}, once the snapshot was delivered; returns false (and does
   * nothing) while it is still pending, since skipping would leave it unread.
   */
  trySkipTo(frontier: number): boolean {
    if (this.snapshotPending) return false;
    this.listen.skipTo(frontier);
    return true;
  }

  /** The snapshot first (one updates event), then the listen's batches; `signal` aborts the wait. */
  async next(opts: { signal?: AbortSignal } = {}): Promise<ListenEvent<K, V>[]> {
    const snap = this.snapshotPending;
    if (snap) {
      this.snapshotPending = undefined;
      return [{ kind: 'updates', updates: snap }];
    }
    return this.listen.next(opts);
  }

  /**
   * Yields the snapshot, then every batch until the shard is closed; expires the reader afterwards.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<ListenEvent<K, V>[]> {
    try {
      for (;;) {
        if (!this.snapshotPending && isClosed(this.listen.frontier)) return;
        yield await this.next();
      }
    } finally {
      await this.expire();
    }
  }

  /** Releases the reader behind this subscription. */
  expire(): Promise<void> {
    return this.listen.expire();
  }
}
