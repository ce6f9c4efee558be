/**
 * Txn commits under storage faults: a commit whose txns compare-and-append landed
 * but whose reply was lost (and whose re-reads then failed) says it may have
 * happened, keeps the batches it references even when discarded, refuses to be
 * committed twice, and is applied exactly once when storage recovers. And a txns
 * shard that broke makes applyLe reject rather than hang.
 */
import { expect } from 'chai';
import { ClientClosed, InvalidUsage, PersistClient, PersistStorageError, newShardId, type PersistConfig } from '../../src/persist/index.js';
import { firstValueFrom, toArray } from 'rxjs';
import { dataSubscribe$ } from '../../src/operators/data-subscribe.js';
import { FlakyLocation, flakyClient } from '../support/flaky-location.js';
import { STRING_UNIT, expectReject } from '../support/persist.js';
import { expectRegister, openTxns, reader } from '../support/txn.js';

const CONFIG: Partial<PersistConfig> = {
  storageRetry: { attempts: 3, initialMs: 1, multiplier: 1, clampMs: 1 },
  listenPoll: { initialMs: 1, multiplier: 2, clampMs: 10 },
  // Batches go to Blob, so a wrongly deleted batch is noticed when it is read.
  inlineWritesSingleMaxBytes: 0,
};

describe('txn: commits under storage faults', () => {
  let flaky: FlakyLocation;
  let client: PersistClient;
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ flaky, client, close } = await flakyClient(CONFIG));
  });
  afterEach(() => close());

  it('a commit whose txns write landed but whose reply was lost says it may have happened, and is applied exactly once', async () => {
    const txnsId = newShardId();
    const txns = await openTxns(client, txnsId);
    const d0 = await expectRegister(txns, 1);
    const txn = txns.begin();
    await txn.write(d0, 'a', null, 1);
    flaky.arm('compareAndSet', {
      mode: 'after',
      when: (key: string) => key === txnsId,
      onFault: () => flaky.arm('scan', { mode: 'before', count: 1_000, when: (key: string) => key === txnsId }),
    });
    const err = (await expectReject(txn.commitAt(txns, 2), PersistStorageError)) as PersistStorageError;
    expect(err.mayHaveHappened, err.message).to.equal(true);
    // Giving up on it must not delete what the landed commit points at, and it may
    // not be committed a second time.
    await txn.discard();
    await expectReject(Promise.resolve().then(() => txn.commitAt(txns, 3)), InvalidUsage, /may have happened/);

    flaky.disarm();
    await txns.applyLe(2);
    const r = await reader(client, d0);
    expect(await r.snapshotAndFetch(2)).to.deep.equal([['a', null, 2, 1]]);
    await r.expire();
    await txns.close();
  });

  it('applyLe on a txns shard whose batch part is gone rejects instead of hanging', async () => {
    const txnsId = newShardId();
    const txns = await openTxns(client, txnsId);
    const d0 = await expectRegister(txns, 1);
    // A second handle, opened before the commit: its cache must read the commit's
    // part back (the committing handle's own cache takes its rows as written).
    const other = await openTxns(client, txnsId);
    const txn = txns.begin();
    await txn.write(d0, 'a', null, 1);
    expect((await txn.commitAt(txns, 2)).ok).to.equal(true);
    // Break the txns shard: delete the parts its commits live in.
    const parts: string[] = [];
    await flaky.blob.listKeysAndMetadata(`${txnsId}/w`, (k) => parts.push(k));
    expect(parts).to.not.be.empty;
    for (const k of parts) await flaky.blob.delete(k);
    await expectReject(other.applyLe(2), Error, /missing/);
  });

  it('applyLe while the txns shard cannot be read rejects with a storage error instead of hanging', async () => {
    const txnsId = newShardId();
    const txns = await openTxns(client, txnsId);
    await expectRegister(txns, 1);
    flaky.arm('scan', { mode: 'before', count: 1_000, when: (key: string) => key === txnsId });
    await expectReject(txns.applyLe(5), PersistStorageError);
    flaky.disarm();
  });

  it('a data shard whose part is gone makes a dataSubscribe$ reader error, and a reopened handle on a broken txns shard rejects, instead of hanging', async () => {
    const txnsId = newShardId();
    const txns = await openTxns(client, txnsId);
    const d0 = await expectRegister(txns, 1);
    const txn = txns.begin();
    await txn.write(d0, 'a', null, 1);
    const res = await txn.commitAt(txns, 2);
    if (!res.ok) throw new Error('commit at 2 was refused');
    await res.apply.apply(txns);
    // Deletes a shard's batch parts (written by a writer or by compaction), not its rollups.
    const broken = async (shard: string) => {
      const keys: string[] = [];
      await flaky.blob.listKeysAndMetadata(`${shard}/`, (k) => {
        if (!k.startsWith(`${shard}/v`)) keys.push(k);
      });
      expect(keys, `parts of ${shard}`).to.not.be.empty;
      for (const k of keys) await flaky.blob.delete(k);
    };
    await broken(d0);
    const events = firstValueFrom(dataSubscribe$(client, txnsId, d0, { codecs: STRING_UNIT, asOf: 2 }).pipe(toArray()));
    await expectReject(events, Error, /missing/);

    await broken(txnsId);
    const fresh = await PersistClient.open(flaky, { config: CONFIG });
    try {
      // Opening reads nothing past the txns since yet; its first read of the log rejects.
      const reopened = await openTxns(fresh, txnsId);
      await expectReject(reopened.applyLe(2), Error, /missing/);
    } finally {
      await fresh.close();
    }
  });

  it('a commit whose batch upload failed keeps its buffered rows, so committing again writes them', async () => {
    const txns = await openTxns(client, newShardId());
    const d0 = await expectRegister(txns, 1);
    const txn = txns.begin();
    await txn.write(d0, 'kept', null, 1);
    flaky.arm('set', { mode: 'before', count: 1_000 });
    const err = (await expectReject(txn.commitAt(txns, 2), PersistStorageError)) as PersistStorageError;
    expect(err.mayHaveHappened, 'no state write was attempted').to.equal(false);
    flaky.disarm();
    const res = await txn.commitAt(txns, 2);
    if (!res.ok) throw new Error(`commit at 2 refused: upper ${res.current}`);
    await res.apply.apply(txns);
    const r = await reader(client, d0);
    expect(await r.snapshotAndFetch(2)).to.deep.equal([['kept', null, 2, 1]]);
    await r.expire();
    await txns.close();
  });

  it('a pending applyLe rejects when the client closes', async () => {
    const txns = await openTxns(client, newShardId());
    const pending = expectReject(txns.applyLe(10), ClientClosed);
    await client.close();
    await pending;
  });
});
