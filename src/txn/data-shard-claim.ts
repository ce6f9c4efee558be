/**
 * The durable rule "a data shard belongs to one txns shard".
 *
 * Why: two txns shards applying commits to one data shard lose writes. If txns A
 * commits to d at 5 and txns B commits to d at 10 and applies first, d's upper moves
 * to 11, and A's apply then sees d already past 5 and skips its batch for good.
 *
 * The record is a register in Consensus under {@link claimKey}`(dataId)`, a key no
 * shard can have (shard ids are `"s" + uuid`; claims start with `txns-claim/`). Its
 * head version's data is the owning txns shard id (UTF-8), or empty bytes when the
 * shard was released. Every change is a compare-and-set on the head seqno, so two
 * processes racing to claim one data shard for two txns shards cannot both win.
 * Claims and releases are idempotent by value (the register says who owns it), so a
 * retried call whose earlier attempt landed finds its own result and succeeds.
 *
 * Protocol (TxnsHandle):
 * - `register` claims every shard before its registration commit ({@link claim}),
 *   and touches the claim again after it ({@link touch}: a write even when the claim
 *   is ours already). A shard owned by another txns shard is refused with
 *   {@link RegisteredWithAnotherTxnsShard} before anything is written to the txns shard.
 * - `forget` / `forgetAll` release the claims after the forget committed
 *   ({@link release}), only while the shard is not registered at a freshly read txns
 *   upper. The release is a compare-and-set on the seqno read *before* that txns
 *   read, and register's touch bumps the seqno *after* its commit, so a register
 *   through another handle of the same txns shard racing the forget either is seen
 *   registered or makes the release's compare-and-set fail (and the release re-checks).
 *
 * Crash windows (documented in the error message):
 * - A register that claimed and then crashed, failed, or lost its timestamp race
 *   leaves the claim behind without a registration. Registering again through the
 *   same txns shard works (it finds its own claim); to move the shard to another txns
 *   shard, call `forget` on the first one: it releases a claim that names it even for
 *   a shard it does not register.
 * - A forget that committed and crashed before releasing leaves the claim too: the
 *   same second `forget` releases it.
 * - Data shards registered before claims existed have none until their next
 *   `register`; until then another txns shard could claim them.
 */
import type { Consensus, VersionedData } from '../location/consensus.js';
import type { PersistConfig } from '../persist/config.js';
import type { ShardId } from '../persist/shard-id.js';
import { withStorageRetry } from '../persist/storage-retry.js';
import { RegisteredWithAnotherTxnsShard } from './errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const RELEASED = new Uint8Array(0);

/** The Consensus key of a data shard's claim. */
export function claimKey(dataId: ShardId): string {
  return `txns-claim/${dataId}`;
}

/** Where claims live and how storage calls are retried. */
export interface ClaimStore {
  consensus: Consensus;
  cfg: PersistConfig;
}

function ownerOf(head: VersionedData | undefined): ShardId | undefined {
  if (head === undefined || head.data.byteLength === 0) return undefined;
  return decoder.decode(head.data);
}

/** The txns shard that owns `dataId`, or undefined when none does. */
export async function claimOwner(store: ClaimStore, dataId: ShardId): Promise<ShardId | undefined> {
  return ownerOf(await readHead(store, dataId));
}

function readHead(store: ClaimStore, dataId: ShardId): Promise<VersionedData | undefined> {
  return withStorageRetry(store.cfg, `read the txns claim of ${dataId}`, () => store.consensus.head(claimKey(dataId)));
}

async function write(store: ClaimStore, dataId: ShardId, head: VersionedData | undefined, data: Uint8Array): Promise<boolean> {
  const key = claimKey(dataId);
  const seqno = (head?.seqno ?? 0) + 1;
  const res = await withStorageRetry(
    store.cfg,
    `write the txns claim of ${dataId}`,
    () => store.consensus.compareAndSet(key, head?.seqno, { seqno, data }),
    { write: true },
  );
  if (res !== 'committed') return false;
  // Only the head matters; older versions are history. Best effort: a failure here
  // leaves a few stale versions behind and nothing else.
  await store.consensus.truncate(key, seqno).catch((err: unknown) => {
    store.cfg.logger.debug({ err, key }, 'txns claim: truncating old versions failed');
  });
  return true;
}

/**
 * Makes `txnsId` the owner of `dataId`, or finds it already is. Throws
 * RegisteredWithAnotherTxnsShard when another txns shard owns it.
 * With `bump`, writes a new version even when the claim is ours (see the module doc).
 */
async function claimAs(store: ClaimStore, dataId: ShardId, txnsId: ShardId, bump: boolean): Promise<void> {
  for (;;) {
    const head = await readHead(store, dataId);
    const owner = ownerOf(head);
    if (owner !== undefined && owner !== txnsId) throw new RegisteredWithAnotherTxnsShard(dataId, owner, txnsId);
    if (owner === txnsId && !bump) return;
    // A mismatch means someone else changed the claim meanwhile (or our own earlier
    // attempt landed): read again and decide again.
    if (await write(store, dataId, head, encoder.encode(txnsId))) return;
    bump = false;
  }
}

/** Claims `dataId` for `txnsId` (a no-op when it is ours already). */
export function claim(store: ClaimStore, dataId: ShardId, txnsId: ShardId): Promise<void> {
  return claimAs(store, dataId, txnsId, false);
}

/** Claims `dataId` for `txnsId` with a new version even if it is ours already. */
export function touch(store: ClaimStore, dataId: ShardId, txnsId: ShardId): Promise<void> {
  return claimAs(store, dataId, txnsId, true);
}

/**
 * Releases `txnsId`'s claim on `dataId` unless `stillRegistered()` (which must read
 * the txns shard afresh) says the shard is registered again. A claim that is not
 * ours is left alone.
 */
export async function release(
  store: ClaimStore,
  dataId: ShardId,
  txnsId: ShardId,
  stillRegistered: () => Promise<boolean>,
): Promise<void> {
  for (;;) {
    const head = await readHead(store, dataId);
    if (ownerOf(head) !== txnsId) return;
    if (await stillRegistered()) return;
    if (await write(store, dataId, head, RELEASED)) return;
  }
}
