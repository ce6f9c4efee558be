/**
 * The durable catalog of a database, kept in the location's own Consensus: which
 * shard is the database's txns shard, and for each collection name its data shard
 * and the names of its key and value codecs.
 *
 * Layout: one Consensus register per fact, under keys no shard can have (shard ids
 * are `"s" + uuid`; txn-wal's claims start with `txns-claim/`):
 * - {@link TXNS_SHARD_KEY} holds the txns shard id (UTF-8);
 * - `db-catalog/collection/<name>` holds a live entry
 *   `{"v":1,"shard":"s…","key":"string","val":"unit"}` (JSON), or empty bytes once the
 *   collection was dropped (a tombstone: the name may be created again, with a new
 *   shard).
 *
 * Why a register per fact, and not one catalog document or a catalog shard:
 * - **Races have one winner.** Every change is a compare-and-set on the register's
 *   head seqno, and creation is a compare-and-set from "absent" (or from the
 *   tombstone), so two processes creating the same name (or the first open of a
 *   database) race to exactly one entry; the loser reads the winner's and uses it.
 *   Collections of different names never contend with each other.
 * - **Retries are safe.** Each operation decides by value (what the register says
 *   now), so a retried compare-and-set whose first attempt landed but whose reply
 *   was lost finds its own result and succeeds.
 * - **No bootstrap problem.** A catalog kept in a shard would need its own id
 *   stored somewhere; Consensus keys are found by name.
 *
 * Creating a collection is two steps: the catalog entry, then the registration of
 * its shard with the txns shard (`Database.collection`). Registration is
 * idempotent and every process registers the shards it opens through its own
 * handle, so a crash between the two leaves an entry whose shard is registered by
 * the next open of that name: the catalog is the truth, registration follows it.
 * Dropping is the other way round: first the tombstone, then the forget, so a crash
 * in between cannot bring a dropped collection back; it leaves a registered shard
 * nobody names, which costs a little txns-cache memory and nothing else.
 *
 * Worked example (two processes A and B open one new database and race):
 * ```
 * A: txnsShard() reads absent, CaS absent → sA          committed: the txns shard is sA
 * B: txnsShard() reads absent, CaS absent → sB          mismatch; reads sA and uses it
 * A: createEntry('accounts', string/unit) → s1          committed
 * B: createEntry('accounts', string/unit)               finds s1 (live): the same collection
 * A: dropEntry('accounts')                              tombstone; returns s1 to forget
 * B: createEntry('accounts', json/json)  → s2           committed from the tombstone
 * ```
 */
import type { Consensus, VersionedData } from '../location/consensus.js';
import type { PersistConfig } from '../persist/config.js';
import { StoredFormatError } from '../persist/errors.js';
import { isShardId, newShardId, type ShardId } from '../persist/shard-id.js';
import { withStorageRetry } from '../persist/storage-retry.js';

/** The register that names the database's txns shard. */
export const TXNS_SHARD_KEY = 'db-catalog/txns-shard';
const ENTRY_PREFIX = 'db-catalog/collection/';

/** Where the catalog lives and how storage calls are retried. */
export interface CatalogStore {
  consensus: Consensus;
  cfg: PersistConfig;
}

