/**
 * WriteHandle: appends updates to a shard.
 *
 * The linearized write is `compareAndAppend(updates, expectedUpper, newUpper)`: it
 * succeeds only if the shard's upper is exactly `expectedUpper`, and then moves it to
 * `newUpper` with the updates (all at times in `[expectedUpper, newUpper)`). A
 * mismatch is a value, `{ ok: false, current }`, and writes nothing.
 *
 * Rules (each breaks with a typed error naming the fix):
 * - `newUpper < expectedUpper` → InvalidBounds;
 * - `newUpper == expectedUpper` with data → InvalidEmptyTimeInterval (without data, at
 *   the current upper, it is a no-op that still heartbeats the writer; at another upper
 *   it is a mismatch like any append);
 * - an update outside `[expectedUpper, newUpper)` → UpdateNotBeyondLower / UpdateBeyondUpper;
 * - appending up to `Infinity` closes the shard for good.
 *
 * Every call carries a random idempotency token: when a Consensus write fails in a
 * way that may have happened, the retry recognises its own earlier success.
 *
 * Blobs an append uploaded are deleted only by the rule of blob-deletion.ts: after a
 * certain mismatch, or an error saying the append did not happen. An append that may
 * have landed keeps them, and its error says `mayHaveHappened: true`.
 *
 * Example:
 * ```ts
 * const w = await client.openWriter(id, { key: Codecs.string, val: Codecs.unit });
 * await w.compareAndAppend([['a', null, 0, 1]], 0, 1);   // { ok: true }
 * await w.compareAndAppend([['b', null, 0, 1]], 0, 1);   // { ok: false, current: 1 }
 * ```
 */
import { randomUUID } from 'node:crypto';
import { deleteUnreferenced, mayHaveLanded, type WriteOutcome } from './blob-deletion.js';
import { Batch, BatchBuilder, decodeTransmittableBatch, type TransmittableBatch } from './batch.js';
import { codecSchema } from './codec.js';
import {
  BatchConsumed,
  ClientClosed,
  BatchNotFromThisShard,
  HandleExpired,
  IncompatibleVersion,
  InvalidBatchBounds,
  InvalidBounds,
  InvalidEmptyTimeInterval,
  InvalidRewrite,
} from './errors.js';
import { BUILD_VERSION } from './encoding.js';
import type { HollowBatch } from './hollow-batch.js';
import type { HollowPart } from './part.js';
import type { UpdateColumns } from './update-columns.js';
import { registerCodecSchemas, type ShardContext } from './shard-handle-context.js';
import { compareAndAppend, expireWriter } from './state-commands.js';
import { mayHaveHappenedError, withStorageRetry } from './storage-retry.js';
import { assertFrontier } from './time.js';
import { checkUpdates, type Update } from './update.js';
import { newWriterId, type WriterId } from './shard-id.js';

/**
 * The outcome of a compare-and-append: `{ ok: true }`, or `{ ok: false, current }` with the shard's
 * actual upper when it was not the expected one (nothing was written).
 *
 * Example:
 * ```ts
 * const res: UpperOutcome = await w.compareAndAppend(rows, upper, upper + 1);
 * if (!res.ok) upper = res.current;   // someone else wrote first: retry from there
 * ```
 */
export type UpperOutcome =
  | {
      /** The append happened: the upper is now the new upper. */
      ok: true;
    }
  | {
      /** The upper was not the expected one: nothing was written. */
      ok: false;
      /** The shard's actual upper. */
      current: number;
    };

/** An append's outcome, with what is known about its state write (for the deletion rule). */
type AppendOutcome = WriteOutcome & { outcome: UpperOutcome };

/**
 * Options of {@link WriteHandle.compareAndAppendBatch}.
 *
 * Example:
 * ```ts
 * await w.compareAndAppendBatch([b], 7, 8, { validatePartBounds: false });
 * ```
 */
export interface CompareAndAppendBatchOptions {
  /** Check each batch covers `[expectedUpper, newUpper)` (default true). */
  validatePartBounds?: boolean;
}

