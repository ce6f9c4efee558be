/**
 * txn-wal semantics beyond the seed tests (spec §6 checklist, items 5–9): timestamps
 * are consumed, uppers are physical and lazy, reads block until applied, tidy
 * bookkeeping, compaction never passes unapplied work, retries re-timestamp
 * without re-uploading, large transactions spill, and misuse leaves stores intact.
 */
import { expect } from 'chai';
import { PersistClient } from '../../src/persist/client.js';
import { InvalidUsage } from '../../src/persist/errors.js';
import { Opaque } from '../../src/persist/opaque.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { Fenced, NotRegistered, NotRegisteredWithHandle } from '../../src/txn/errors.js';
import { TxnsCache } from '../../src/txn/txns-cache.js';
import { TxnsCodecDefault } from '../../src/txn/txns-codec.js';
import { expectReject, memClient } from '../support/persist.js';
import { CommitLog, expectCommitAt, expectRegister, openTxns, reader, writer } from '../support/txn.js';

describe('txn semantics', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient();
  });
  afterEach(async () => {
    await client.close();
  });

  async function blobKeyCount(): Promise<number> {
    let n = 0;
    await client.location.blob.listKeysAndMetadata('', () => n++);
    return n;
  }

  async function txnsUpper(txnsId: string): Promise<number> {
    const w = await client.openWriter(txnsId, TxnsCodecDefault.codecs);
    try {
      return await w.fetchRecentUpper();
    } finally {
      await w.expire();
    }
  }

  it('register, forget and commit consume their timestamp even when they write nothing', async () => {
    const txns = await openTxns(client);
    expect(await txnsUpper(txns.txnsId)).to.equal(1);
    const d0 = await expectRegister(txns, 3);
    expect(await txnsUpper(txns.txnsId)).to.equal(4);
    // Idempotent re-register: nothing written, ts consumed.
    expect((await txns.register(5, [await writer(client, d0)])).ok).to.equal(true);
    expect(await txnsUpper(txns.txnsId)).to.equal(6);
    expect((await txns.begin().commitAt(txns, 7)).ok).to.equal(true);
    expect(await txnsUpper(txns.txnsId)).to.equal(8);
    expect((await txns.forget(9, [newShardId()])).ok).to.equal(true);
    expect(await txnsUpper(txns.txnsId)).to.equal(10);
    expect(await txns.begin().commitAt(txns, 9)).to.deep.equal({ ok: false, current: 10 });
    expect(await txns.forget(2, [d0])).to.deep.equal({ ok: false, current: 10 });
    expect(await txns.forgetAll(5)).to.deep.equal({ ok: false, current: 10 });
  });

  it('a real registration fills the data upper to R+1; an idempotent one fills nothing', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 4);
    const w = await writer(client, d0);
    expect(await w.fetchRecentUpper()).to.equal(5);
    expect((await txns.register(8, [await writer(client, d0)])).ok).to.equal(true);
    expect(await w.fetchRecentUpper()).to.equal(5);
  });

  it('a read at a commit time waits until someone applies it; a read below it does not (emptyTo)', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    for (const ts of [3, 5]) {
      const txn = txns.begin();
      await txn.write(d0, `k${ts}`, null, 1);
      expect((await txn.commitAt(txns, ts)).ok).to.equal(true);
      log.record([d0, `k${ts}`, ts, 1]);
    }
    await txns.applyLe(3);
    // At 4: the write at 5 is not needed, so nothing waits; fills [4, 5).
    await log.assertSnapshot(d0, 4);
    // At 5: blocked until the apply of 5.
    const cache = await TxnsCache.open(client, txns.txnsId, { onlyDataId: d0 });
    await cache.updateGt(5);
    const snap = cache.dataSnapshot(d0, 5);
    expect(snap.latestWrite).to.equal(5);
    const r = await reader(client, d0);
    let done = false;
    const read = snap.snapshotAndFetch(r).then((rows) => {
      done = true;
      return rows;
    });
    await new Promise((res) => setTimeout(res, 50));
    expect(done, 'the read waited for the apply').to.equal(false);
    await txns.applyLe(5);
    expect((await read).map(([k, , t, d]) => [k, t, d])).to.deep.equal([
      ['k3', 5, 1],
      ['k5', 5, 1],
    ]);
    await r.expire();
    await cache.expire();
  });

  it('tidy: minUnappliedTs moves only when the tidy is committed; late and duplicate tidies are filtered', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    const cache = txns.readCache();
    const tidy = await expectCommitAt(txns, 2, d0, ['a'], log);
    expect(tidy.size).to.equal(1);
    await cache.updateGe(3);
    expect(cache.minUnappliedTs()).to.equal(2);
    expect((await txns.tidyAt(3, tidy)).ok).to.equal(true);
    await cache.updateGe(4);
    expect(cache.minUnappliedTs()).to.equal(4);
    // The same tidy again: filtered out (nothing retracted twice), the ts is still consumed.
    expect((await txns.tidyAt(4, tidy)).ok).to.equal(true);
    expect(await txnsUpper(txns.txnsId)).to.equal(5);
    expect(cache.validate()).to.equal(undefined);
    // A fresh cache replaying from 0 validates cleanly and agrees.
    const fresh = await TxnsCache.open(client, txns.txnsId);
    await fresh.updateGe(5);
    expect(fresh.validate()).to.equal(undefined);
    expect(fresh.state.unappliedBatches.size, 'no batch pointer is left untidied').to.equal(0);
    // A fresh cache cannot know the registration at 1 was applied; only applyLe tells it.
    expect(fresh.minUnappliedTs()).to.equal(1);
    fresh.markRegisterApplied(4);
    expect(fresh.minUnappliedTs()).to.equal(5);
    await fresh.expire();
    await log.assertSnapshot(d0, 4);
  });

  it('compactTo never moves the txns since past unapplied work', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const txn = txns.begin();
    await txn.write(d0, 'x', null, 1);
    const res = await txn.commitAt(txns, 3);
    if (!res.ok) throw new Error('commit should succeed');
    const tidy = await res.apply.apply(txns);
    await txns.begin().commitAt(txns, 6);
    await txns.compactTo(6);
    const since = await client.openCriticalSince(txns.txnsId, TxnsCodecDefault.codecs);
    expect(since.since()).to.equal(3);
    expect((await txns.tidyAt(7, tidy)).ok).to.equal(true);
    await txns.compactTo(7);
    const since2 = await client.openCriticalSince(txns.txnsId, TxnsCodecDefault.codecs);
    expect(since2.since()).to.equal(7);
  });

  it('a handle whose since opaque was replaced by another process is fenced', async () => {
    const txns = await openTxns(client);
    await txns.begin().commitAt(txns, 3);
    const since = await client.openCriticalSince(txns.txnsId, TxnsCodecDefault.codecs);
    const res = await since.compareAndDowngradeSince(Opaque.u64(0), [Opaque.u64(7), 1]);
    expect(res.ok).to.equal(true);
    await expectReject(txns.compactTo(3), Fenced, /fenced/);
    // Still fenced on a second try (the handle keeps the opaque it adopted).
    await expectReject(txns.compactTo(3), Fenced, /fenced/);
    // A new handle adopts the new opaque and may compact.
    const txns2 = await openTxns(client, txns.txnsId);
    await txns2.compactTo(3);
  });

  it('a taken commit time is retried at a later one without uploading the data again', async () => {
    // The competing handle uses its own client, so this handle's cached upper goes stale
    // and the commit finds out only at its compare-and-append, after building batches.
    const url = `mem://retry-${newShardId()}`;
    const mine = await PersistClient.open(url);
    const theirs = await PersistClient.open(url);
    const txns = await openTxns(mine);
    const other = await openTxns(theirs, txns.txnsId);
    const log = new CommitLog(mine, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    const txn = txns.begin();
    for (let i = 0; i < 100; i++) await txn.write(d0, `row-${i}-${'x'.repeat(100)}`, null, 1);
    // Someone else takes times up to 5.
    expect((await other.begin().commitAt(other, 5)).ok).to.equal(true);
    const blob = mine.location.blob;
    // Spies on uploads from here on.
    let uploads = 0;
    const set = blob.set.bind(blob);
    blob.set = async (k, v) => {
      uploads++;
      return set(k, v);
    };
    let res = await txn.commitAt(txns, 3);
    expect(res).to.deep.equal({ ok: false, current: 6 });
    const uploadsAfterFirst = uploads;
    res = await txn.commitAt(txns, 6);
    if (!res.ok) throw new Error('commit at 6 should succeed');
    expect(uploads, 'the retry uploaded nothing').to.equal(uploadsAfterFirst);
    blob.set = set;
    for (let i = 0; i < 100; i++) log.record([d0, `row-${i}-${'x'.repeat(100)}`, 6, 1]);
    await res.apply.apply(txns);
    expect(uploadsAfterFirst, 'the first attempt uploaded the data').to.be.greaterThan(0);
    await log.assertSnapshot(d0, 6);
    await mine.close();
    await theirs.close();
  });

  it('a large transaction spills to Blob past the threshold and commits every row once', async () => {
    const txns = await openTxns(client, newShardId(), { spillThresholdBytes: 64 * 1024 });
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    const d1 = await expectRegister(txns, 2);
    const txn = txns.begin();
    const before = await blobKeyCount();
    for (let i = 0; i < 3000; i++) {
      const id = i % 2 === 0 ? d0 : d1;
      const key = `k${i}-${'v'.repeat(60)}`;
      await txn.write(id, key, null, 1);
      log.record([id, key, 10, 1]);
    }
    expect(await blobKeyCount(), 'writes were uploaded before commit').to.be.greaterThan(before);
    const res = await txn.commitAt(txns, 10);
    if (!res.ok) throw new Error('commit should succeed');
    await res.apply.apply(txns);
    await log.assertSnapshot(d0, 10);
    await log.assertSnapshot(d1, 10);
  });

  it('writeBatch stages a pre-built batch, re-timestamped to the commit time; merge combines transactions', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    const d1 = await expectRegister(txns, 2);
    const holdSince = await reader(client, d0);
    // Built elsewhere (e.g. another process) at any time in [0, 1), sent as bytes.
    const w = await writer(client, d0);
    const built = await w.batch([['pre-built', null, 0, 1]], 0, 1);
    const a = txns.begin();
    a.writeBatch(d0, built.intoTransmittable());
    const b = txns.begin();
    await b.write(d1, 'merged', null, 1);
    a.merge(b);
    expect(b.isEmpty).to.equal(true);
    const res = await a.commitAt(txns, 7);
    if (!res.ok) throw new Error('commit should succeed');
    log.record([d0, 'pre-built', 7, 1]);
    log.record([d1, 'merged', 7, 1]);
    await res.apply.apply(txns);
    await log.assertSnapshot(d0, 7);
    await log.assertSnapshot(d1, 7);
    // Read from before the commit: the row is at 7, not at the time it was built at.
    await log.assertSubscribe(d0, 2, 8);
    await holdSince.expire();
  });

  it('discarding an uncommitted transaction deletes what it spilled', async () => {
    const txns = await openTxns(client, newShardId(), { spillThresholdBytes: 16 * 1024 });
    const d0 = await expectRegister(txns, 1);
    const before = await blobKeyCount();
    const txn = txns.begin();
    for (let i = 0; i < 2000; i++) await txn.write(d0, `k${i}-${'v'.repeat(40)}`, null, 1);
    expect(await blobKeyCount()).to.be.greaterThan(before);
    await txn.discard();
    expect(await blobKeyCount()).to.equal(before);
  });

  it('committing to an unregistered shard throws NotRegistered and writes nothing', async () => {
    const txns = await openTxns(client);
    const log = new CommitLog(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    const stranger = newShardId();
    const txn = txns.begin();
    await txn.write(d0, 'ok', null, 1);
    await txn.write(stranger, 'nope', null, 1);
    await expectReject(txn.commitAt(txns, 2), NotRegistered, /not registered.*register it first/);
    expect(await txnsUpper(txns.txnsId)).to.equal(2);
    // The timestamp is still free and the stores intact: a correct txn commits at 2.
    await expectCommitAt(txns, 2, d0, ['later'], log);
    await log.assertSnapshot(d0, 2);
    const cache = txns.readCache();
    expect(cache.validate()).to.equal(undefined);
  });

  it('committing through a handle that did not register the shard throws NotRegisteredWithHandle', async () => {
    const txns = await openTxns(client);
    const other = await openTxns(client, txns.txnsId);
    const d0 = await expectRegister(txns, 1);
    const txn = other.begin();
    await txn.write(d0, 'x', null, 1);
    await expectReject(txn.commitAt(other, 2), NotRegisteredWithHandle, /not through this TxnsHandle/);
    expect(await txnsUpper(txns.txnsId)).to.equal(2);
    // Registering through the second handle too (a no-op write) lets it commit.
    expect((await other.register(2, [await writer(client, d0)])).ok).to.equal(true);
    const res = await txn.commitAt(other, 3);
    expect(res.ok).to.equal(true);
  });

  it('a committed Txn refuses further use', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const txn = txns.begin();
    await txn.write(d0, 'x', null, 1);
    expect((await txn.commitAt(txns, 2)).ok).to.equal(true);
    await expectReject(txn.write(d0, 'y', null, 1), Error, /already committed at 2/);
  });

  it('bad input is refused with the fix named', async () => {
    const txns = await openTxns(client);
    const d0 = await expectRegister(txns, 1);
    const txn = txns.begin();
    await expectReject(txn.write('not-a-shard', 'x', null, 1), Error, /newShardId/);
    await expectReject(txn.write(d0, 'x', null, 1.5), Error, /diff/);
    await expectReject(txn.write(d0, 42 as unknown as string, null, 1), InvalidUsage, /Codecs.string: a value must be a string, got 42/);
    expect(() => txns.register(-1, [])).to.throw(/registerTs/);
  });
});
