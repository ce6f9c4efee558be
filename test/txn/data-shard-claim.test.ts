/**
 * A data shard belongs to one txns shard (issue 10, finding 6): registering it with
 * a second txns shard is refused durably, across processes, before anything is
 * written; forget hands it back. Scenarios on shared in-memory locations, with one
 * PersistClient per simulated process.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { PersistClient } from '../../src/persist/client.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { claimKey, claimOwner } from '../../src/txn/data-shard-claim.js';
import { RegisteredWithAnotherTxnsShard } from '../../src/txn/errors.js';
import { TxnsCodecDefault } from '../../src/txn/txns-codec.js';
import { FlakyLocation } from '../support/flaky-location.js';
import { expectReject } from '../support/persist.js';
import { CommitLog, expectCommitAt, openTxns, writer } from '../support/txn.js';

const FAST = { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 20 } };

/** The txns shard's upper as stored (every consumed timestamp moves it). */
async function txnsUpper(client: PersistClient, txnsId: string): Promise<number> {
  const w = await client.openWriter(txnsId, TxnsCodecDefault.codecs);
  try {
    return await w.fetchRecentUpper();
  } finally {
    await w.expire();
  }
}

describe('txn: a data shard belongs to one txns shard', () => {
  let url: string;
  let clients: PersistClient[];
  /** A client of its own, as another process would have, on the shared location. */
  async function process(): Promise<PersistClient> {
    const c = await PersistClient.open(url, { config: FAST });
    clients.push(c);
    return c;
  }
  beforeEach(() => {
    url = `mem://claims-${randomUUID()}`;
    clients = [];
  });
  afterEach(async () => {
    for (const c of clients) await c.close();
  });

  it('registering with a second txns shard is refused before anything is written, and the first keeps its commits', async () => {
    const [p1, p2] = [await process(), await process()];
    const a = await openTxns(p1);
    const b = await openTxns(p2);
    const d = newShardId();
    expect((await a.register(1, [await writer(p1, d)])).ok).to.equal(true);
    // A commits at 5 and has not applied yet: the case that used to lose the write.
    const txn = a.begin();
    await txn.write(d, 'from-a', null, 1);
    const committed = await txn.commitAt(a, 5);
    expect(committed.ok).to.equal(true);

    const bUpper = await txnsUpper(p2, b.txnsId);
    const err = await expectReject(b.register(6, [await writer(p2, d)]), RegisteredWithAnotherTxnsShard);
    expect(err.message).to.include(d).and.include(a.txnsId).and.include(b.txnsId).and.include('forget');
    expect(await txnsUpper(p2, b.txnsId), 'B consumed no timestamp').to.equal(bUpper);

    const log = new CommitLog(p1, a.txnsId);
    log.record([d, 'from-a', 5, 1]);
    await a.applyLe(5);
    await log.assertSnapshot(d, 5);
  });

  it('two processes racing to register one shard with two txns shards: exactly one wins', async () => {
    const [p1, p2] = [await process(), await process()];
    const a = await openTxns(p1);
    const b = await openTxns(p2);
    for (let round = 0; round < 5; round++) {
      const d = newShardId();
      const ts = 10 * (round + 1);
      const results = await Promise.allSettled([
        a.register(ts, [await writer(p1, d)]),
        b.register(ts, [await writer(p2, d)]),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled' && r.value.ok);
      const refused = results.filter((r) => r.status === 'rejected' && r.reason instanceof RegisteredWithAnotherTxnsShard);
      expect([won.length, refused.length], `round ${round}: ${JSON.stringify(results)}`).to.deep.equal([1, 1]);
      const owner = await claimOwner({ consensus: p1.location.consensus, cfg: p1.cfg }, d);
      expect(owner).to.equal(results[0]!.status === 'fulfilled' ? a.txnsId : b.txnsId);
    }
  });

  it('forget releases the shard: it may join another txns shard, and coming back is refused again', async () => {
    const p1 = await process();
    const a = await openTxns(p1);
    const b = await openTxns(p1);
    const d = newShardId();
    expect((await a.register(1, [await writer(p1, d)])).ok).to.equal(true);
    // Registering again with the same txns shard stays a no-op.
    expect((await a.register(2, [await writer(p1, d)])).ok).to.equal(true);
    expect((await a.forget(3, [d])).ok).to.equal(true);
    expect((await b.register(4, [await writer(p1, d)])).ok).to.equal(true);
    const log = new CommitLog(p1, b.txnsId);
    await expectCommitAt(b, 5, d, ['from-b'], log);
    await expectReject(a.register(6, [await writer(p1, d)]), RegisteredWithAnotherTxnsShard);
    // forgetAll releases too.
    expect((await b.forgetAll(7)).ok).to.equal(true);
    expect((await a.register(8, [await writer(p1, d)])).ok).to.equal(true);
  });

  it('a claim left by a register that lost its timestamp race is released by a forget from that txns shard', async () => {
    const p1 = await process();
    const a = await openTxns(p1);
    const b = await openTxns(p1);
    const d = newShardId();
    await a.begin().commitAt(a, 5);
    // The time is taken: nothing registered, but the claim stays (the documented window).
    expect(await a.register(2, [await writer(p1, d)])).to.deep.equal({ ok: false, current: 6 });
    await expectReject(b.register(1, [await writer(p1, d)]), RegisteredWithAnotherTxnsShard, /forget/);
    // A forget of a shard A never registered still releases A's claim on it.
    expect((await a.forget(6, [d])).ok).to.equal(true);
    expect((await b.register(1, [await writer(p1, d)])).ok).to.equal(true);
  });

  it('a shard registered before claims existed gets one on its next register', async () => {
    const p1 = await process();
    const a = await openTxns(p1);
    const d = newShardId();
    expect((await a.register(1, [await writer(p1, d)])).ok).to.equal(true);
    // Simulate the old version: the shard is registered, but no claim was ever written.
    const store = { consensus: p1.location.consensus, cfg: p1.cfg };
    const head = await p1.location.consensus.head(claimKey(d));
    await p1.location.consensus.compareAndSet(claimKey(d), head!.seqno, { seqno: head!.seqno + 1, data: new Uint8Array(0) });
    expect(await claimOwner(store, d)).to.equal(undefined);
    expect((await a.register(2, [await writer(p1, d)])).ok).to.equal(true);
    expect(await claimOwner(store, d)).to.equal(a.txnsId);
  });

  it('a claim write whose reply was lost is recognised as ours on retry', async () => {
    const flaky = await FlakyLocation.mem();
    const client = await PersistClient.open(flaky, {
      config: { ...FAST, storageRetry: { attempts: 3, initialMs: 1, multiplier: 1, clampMs: 1 } },
    });
    const onClaim = (key: string) => key.startsWith('txns-claim/');
    const store = { consensus: flaky.consensus, cfg: client.cfg };
    try {
      const a = await openTxns(client);
      const d = newShardId();
      // The claim before the commit, and the touch after it, both land and lose their replies.
      flaky.arm('compareAndSet', { mode: 'after', count: 2, when: onClaim });
      expect((await a.register(1, [await writer(client, d)])).ok).to.equal(true);
      expect(flaky.fired.get('compareAndSet')).to.equal(2);
      expect(await claimOwner(store, d)).to.equal(a.txnsId);
      flaky.arm('compareAndSet', { mode: 'after', when: onClaim }); // the release
      expect((await a.forget(2, [d])).ok).to.equal(true);
      expect(flaky.fired.get('compareAndSet')).to.equal(3);
      expect(await claimOwner(store, d)).to.equal(undefined);
    } finally {
      await client.close();
    }
  });
});