/**
 * A batch builder that encodes with the writer's codecs.
 *
 * Get one from `WriteHandle.builder(lower)`, to write more updates than fit in memory at once.
 *
 * Example:
 * ```ts
 * const b = await writer.builder(0);
 * for (const [k, v, t, d] of rows) await b.add(k, v, t, d);
 * const batch = await b.finish(10);
 * await writer.compareAndAppendBatch([batch], 0, 10);
 * ```
 */
export class TypedBatchBuilder<K, V> {
  constructor(
    private readonly inner: BatchBuilder,
    private readonly ctx: ShardContext<K, V>,
  ) {}
  /** Adds one update. Await it: it resolves at once unless a full part is being uploaded. */
  add(key: K, val: V, ts: number, diff: number): Promise<void> {
    const p = this.inner.addEncoded(this.ctx.codecs.key.encode(key), this.ctx.codecs.val.encode(val), ts, diff);
    return p ?? RESOLVED;
  }
  /** Adds one update already encoded with this writer's codecs. */
  addEncoded(key: Uint8Array, val: Uint8Array, ts: number, diff: number): Promise<void> {
    return this.inner.addEncoded(key, val, ts, diff) ?? RESOLVED;
  }
  /**
   * @internal Adds buffered columns already encoded with this writer's codecs, times
   * and diffs checked; lends them to the builder until `finish` settles (BatchBuilder.addColumns).
   */
  addColumns(cols: UpdateColumns): Promise<void> {
    return this.inner.addColumns(cols) ?? RESOLVED;
  }
  /**
   * Uploads what is left and returns the batch `[lower, upper)`; every update must be below
   * `upper`.
   */
  finish(upper: number): Promise<Batch> {
    return this.inner.finish(upper);
  }
  /** How many updates were added so far. */
  get length(): number {
    return this.inner.length;
  }
}
const RESOLVED = Promise.resolve();

/**
 * A writer of a shard: compare-and-append at an expected upper, batches, and waiting for the upper.
 * Open one with `PersistClient.openWriter`.
 *
 * Example:
 * ```ts
 * const w = await client.openWriter(id, { key: Codecs.string, val: Codecs.unit });
 * await w.compareAndAppend([['a', null, 0, 1]], 0, 1);   // { ok: true }
 * await w.compareAndAppend([['b', null, 0, 1]], 0, 1);   // { ok: false, current: 1 }
 * ```
 */
export class WriteHandle<K, V> {
  /** This writer's id in shard state (`"w"` + uuid). */
  readonly writerId: WriterId = newWriterId();
  private cachedUpper: number;
  private schemaId: number | undefined;
  private expired = false;

  constructor(
    private readonly ctx: ShardContext<K, V>,
    /** Why the writer was opened, as given to openWriter (shown by tooling). */
    readonly purpose: string,
    private readonly onExpire: (w: WriteHandle<K, V>) => void = () => undefined,
  ) {
    this.cachedUpper = ctx.machine.state.meta.upper;
  }

  /** The shard this handle writes. */
  get shardId(): string {
    return this.ctx.shardId;
  }

  /** Whether `expire()` was called: the handle can no longer write. */
  get isExpired(): boolean {
    return this.expired;
  }

  /** This handle's cached upper: possibly stale, never ahead of the true upper. */
  upper(): number {
    return this.cachedUpper;
  }

  /** The process-wide cached upper of the shard: possibly stale, never ahead. */
  sharedUpper(): number {
    const shared = this.ctx.machine.state.meta.upper;
    if (shared > this.cachedUpper) this.cachedUpper = shared;
    return shared;
  }

  /** Reads the upper from Consensus; linearized with writes. */
  async fetchRecentUpper(): Promise<number> {
    this.checkLive();
    const state = (await this.ctx.machine.refresh()) ?? this.ctx.machine.state;
    this.cachedUpper = state.meta.upper;
    return this.cachedUpper;
  }

  /** The registry id of this writer's schema, if it was registered already. */
  get schemaIdIfKnown(): number | undefined {
    return this.schemaId;
  }

  /** The id of this writer's schema in the shard's registry, registering it on first use. */
  async ensureSchema(): Promise<number> {
    this.schemaId ??= await registerCodecSchemas(this.ctx);
    return this.schemaId;
  }

