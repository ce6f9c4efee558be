/**
 * Collection: a named, typed collection of a {@link Database}, and the rules for
 * names and codec names.
 *
 * A collection is a multiset of `(key, val)` rows with diffs, stored in one data
 * shard registered with the database's txns shard. The shard itself holds bytes:
 * the database encodes keys and values with the collection's codecs on the way in
 * and decodes them on the way out, because one txns shard (one TxnsHandle) commits
 * to all collections and its data writers share one pair of codecs
 * (txn/data-writers.ts). The catalog records the collection's codec *names*, so
 * opening it with other codecs is refused ({@link CollectionCodecMismatch}); a
 * lower-level reader of the shard uses `Codecs.bytes` and these codecs to decode.
 *
 * Names: 1 to 128 characters from `A-Z a-z 0-9 _ - .`, starting with a letter or
 * `_`, so a name is safe in a Consensus key, a URL, a file name and a log line.
 *
 * Example:
 * ```ts
 * const accounts = await db.collection('accounts', { key: Codecs.string, val: Codecs.unit });
 * accounts.shardId;  // "s…": the data shard, recorded in the catalog
 * ```
 */
import { Codecs, type Codec, type ShardCodecs } from '../persist/codec.js';
import type { ShardId } from '../persist/shard-id.js';
import { InvalidCollectionName } from './errors.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;

/** Throws {@link InvalidCollectionName} unless `name` follows the naming rule (module doc). */
export function checkCollectionName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME.test(name)) throw new InvalidCollectionName(name);
}

/** Codecs a collection can be opened with by name alone (without passing codecs). */
const BUILT_IN: Readonly<Record<string, Codec<unknown>>> = {
  string: Codecs.string as Codec<unknown>,
  bytes: Codecs.bytes as Codec<unknown>,
  unit: Codecs.unit as Codec<unknown>,
  json: Codecs.json(),
};

/** The built-in codec called `name`, if there is one. */
export function builtInCodec(name: string): Codec<unknown> | undefined {
  return Object.hasOwn(BUILT_IN, name) ? BUILT_IN[name] : undefined;
}

/**
 * A collection opened in a Database: its name, data shard and codecs.
 *
 * Get one from `db.collection(name, codecs)`; pass it (or its name) to write, subscribe$, snapshot
 * and transactions.
 *
 * Example:
 * ```ts
 * const accounts = await db.collection('accounts', { key: Codecs.string, val: Codecs.unit });
 * accounts.shardId;                 // the data shard behind it
 * db.subscribe$(accounts);          // the same as db.subscribe$('accounts')
 * ```
 */
export class Collection<K = unknown, V = unknown> {
  /** @internal Built by `Database.collection`. */
  constructor(
    /** The collection's name in the catalog. */
    readonly name: string,
    /** The data shard that holds its rows. */
    readonly shardId: ShardId,
    /** How its keys and values are encoded. */
    readonly codecs: ShardCodecs<K, V>,
  ) {}
}
