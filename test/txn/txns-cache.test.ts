/**
 * TxnsCache takes its own handle's writes as written: after a commit lands, the
 * committing handle's cache is at the commit's progress without reading the txns
 * part back, while writes of other handles are still read from the shard, each row
 * exactly once, whichever order the two kinds arrive in.
 */
import { expect } from 'chai';
import { PersistClient, newShardId, type PersistConfig } from '../../src/persist/index.js';
import { FlakyLocation, flakyClient } from '../support/flaky-location.js';
import { CommitLog, expectCommitAt, expectRegister, openTxns, reader, writer } from '../support/txn.js';

const CONFIG: Partial<PersistConfig> = {
  // Txns rows go to Blob, so reading one back is a Blob get we can see (and break).
  inlineWritesSingleMaxBytes: 0,
  listenPoll: { initialMs: 1, multiplier: 2, clampMs: 10 },
};

describe('txn: TxnsCache and its own handle’s writes', () => {
  let flaky: FlakyLocation;
  let client: PersistClient;
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ flaky, client, close } = await flakyClient(CONFIG));
  });
  afterEach(() => close());

  it('after its own commit, the cache is at the commit’s progress without reading the txns part back', async () => {
    const txnsId = newShardId();
    const txns = await openTxns(client, txnsId);
    const d0 = await expectRegister(txns, 1);
    const txn = txns.begin();
    await txn.write(d0, 'a', null, 1);
    // Every Blob get of the txns shard's parts fails from here on: reading back would throw.
    flaky.arm('get', { mode: 'before', count: 1_000, when: (key: string) => key.startsWith(`${txnsId}/`) });
    const res = await txn.commitAt(txns, 2);
    expect(res.ok).to.equal(true);
    expect(txns.cache.progressExclusive).to.equal(3);
    expect(txns.cache.unapplied().map((u) => [u.kind, u.dataId, u.ts])).to.deep.equal([['batch', d0, 2]]);
    if (!res.ok) return;
    const tidy = await res.apply.apply(txns);
    flaky.disarm();
    expect(txns.cache.validate()).to.equal(undefined);
    // The tidy goes in with the next write, again straight into the cache.
    expect((await txns.tidyAt(3, tidy)).ok).to.equal(true);
    expect(txns.cache.progressExclusive).to.equal(4);
    expect(txns.cache.unapplied()).to.deep.equal([]);
    const r = await reader(client, d0);
    expect(await r.snapshotAndFetch(2)).to.deep.equal([['a', null, 2, 1]]);
    await r.expire();
    await txns.close();
  });

  it('own and other handles’ commits interleaved: every row once, reads match the log', async () => {
    const txnsId = newShardId();
    const a = await openTxns(client, txnsId);
    const b = await openTxns(client, txnsId);
    const d0 = await expectRegister(a, 1);
    // b registers d0 too (a no-op at 2 that hands it a commit writer).
    expect((await b.register(2, [await writer(client, d0)])).ok).to.equal(true);
    const log = new CommitLog(client, txnsId);
    let ts = 3;
    for (let i = 0; i < 6; i++) {
      // a, a, b, a, b, b: a's cache must read b's commits and skip none of its own.
      const h = [a, a, b, a, b, b][i]!;
      await expectCommitAt(h, ts, d0, [`k${i}`], log);
      ts++;
    }
    for (const h of [a, b]) {
      await h.cache.updateGe(ts);
      expect(h.cache.progressExclusive).to.equal(ts);
      expect(h.cache.validate()).to.equal(undefined);
      // Nothing committed twice (pushEntries throws on that) and nothing missing:
      // every commit is an unapplied batch until tidied, in time order.
      expect(h.cache.unapplied().map((u) => u.ts)).to.deep.equal([3, 4, 5, 6, 7, 8]);
    }
    await log.assertSnapshot(d0, ts - 1);
    await a.close();
    await b.close();
  });
});