  /** Starts a batch of updates at times `>= lower`. */
  async builder(lower: number): Promise<TypedBatchBuilder<K, V>> {
    this.checkLive();
    const schemaId = await this.ensureSchema();
    const inner = new BatchBuilder(
      {
        shardId: this.ctx.shardId,
        writerKey: this.writerId,
        blob: this.ctx.blob,
        cfg: this.ctx.cfg,
        keySchema: codecSchema(this.ctx.codecs.key),
        valSchema: codecSchema(this.ctx.codecs.val),
        schemaId,
      },
      lower,
    );
    return new TypedBatchBuilder(inner, this.ctx);
  }

  /** Builds (uploads) a batch of `updates`, all with `lower <= t < upper`. */
  async batch(updates: Iterable<Update<K, V>>, lower: number, upper: number): Promise<Batch> {
    assertFrontier(upper, 'batch upper');
    const rows = checkUpdates(updates);
    const b = await this.builder(lower);
    for (const [k, v, t, d] of rows) await b.add(k, v, t, d);
    return b.finish(upper);
  }

  /** Turns a transmittable batch (from any writer of this shard) back into a Batch. */
  batchFromTransmittable(bytes: TransmittableBatch): Batch {
    return decodeTransmittableBatch(bytes, this.ctx.shardId, this.ctx.blob, this.ctx.cfg);
  }

  /**
   * Appends `updates` iff the shard's upper is `expectedUpper`, moving it to `newUpper`.
   * On a mismatch nothing is written and `current` is the true upper.
   */
  async compareAndAppend(
    updates: Iterable<Update<K, V>>,
    expectedUpper: number,
    newUpper: number,
  ): Promise<UpperOutcome> {
    this.checkLive();
    const rows = checkUpdates(updates);
    checkInterval(expectedUpper, newUpper, rows.length > 0);
    // Nothing to upload: an empty append is metadata only and needs no schema.
    if (rows.length === 0) return this.compareAndAppendBatch([], expectedUpper, newUpper);
    const batch = await this.batch(rows, expectedUpper, newUpper);
    let out: AppendOutcome;
    try {
      out = await this.appendBatches([batch], expectedUpper, newUpper, {});
    } catch (err) {
      await batch.discardAfterError(err);
      throw err;
    }
    if (!out.outcome.ok) await batch.discardAfter(out);
    return out.outcome;
  }

  /**
   * Appends pre-built batches as one write at `[expectedUpper, newUpper)`. On a
   * mismatch the caller still owns the batches and may retry them.
   */
  async compareAndAppendBatch(
    batches: Batch[],
    expectedUpper: number,
    newUpper: number,
    opts: CompareAndAppendBatchOptions = {},
  ): Promise<UpperOutcome> {
    return (await this.appendBatches(batches, expectedUpper, newUpper, opts)).outcome;
  }

