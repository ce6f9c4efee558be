/**
 * SinceHandle: a critical reader. Its since never expires and is not released when
 * the handle is dropped; only `compareAndDowngradeSince` moves it, and only for a
 * caller presenting the stored opaque fencing token.
 *
 * - Opening an id that is new registers it at the shard's current since with the
 *   given default opaque; opening an existing id adopts its stored since and opaque.
 * - `compareAndDowngradeSince(expected, [opaque, since])`: if the stored opaque is not
 *   `expected`, returns `{ ok: false, opaque: actual }` (and the handle adopts the
 *   actual opaque and since). Otherwise stores `opaque` and moves the since to `since`
 *   if that is not a regression; returns `{ ok: true, since }`.
 *
 * Example:
 * ```ts
 * const h = await client.openCriticalSince(id, codecs, { readerId: CONTROLLER_CRITICAL_SINCE, defaultOpaque: Opaque.u64(0) });
 * await h.compareAndDowngradeSince(Opaque.u64(0), [Opaque.u64(0), 10]);   // { ok: true, since: 10 }
 * await h.compareAndDowngradeSince(Opaque.u64(7), [Opaque.u64(7), 12]);   // { ok: false, opaque: u64(0) }
 * ```
 */
import type { ShardContext } from './shard-handle-context.js';
import type { CriticalReaderId } from './shard-id.js';
import { compareAndDowngradeSince } from './state-commands.js';
import { Opaque } from './opaque.js';
import { assertTimestamp } from './time.js';

/**
 * The outcome of {@link SinceHandle.compareAndDowngradeSince}: the new since, or the opaque that
 * was stored instead of the expected one.
 *
 * Example:
 * ```ts
 * const res: CadsOutcome = await h.compareAndDowngradeSince(Opaque.u64(0), [Opaque.u64(0), 10]);
 * if (!res.ok) console.log('fenced by', res.opaque);
 * ```
 */
export type CadsOutcome =
  | {
      /** The expected opaque matched: the new opaque is stored. */
      ok: true;
      /** The since now (the requested one, or the stored one if that was later). */
      since: number;
    }
  | {
      /** The stored opaque was not the expected one: nothing changed. */
      ok: false;
      /** The opaque actually stored (the handle has adopted it). */
      opaque: Opaque;
      /** The since actually stored. */
      since: number;
    };

/**
 * A critical reader: a since that never expires, moved only by a caller that presents the stored
 * opaque token. Open one with `PersistClient.openCriticalSince`.
 *
 * Example:
 * ```ts
 * const h = await client.openCriticalSince(id, codecs, { defaultOpaque: Opaque.u64(0) });
 * await h.compareAndDowngradeSince(Opaque.u64(0), [Opaque.u64(1), 10]);   // { ok: true, since: 10 }
 * ```
 */
export class SinceHandle<K, V> {
  private sinceValue: number;
  private opaqueValue: Opaque;
  private lastDowngradeMs = 0;

  constructor(
    private readonly ctx: ShardContext<K, V>,
    /** This critical reader's id (`"c"` + uuid). */
    readonly readerId: CriticalReaderId,
    since: number,
    opaque: Opaque,
  ) {
    this.sinceValue = since;
    this.opaqueValue = opaque;
  }

  /** The shard whose since this handle holds. */
  get shardId(): string {
    return this.ctx.shardId;
  }

  /** The since as last seen by this handle. */
  since(): number {
    return this.sinceValue;
  }

  /** The opaque as last seen by this handle. */
  opaque(): Opaque {
    return this.opaqueValue;
  }

  /**
   * Stores `next`'s opaque and moves the since to its time (never back), iff the stored opaque is
   * `expected`; otherwise adopts the stored one and reports it.
   */
  async compareAndDowngradeSince(expected: Opaque, next: readonly [Opaque, number]): Promise<CadsOutcome> {
    const [newOpaque, newSince] = next;
    assertTimestamp(newSince, 'since');
    const { result } = await this.ctx.machine.apply(
      'compare_and_downgrade_since',
      (s) => compareAndDowngradeSince(s, this.readerId, expected, newOpaque, newSince),
      { confirmNoop: true },
    );
    this.sinceValue = result.since;
    this.opaqueValue = result.opaque;
    this.lastDowngradeMs = Date.now();
    return result.ok ? { ok: true, since: result.since } : { ok: false, opaque: result.opaque, since: result.since };
  }

  /** compareAndDowngradeSince, at most once per `criticalDowngradeIntervalMs`; undefined when skipped. */
  async maybeCompareAndDowngradeSince(
    expected: Opaque,
    next: readonly [Opaque, number],
  ): Promise<CadsOutcome | undefined> {
    if (Date.now() - this.lastDowngradeMs < this.ctx.cfg.criticalDowngradeIntervalMs) return undefined;
    return this.compareAndDowngradeSince(expected, next);
  }
}
