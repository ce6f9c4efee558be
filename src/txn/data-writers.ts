/**
 * DataWriters: the data-shard writers a TxnsHandle holds (Materialize's `DataHandles`).
 *
 * Three kinds, one map each, because each follows a different schema rule:
 * - **commit** writers: handed over by `register` (or `insertCommitWriter`); commits
 *   encode a shard's batches with its commit writer's schema. Invariant: a handle
 *   commits to a shard only through a commit writer, so a shard without one was not
 *   registered through this handle. On a second register the writer with the newer
 *   schema stays; the other is expired. `forget` drops (expires) it.
 * - **apply** writers: opened by apply with the shard's newest registered schema and
 *   following the batches' schema afterwards (apply-writer.ts). One is in use at a
 *   time per shard (`withApplyWriter` marks it in use while it runs).
 * - **spill** writers: upload a Txn's buffered rows as batches for a shard this
 *   handle has no commit writer for (the commit then fails with NotRegistered or
 *   NotRegisteredWithHandle, and the Txn may be discarded).
 *
 * Example: `register(1, [w])` → `adoptCommitWriter(w)`; a spill to that shard uses
 * `w`; `applyLe` opens an apply writer on first use and keeps it; `forget` →
 * `dropCommitWriter`; `close` → `expireAll`.
 */
import type { Logger } from 'pino';
import type { PersistClient } from '../persist/client.js';
import type { ShardCodecs } from '../persist/codec.js';
import type { ShardId } from '../persist/shard-id.js';
import type { WriteHandle } from '../persist/write-handle.js';
import { ApplyWriter, withSchemas } from './apply-writer.js';

export class DataWriters<K, V> {
  /** Writers for shards registered through this handle: commits encode with their schema. */
  private readonly forCommit = new Map<ShardId, WriteHandle<K, V>>();
  /** Writers opened by apply, whose schema follows the batches. */
  private readonly forApply = new Map<ShardId, ApplyWriter<K, V>>();
  /** Apply writers some `withApplyWriter` call is using now (few: the shards being applied). */
  private readonly applyInUse = new Set<ApplyWriter<K, V>>();
  /** Writers for spilling writes of shards this handle has no commit writer for. */
  private readonly forSpill = new Map<ShardId, WriteHandle<K, V>>();

  constructor(
    private readonly client: PersistClient,
    private readonly codecs: ShardCodecs<K, V>,
    private readonly log: Logger,
  ) {}

  /** The commit writer of `dataId`, if the shard was registered through this handle. */
  commitWriter(dataId: ShardId): WriteHandle<K, V> | undefined {
    return this.forCommit.get(dataId);
  }

  /** Takes over a registered shard's writer; of two, the one with the newer schema stays and the other is expired. */
  async adoptCommitWriter(w: WriteHandle<K, V>): Promise<void> {
    const prev = this.forCommit.get(w.shardId);
    if (prev && prev !== w && (prev.schemaIdIfKnown ?? -1) > (w.schemaIdIfKnown ?? -1)) {
      this.log.warn(
        { shard: w.shardId, kept: prev.schemaIdIfKnown, offered: w.schemaIdIfKnown },
        'register: kept the commit writer with the newer schema',
      );
      await w.expire();
      return;
    }
    this.forCommit.set(w.shardId, w);
    if (prev && prev !== w) await prev.expire();
  }

  /** Takes over `writer` as a commit writer unless one is there already (then `writer` is expired). */
  async insertCommitWriter(writer: WriteHandle<K, V>): Promise<void> {
    if (this.forCommit.has(writer.shardId)) await writer.expire();
    else this.forCommit.set(writer.shardId, writer);
  }

  /** Expires and forgets the commit writer of `dataId` (a forgotten shard). */
  async dropCommitWriter(dataId: ShardId): Promise<void> {
    const w = this.forCommit.get(dataId);
    if (!w) return;
    this.forCommit.delete(dataId);
    await w.expire();
  }

  /** A writer to upload `dataId`'s buffered rows with: its commit writer, else a spill writer. */
  async batchWriter(dataId: ShardId): Promise<WriteHandle<K, V>> {
    const commit = this.forCommit.get(dataId);
    if (commit) return commit;
    let w = this.forSpill.get(dataId);
    if (!w) {
      w = await this.client.openWriter(dataId, this.codecs, { purpose: 'txn spill' });
      this.forSpill.set(dataId, w);
    }
    return w;
  }

  /** Runs `fn` with `dataId`'s apply writer (opened on first use), then keeps it for next time. */
  async withApplyWriter<R>(dataId: ShardId, fn: (apply: ApplyWriter<K, V>) => Promise<R>): Promise<R> {
    const apply = await this.takeApplyWriter(dataId);
    try {
      return await fn(apply);
    } finally {
      this.applyInUse.delete(apply);
      // Usually it is in the map already: no map write, so the cost does not grow with the shard count.
      if (this.forApply.get(dataId) !== apply) this.forApply.set(dataId, apply);
    }
  }

  /**
   * The shard's apply writer, marked in use; a new one if it is in use already. It
   * stays in the map while in use: deleting it and setting it back on every apply
   * made V8 rehash the map every few hundred applies, a cost that grew with the
   * number of registered shards (40 µs per apply with 10,000 of them).
   */
  private async takeApplyWriter(dataId: ShardId): Promise<ApplyWriter<K, V>> {
    const existing = this.forApply.get(dataId);
    if (existing && !this.applyInUse.has(existing)) {
      this.applyInUse.add(existing);
      return existing;
    }
    // Open with the shard's newest registered schema (a registered shard has one).
    const latest = await this.client.latestSchema(dataId);
    const codecs = latest ? withSchemas(this.codecs, latest.keySchema, latest.valSchema) : this.codecs;
    const writer = await this.client.openWriter(dataId, codecs, { purpose: 'txn data apply' });
    const apply = new ApplyWriter(this.client, writer, codecs);
    this.applyInUse.add(apply);
    return apply;
  }

  /** Expires every writer held (commit, then apply, then spill); a failure to expire one does not stop the rest. */
  async expireAll(): Promise<void> {
    const writers = [...this.forCommit.values(), ...[...this.forApply.values()].map((a) => a.writer), ...this.forSpill.values()];
    for (const w of writers) await w.expire().catch(() => undefined);
  }
}