  private async appendBatches(
    batches: Batch[],
    expectedUpper: number,
    newUpper: number,
    opts: CompareAndAppendBatchOptions,
  ): Promise<AppendOutcome> {
    this.checkLive();
    const validate = opts.validatePartBounds ?? true;
    const updateCount = batches.reduce((n, b) => n + b.updateCount, 0);
    checkInterval(expectedUpper, newUpper, updateCount > 0);
    if (batches.length > 0) await this.ensureSchema();
    let parts: HollowPart[] = [];
    for (const b of batches) parts.push(...this.checkBatch(b, expectedUpper, newUpper, validate));
    const token = randomUUID();
    const flushed: string[] = [];
    // Across rounds: a round whose write may have landed keeps the whole append uncertain.
    let uncertain = false;
    try {
      for (;;) {
        const hollow: HollowBatch = { lower: expectedUpper, upper: newUpper, since: 0, parts, updateCount };
        const applied = await this.ctx.machine.apply('compare_and_append', (s) =>
          compareAndAppend(s, {
            writerId: this.writerId,
            purpose: this.purpose,
            leaseDurationMs: this.ctx.cfg.writerLeaseDurationMs,
            nowMs: Date.now(),
            idempotencyToken: token,
            expectedUpper,
            newUpper,
            batch: hollow,
            inlineTotalMaxBytes: this.ctx.cfg.inlineWritesTotalMaxBytes,
          }),
        );
        uncertain ||= applied.uncertain;
        const { result } = applied;
        switch (result.kind) {
          case 'ok':
          case 'already-committed':
            for (const b of batches) b.markConsumed();
            flushed.length = 0;
            if (newUpper > this.cachedUpper) this.cachedUpper = newUpper;
            return { outcome: { ok: true }, uncertain, state: applied.state };
          case 'mismatch': {
            this.cachedUpper = result.current;
            const outcome: AppendOutcome = { outcome: { ok: false, current: result.current }, uncertain, state: applied.state };
            await deleteUnreferenced(this.ctx.blob, this.ctx.cfg, flushed.splice(0), outcome);
            return outcome;
          }
          case 'inline-budget-exceeded':
            // The shard holds enough inline data already: move ours to Blob and retry.
            parts = await this.flushInline(parts, flushed);
            break;
        }
      }
    } catch (caught) {
      const err = uncertain ? mayHaveHappenedError(`compare_and_append on ${this.ctx.shardId}`, caught) : caught;
      if (!mayHaveLanded(err)) await this.deleteBlobs(flushed).catch(() => undefined);
      throw err;
    }
  }

  private checkBatch(b: Batch, expectedUpper: number, newUpper: number, validate: boolean): HollowPart[] {
    if (b.isConsumed) {
      throw new BatchConsumed(`a batch of ${b.shardId} was already appended, transmitted or deleted; build a new one`);
    }
    if (b.shardId !== this.ctx.shardId) {
      throw new BatchNotFromThisShard(
        `the batch belongs to shard ${b.shardId}, not ${this.ctx.shardId}; append it through a writer of ${b.shardId}`,
      );
    }
    if (b.version.split('.')[0] !== BUILD_VERSION.split('.')[0]) {
      throw new IncompatibleVersion(
        `the batch was written by txnwal ${b.version}, which this build (${BUILD_VERSION}) cannot read; ` +
          'append it from a process running a compatible version',
      );
    }
    const h = b.hollow;
    if (b.rewrittenTs !== undefined) {
      if (newUpper !== h.upper) {
        throw new InvalidRewrite(
          `a rewritten batch must be appended with its own upper ${h.upper} as the new upper, not ${newUpper}`,
        );
      }
      for (const p of h.parts) {
        if (p.tsRewrite !== undefined && expectedUpper > p.tsRewrite) {
          throw new InvalidRewrite(
            `the batch was rewritten to ${p.tsRewrite}, below the append's lower ${expectedUpper}; rewrite it to >= ${expectedUpper}`,
          );
        }
      }
    }
    if (validate && !(h.lower <= expectedUpper && h.upper >= newUpper)) {
      throw new InvalidBatchBounds(
        `batch [${h.lower}, ${h.upper}) does not cover the append interval [${expectedUpper}, ${newUpper}); ` +
          `build the batch with lower <= ${expectedUpper} and upper >= ${newUpper}`,
      );
    }
    // Wider than the interval: readers keep only the appended part of it.
    const truncate = h.lower < expectedUpper || h.upper > newUpper;
    return truncate ? h.parts.map((p) => ({ ...p, keep: { lower: expectedUpper, upper: newUpper } })) : [...h.parts];
  }

  private async flushInline(parts: HollowPart[], flushed: string[]): Promise<HollowPart[]> {
    const out: HollowPart[] = [];
    for (const p of parts) {
      if (!p.inline) {
        out.push(p);
        continue;
      }
      const key = `${this.ctx.shardId}/${this.writerId}/${randomUUID()}`;
      const bytes = p.inline;
      await withStorageRetry(this.ctx.cfg, `writing batch part ${key}`, () => this.ctx.blob.set(key, bytes), {
        write: true,
      });
      flushed.push(key);
      const { inline: _inline, ...rest } = p;
      out.push({ ...rest, key });
    }
    return out;
  }

