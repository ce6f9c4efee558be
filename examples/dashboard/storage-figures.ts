/**
 * What the storage says, for the dashboard's panels: each collection's physical upper
 * and since, the txns shard's upper and since, and the transactions committed but
 * not yet applied.
 *
 * Where the figures come from (nothing new is asked of the library):
 * - a shard's upper and since: this process's cached state of the shard
 *   (`client.shardMachine(id).state.meta`, the inspection hook the benchmarks use
 *   too). It is kept current by this process's own readers and writers of every
 *   shard shown, so it is at most one state change behind;
 * - unapplied transactions: a {@link TxnsCache} of the database's txns shard (with
 *   its own leased reader), followed in the background. Each batch it lists was
 *   committed and not yet retracted by a tidy; it is *unapplied* while its data
 *   shard's physical upper is not past its timestamp, and *awaiting tidy* after.
 *
 * Example:
 * ```ts
 * const figures = await StorageFigures.open(bank);
 * figures.collections({ branch0: 1006 });   // [{ name: 'branch0', logicalUpper: 1006, physicalUpper: 1003, since: 990, … }]
 * figures.unapplied();                      // { unapplied: 0, awaitingTidy: 1, txnsUpper: 1006, … }
 * await figures.close();
 * ```
 */
import { TxnsCache } from '../../src/index.js';
import type { Bank } from '../bank/bank.js';
import type { CollectionFigures, UnappliedFigures } from './protocol.js';

export class StorageFigures {
  private readonly stop = new AbortController();
  private following: Promise<void> = Promise.resolve();
  private failure: unknown;

  private constructor(
    private readonly bank: Bank,
    private readonly shards: ReadonlyMap<string, string>,
    private readonly cache: TxnsCache,
  ) {}

  /** Finds the shards of `names` in the catalog and starts following the txns shard. */
  static async open(bank: Bank, names: readonly string[]): Promise<StorageFigures> {
    const catalog = await bank.db.collections();
    const shards = new Map<string, string>();
    for (const name of names) {
      const entry = catalog.find((c) => c.name === name);
      if (!entry) throw new Error(`collection ${JSON.stringify(name)} is not in the catalog of ${bank.db.txnsId}`);
      shards.set(name, entry.shardId);
    }
    const cache = await TxnsCache.open(bank.db.client, bank.db.txnsId);
    const figures = new StorageFigures(bank, shards, cache);
    figures.following = figures.follow();
    return figures;
  }

  /** Each collection's figures; `logicalUppers` are what the view's subscriptions reported. */
  collections(logicalUppers: Readonly<Record<string, number>>): CollectionFigures[] {
    return [...this.shards].map(([name, shardId]) => {
      const meta = this.meta(shardId);
      return {
        name,
        shardId,
        logicalUpper: logicalUppers[name] ?? -1,
        physicalUpper: meta?.upper ?? -1,
        since: meta?.since ?? -1,
      };
    });
  }

  /** The txns shard and its unapplied batches, as of the cache's progress. */
  unapplied(): UnappliedFigures {
    if (this.failure) throw this.failure;
    const txns = this.meta(this.bank.db.txnsId);
    const physicalUpper = new Map([...this.shards.values()].map((id) => [id, this.meta(id)?.upper ?? -1]));
    let unapplied = 0;
    let unappliedBytes = 0;
    let oldestUnappliedTs: number | null = null;
    let awaitingTidy = 0;
    for (const batch of this.cache.state.unappliedBatchList()) {
      // A shard not shown here (another program's collection) is read from its own state.
      const upper = physicalUpper.get(batch.dataId) ?? this.meta(batch.dataId)?.upper ?? -1;
      if (upper > batch.ts) {
        awaitingTidy++;
        continue;
      }
      unapplied++;
      unappliedBytes += batch.raw.byteLength;
      if (oldestUnappliedTs === null || batch.ts < oldestUnappliedTs) oldestUnappliedTs = batch.ts;
    }
    return {
      txnsUpper: Math.max(this.cache.progressExclusive, txns?.upper ?? -1),
      txnsSince: txns?.since ?? -1,
      unapplied,
      unappliedBytes,
      oldestUnappliedTs,
      awaitingTidy,
    };
  }

  /** Stops following and releases the cache's reader. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.following;
    await this.cache.expire();
  }

  private meta(shardId: string): { upper: number; since: number } | undefined {
    const machine = this.bank.db.client.shardMachine(shardId);
    return machine.loaded ? machine.state.meta : undefined;
  }

  private async follow(): Promise<void> {
    try {
      while (!this.stop.signal.aborted) await this.cache.updateGt(this.cache.progressExclusive, { signal: this.stop.signal });
    } catch (err) {
      if (!this.stop.signal.aborted) this.failure = err;
    }
  }
}