/** A live catalog entry: a collection's data shard and its codec names. */
export interface CatalogEntry {
  readonly name: string;
  readonly shardId: ShardId;
  readonly keyCodec: string;
  readonly valCodec: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const TOMBSTONE = new Uint8Array(0);

/** The Consensus key of a collection's entry. */
export function entryKey(name: string): string {
  return ENTRY_PREFIX + name;
}

function readHead(store: CatalogStore, key: string): Promise<VersionedData | undefined> {
  return withStorageRetry(store.cfg, `read the catalog register ${key}`, () => store.consensus.head(key));
}

/** One compare-and-set from `head`; false on a mismatch (someone else, or our own earlier attempt, changed it). */
async function write(store: CatalogStore, key: string, head: VersionedData | undefined, data: Uint8Array): Promise<boolean> {
  const seqno = (head?.seqno ?? 0) + 1;
  const res = await withStorageRetry(
    store.cfg,
    `write the catalog register ${key}`,
    () => store.consensus.compareAndSet(key, head?.seqno, { seqno, data }),
    { write: true },
  );
  if (res !== 'committed') return false;
  // Only the head matters. Best effort: a failure leaves a stale version behind.
  await store.consensus.truncate(key, seqno).catch((err: unknown) => {
    store.cfg.logger.debug({ err, key }, 'catalog: truncating old versions failed');
  });
  return true;
}

/**
 * The database's txns shard if one is recorded, else undefined. Read-only: unlike
 * {@link txnsShard} it never creates one (the `txnwal` command inspects stores with it).
 */
export async function readTxnsShard(store: CatalogStore): Promise<ShardId | undefined> {
  const head = await readHead(store, TXNS_SHARD_KEY);
  return head === undefined ? undefined : decodeTxnsShardId(head);
}

function decodeTxnsShardId(head: VersionedData): ShardId {
  const id = decoder.decode(head.data);
  if (!isShardId(id)) throw new StoredFormatError(`the catalog register ${TXNS_SHARD_KEY} holds ${JSON.stringify(id)}, not a shard id`);
  return id;
}

/** The database's txns shard: the one recorded, or a new one recorded now (one winner if several race). */
export async function txnsShard(store: CatalogStore): Promise<ShardId> {
  for (;;) {
    const head = await readHead(store, TXNS_SHARD_KEY);
    if (head !== undefined) return decodeTxnsShardId(head);
    if (await write(store, TXNS_SHARD_KEY, head, encoder.encode(newShardId()))) continue; // read back what won
  }
}

function decodeEntry(name: string, head: VersionedData | undefined): CatalogEntry | undefined {
  if (head === undefined || head.data.byteLength === 0) return undefined;
  let parsed: { v?: unknown; shard?: unknown; key?: unknown; val?: unknown };
  try {
    parsed = JSON.parse(decoder.decode(head.data)) as typeof parsed;
  } catch (err) {
    throw new StoredFormatError(`the catalog entry of collection ${JSON.stringify(name)} is not JSON (${(err as Error).message})`);
  }
  if (parsed.v !== 1 || !isShardId(parsed.shard) || typeof parsed.key !== 'string' || typeof parsed.val !== 'string') {
    throw new StoredFormatError(
      `the catalog entry of collection ${JSON.stringify(name)} is not a version 1 entry { v, shard, key, val }: ${decoder.decode(head.data)}`,
    );
  }
  return { name, shardId: parsed.shard, keyCodec: parsed.key, valCodec: parsed.val };
}

function encodeEntry(e: Omit<CatalogEntry, 'name'>): Uint8Array {
  return encoder.encode(JSON.stringify({ v: 1, shard: e.shardId, key: e.keyCodec, val: e.valCodec }));
}

/** The live entry of `name`, or undefined (never created, or dropped). */
export async function readEntry(store: CatalogStore, name: string): Promise<CatalogEntry | undefined> {
  return decodeEntry(name, await readHead(store, entryKey(name)));
}

/**
 * The live entry of `name`, created now with a fresh shard and these codec names if
 * there is none. `created` says whether this call's entry won; a live entry found
 * is returned as is, whatever its codecs (the caller compares them).
 */
export async function createEntry(
  store: CatalogStore,
  name: string,
  codecs: { keyCodec: string; valCodec: string },
): Promise<{ entry: CatalogEntry; created: boolean }> {
  const key = entryKey(name);
  for (let mine: ShardId | undefined; ; ) {
    const head = await readHead(store, key);
    const live = decodeEntry(name, head);
    // Our own earlier attempt may have landed with its reply lost: then it is ours.
    if (live) return { entry: live, created: live.shardId === mine };
    mine = newShardId();
    if (await write(store, key, head, encodeEntry({ shardId: mine, ...codecs }))) {
      return { entry: { name, shardId: mine, ...codecs }, created: true };
    }
  }
}

/** Replaces the live entry of `name` with a tombstone; returns the entry it replaced (undefined if there was none). */
export async function dropEntry(store: CatalogStore, name: string): Promise<CatalogEntry | undefined> {
  const key = entryKey(name);
  let dropped: CatalogEntry | undefined;
  for (;;) {
    const head = await readHead(store, key);
    const live = decodeEntry(name, head);
    // Gone: by us (an earlier attempt whose reply was lost) or by someone else.
    if (!live) return dropped;
    dropped = live;
    if (await write(store, key, head, TOMBSTONE)) return live;
  }
}

/** Every live entry, by name. */
export async function listEntries(store: CatalogStore): Promise<CatalogEntry[]> {
  const keys = await withStorageRetry(store.cfg, 'list the catalog', () => store.consensus.listKeys());
  const names = keys.filter((k) => k.startsWith(ENTRY_PREFIX)).map((k) => k.slice(ENTRY_PREFIX.length));
  const entries = await Promise.all(names.map((n) => readEntry(store, n)));
  return entries.filter((e): e is CatalogEntry => e !== undefined).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