  private async deleteBlobs(keys: string[]): Promise<void> {
    for (const key of keys.splice(0)) {
      await withStorageRetry(this.ctx.cfg, `deleting blob ${key}`, () => this.ctx.blob.delete(key), { write: true });
    }
  }

  /**
   * A non-linearized append for writers that may race to write identical data:
   * already-covered times are trimmed, a write wholly covered is a no-op, and a gap
   * (upper below `lower`) is reported as a mismatch.
   */
  async append(updates: Iterable<Update<K, V>>, lower: number, upper: number): Promise<UpperOutcome> {
    this.checkLive();
    const batch = await this.batch(updates, lower, upper);
    let out: AppendOutcome;
    try {
      out = await this.appendBatchOutcome(batch, lower, upper);
    } catch (err) {
      await batch.discardAfterError(err);
      throw err;
    }
    await batch.discardAfter(out);
    return out.outcome;
  }

  /**
   * {@link WriteHandle.append} for a pre-built batch: non-linearized, trimming times the shard
   * already covers.
   */
  async appendBatch(batch: Batch, lower: number, upper: number): Promise<UpperOutcome> {
    return (await this.appendBatchOutcome(batch, lower, upper)).outcome;
  }

  private async appendBatchOutcome(batch: Batch, lower: number, upper: number): Promise<AppendOutcome> {
    let current = this.sharedUpper();
    let uncertain = false;
    let state = this.ctx.machine.state;
    try {
      for (;;) {
        if (current < lower) return { outcome: { ok: false, current }, uncertain, state };
        if (current >= upper) {
          // Written by someone else already: the batch is not needed (unless ours landed).
          await batch.discardAfter({ uncertain, state });
          return { outcome: { ok: true }, uncertain, state };
        }
        const out = await this.appendBatches([batch], current, upper, {});
        if (out.outcome.ok) return out;
        uncertain ||= out.uncertain;
        state = out.state;
        current = out.outcome.current;
      }
    } catch (err) {
      throw uncertain ? mayHaveHappenedError(`append on ${this.ctx.shardId}`, err) : err;
    }
  }

  /** Appends empty batches until the upper is at least `target`. Needs no schema. */
  async advanceUpper(target: number): Promise<void> {
    this.checkLive();
    assertFrontier(target, 'target');
    let current = this.sharedUpper();
    while (current < target) {
      const res = await this.compareAndAppendBatch([], current, target);
      if (res.ok) return;
      current = res.current;
    }
  }

  /** Resolves once the shard's upper is strictly greater than `frontier`. */
  async waitForUpperPast(frontier: number, opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.checkLive();
    let state = (await this.ctx.machine.refresh()) ?? this.ctx.machine.state;
    while (!(state.meta.upper > frontier)) {
      state = await this.ctx.machine.waitForNewerThan(state.seqno, opts.signal);
    }
    this.sharedUpper();
  }

  /** Removes this writer from shard state. The handle is unusable afterwards. */
  async expire(): Promise<void> {
    if (this.expired) return;
    this.expired = true;
    this.onExpire(this);
    await this.ctx.machine.apply('expire_writer', (s) => expireWriter(s, this.writerId), { confirmNoop: false });
  }

  private checkLive(): void {
    if (this.ctx.machine.closing) {
      throw new ClientClosed(`the PersistClient of writer ${this.writerId} of ${this.ctx.shardId} was closed; open a new client`);
    }
    if (this.expired) throw new HandleExpired(`writer ${this.writerId} of ${this.ctx.shardId} was expired; open a new writer`);
  }
}

function checkInterval(expectedUpper: number, newUpper: number, hasData: boolean): void {
  assertFrontier(expectedUpper, 'expectedUpper');
  assertFrontier(newUpper, 'newUpper');
  if (newUpper < expectedUpper) {
    throw new InvalidBounds(
      `newUpper ${newUpper} is below expectedUpper ${expectedUpper}; an append can only move the upper forward`,
    );
  }
  if (newUpper === expectedUpper && hasData) {
    throw new InvalidEmptyTimeInterval(
      `cannot append data at [${expectedUpper}, ${newUpper}): the interval is empty; use newUpper > ${expectedUpper}`,
    );
  }
}

