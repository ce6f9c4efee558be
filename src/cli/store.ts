/**
 * StoreView: a txnwal location opened for reading by the `txnwal` command: its
 * read-only stores (read-only-location.ts), the database catalog in it, and
 * read-only readers of its shards.
 *
 * Invariants:
 * - Nothing is written: the catalog is read with `readTxnsShard` / `readEntry` /
 *   `listEntries` (which never create), shards through {@link ShardReader}.
 * - A location whose Consensus holds nothing is not a txnwal store (CliError); one
 *   holding shards but no catalog is a bare persist/txn-wal location: `inspect` lists
 *   its shards, the commands that name collections say there is no catalog.
 * - Storage retries are short (3 attempts): a command should fail in seconds with
 *   one line, not sit in backoff.
 *
 * Example:
 * ```ts
 * const store = await StoreView.open('file:./data');
 * const entry = await store.collection('accounts');   // CliError if there is none
 * const data = await store.shard(entry.shardId);
 * await store.close();
 * ```
 */
import { defaultConfig, type PersistConfig } from '../persist/config.js';
import { isShardId, type ShardId } from '../persist/shard-id.js';
import { listEntries, readEntry, readTxnsShard, type CatalogEntry, type CatalogStore } from '../db/catalog.js';
import { CliError } from './cli-error.js';
import { openReadOnlyLocation, type ReadOnlyLocation } from './read-only-location.js';
import { ShardReader, type ReadContext } from './shard-reader.js';

/** A location opened read-only, with its catalog (see the module doc). */
export class StoreView {
  private constructor(
    readonly location: ReadOnlyLocation,
    readonly ctx: ReadContext,
    /** The database's txns shard, or undefined for a location without a catalog. */
    readonly txnsId: ShardId | undefined,
    /** Every Consensus key of the location. */
    readonly keys: readonly string[],
  ) {}

  /** Opens `url` read-only and reads its catalog's txns shard; CliError if it is not a txnwal store. */
  static async open(url: string): Promise<StoreView> {
    const location = await openReadOnlyLocation(url);
    try {
      const cfg: PersistConfig = { ...defaultConfig(), storageRetry: { attempts: 3, initialMs: 10, multiplier: 2, clampMs: 200 } };
      const ctx: ReadContext = { blob: location.blob, consensus: location.consensus, cfg };
      const keys = await location.consensus.listKeys();
      if (keys.length === 0) throw new CliError(`${location.url} is not a txnwal store: it holds no shards and no catalog; check the URL`);
      const txnsId = await readTxnsShard(catalogStore(ctx));
      return new StoreView(location, ctx, txnsId, keys);
    } catch (err) {
      await location.close();
      throw err;
    }
  }

  /** The location's shards (Consensus keys that are shard ids), sorted. */
  shardIds(): ShardId[] {
    return this.keys.filter((k): k is ShardId => isShardId(k));
  }

  /** The database's txns shard; CliError when the location has no catalog. */
  requireTxnsId(): ShardId {
    if (this.txnsId === undefined) {
      throw new CliError(
        `${this.location.url} holds persist shards but no txnwal database catalog, so it has no named collections; ` +
          `run \`txnwal inspect ${this.location.url}\` to see its shards`,
      );
    }
    return this.txnsId;
  }

  /** Every live catalog entry, by name. */
  collections(): Promise<CatalogEntry[]> {
    return listEntries(catalogStore(this.ctx));
  }

  /** The catalog entry of `name`; CliError naming the collections there are when it has none. */
  async collection(name: string): Promise<CatalogEntry> {
    this.requireTxnsId();
    const entry = await readEntry(catalogStore(this.ctx), name);
    if (entry) return entry;
    const names = (await this.collections()).map((e) => e.name);
    throw new CliError(
      `no collection ${JSON.stringify(name)} in ${this.location.url} ` +
        `(${names.length === 0 ? 'it has none' : `it has: ${names.join(', ')}`}); check the name or run \`txnwal inspect ${this.location.url}\``,
    );
  }

  /** A read-only reader of shard `id`, or undefined when the shard does not exist. */
  shard(id: string): Promise<ShardReader | undefined> {
    return ShardReader.open(this.ctx, id);
  }

  close(): Promise<void> {
    return this.location.close();
  }
}

function catalogStore(ctx: ReadContext): CatalogStore {
  return { consensus: ctx.consensus, cfg: ctx.cfg };
}
