/**
 * ListenReader: the one narrow seam between a Listen and the leased reader it reads
 * through. ReadHandle implements it; Listen depends on nothing else of the reader.
 *
 * The contract:
 * - **The reader owns the lease.** Its own heartbeat keeps the reader's since and
 *   seqno hold alive while the listen runs; the listen never heartbeats. As its
 *   frontier passes a batch, the listen only *asks* for the since to follow
 *   (`downgradeSinceLazily`), which the reader rate-limits and never throws from.
 * - **Parts are read pinned.** `fetchListenUpdates(state, …)` keeps the blobs of
 *   `state` from GC until it returns, so a part named in `state` is never deleted
 *   mid-read. It decodes only what the listen delivers, in one pass per part.
 * - **The listen takes the reader over** (`ReadHandle.listen`): afterwards the reader
 *   serves only that listen, and expiring the listen (`expire()`) expires the reader:
 *   the lease is released, the since and GC holds go away, and every later call
 *   fails `checkLive` with HandleExpired. A closed client fails it with ClientClosed.
 * - **A lost lease is reported, not hidden.** A reader whose heartbeats stopped for
 *   longer than its lease may have been expired by a writer; `checkLive` then throws
 *   LeaseExpired, and `isLeaseLost` lets the listen call a batch compacted past its
 *   frontier a LeaseExpired (the hold was dropped) instead of a broken invariant.
 *
 * Example (what one `Listen.next()` does with it):
 * ```ts
 * reader.checkLive('listen');
 * const state = await reader.currentState();            // or waitForNewerThan(seqno)
 * const updates = await reader.fetchListenUpdates(state, batch.parts, asOf, frontier);
 * reader.downgradeSinceLazily(batch.upper - 1);
 * return updates;
 * ```
 */
import type { HollowPart } from './part.js';
import type { LeasedReaderId, ShardId } from './shard-id.js';
import type { ShardState } from './state.js';
import type { Update } from './update.js';

export interface ListenReader<K, V> {
  readonly readerId: LeasedReaderId;
  readonly shardId: ShardId;
  /** Whether the lease was lost: the holds this reader had may have been dropped. */
  readonly isLeaseLost: boolean;
  /** Throws the typed error saying why this reader cannot `op` any more; returns if it can. */
  checkLive(op: string): void;
  /** The latest shard state this process knows, loading it on first use. */
  currentState(): Promise<ShardState>;
  /** Waits (abortably) for a shard state newer than `seqno`. */
  waitForNewerThan(seqno: number, signal?: AbortSignal): Promise<ShardState>;
  /**
   * Fetches `parts` (named in `state`) in order, with `state` pinned against GC, and
   * returns their updates a listen started at `asOf` and now at `frontier` delivers
   * (`t > asOf && t >= frontier`), decoded with the reader's codecs.
   */
  fetchListenUpdates(state: ShardState, parts: readonly HollowPart[], asOf: number, frontier: number): Promise<Update<K, V>[]>;
  /** Lets the shard compact up to `since` in the background, rate-limited; failures are logged, never thrown. */
  downgradeSinceLazily(since: number): void;
  /** Releases the lease (idempotent). */
  expire(): Promise<void>;
}
