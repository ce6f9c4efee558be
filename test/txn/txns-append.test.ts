/**
 * appendAtTs, the compare-and-append-at-ts loop register, forget, forgetAll and
 * commit share: a taken time is a value, a mismatch is retried with the upper it
 * reported (after the operation undid its attempt), a throw reaches the operation
 * before it propagates, and a mismatch that does not move the upper is refused.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { PersistClient } from '../../src/persist/client.js';
import { InvariantViolation } from '../../src/persist/errors.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import { Metrics } from '../../src/persist/metrics.js';
import { TxnMetrics } from '../../src/txn/metrics.js';
import { appendAtTs, type TxnsAppender } from '../../src/txn/txns-append.js';
import { TxnsCache } from '../../src/txn/txns-cache.js';
import { TxnsCodecDefault, registerEntry } from '../../src/txn/txns-codec.js';
import { expectReject, memClient } from '../support/persist.js';

describe('txn: appendAtTs (the txns compare-and-append at one timestamp)', () => {
  let client: PersistClient;
  let txnsId: ShardId;
  let txns: TxnsAppender;
  let metrics: TxnMetrics;
  beforeEach(async () => {
    client = await memClient();
    txnsId = newShardId();
    const txnsWrite = await client.openWriter(txnsId, TxnsCodecDefault.codecs);
    const reader = await client.openLeasedReader(txnsId, TxnsCodecDefault.codecs);
    const cache = await TxnsCache.init(0, reader, txnsWrite, TxnsCodecDefault);
    txns = { txnsWrite, txnsCodec: TxnsCodecDefault, cache, log: client.cfg.logger };
    metrics = TxnMetrics.of(Metrics.forRegistry(new Registry()));
  });
  afterEach(() => client.close());

  const retries = async () =>
    (await metrics.metrics.registry.getSingleMetric('txnwal_txn_ops_retried_total')!.get()).values.reduce((n, v) => n + v.value, 0);

  it('writes the entries at ts and moves the txns upper to ts + 1', async () => {
    const d0 = newShardId();
    const res = await appendAtTs(txns, 3, metrics.register, async (upper) => {
      expect(upper).to.equal(1);
      return { name: 'test register', entries: [[registerEntry(d0, 3), 1]], landed: 'done' };
    });
    expect(res).to.deep.equal({ ok: true, landed: 'done' });
    expect(await txns.txnsWrite.fetchRecentUpper()).to.equal(4);
    await txns.cache.updateGe(4);
    expect(txns.cache.registeredAtProgress(d0, 4)).to.equal(true);
  });

  it('consumes ts even with no entries', async () => {
    const res = await appendAtTs(txns, 2, metrics.forget, async () => ({ name: 'test empty', entries: [], landed: 1 }));
    expect(res.ok).to.equal(true);
    expect(await txns.txnsWrite.fetchRecentUpper()).to.equal(3);
  });

  it('returns the least free time for a taken ts, without preparing', async () => {
    expect((await appendAtTs(txns, 4, metrics.register, async () => ({ name: 't', entries: [], landed: 0 }))).ok).to.equal(true);
    let prepared = 0;
    const res = await appendAtTs(txns, 2, metrics.register, async () => ({ name: 't', entries: [], landed: prepared++ }));
    expect(res).to.deep.equal({ ok: false, current: 5 });
    expect(prepared).to.equal(0);
  });

  it('on a mismatch undoes the attempt, counts a retry and prepares again at the reported upper', async () => {
    const other = await client.openWriter(txnsId, TxnsCodecDefault.codecs);
    const uppers: number[] = [];
    let undone = 0;
    const before = await retries();
    const res = await appendAtTs(txns, 6, metrics.commit, async (upper) => {
      uppers.push(upper);
      // Another handle writes first, once.
      if (uppers.length === 1) expect((await other.compareAndAppend([], upper, upper + 2)).ok).to.equal(true);
      return { name: 'test commit', entries: [], landed: uppers.length, onMismatch: () => undone++ };
    });
    expect(res).to.deep.equal({ ok: true, landed: 2 });
    expect(uppers).to.deep.equal([1, 3]);
    expect(undone).to.equal(1);
    expect((await retries()) - before).to.equal(1);
    expect(await txns.txnsWrite.fetchRecentUpper()).to.equal(7);
  });

  it('a mismatch past ts returns the least free time', async () => {
    const other = await client.openWriter(txnsId, TxnsCodecDefault.codecs);
    const res = await appendAtTs(txns, 2, metrics.commit, async (upper) => {
      if (upper === 1) expect((await other.compareAndAppend([], 1, 9)).ok).to.equal(true);
      return { name: 'test commit', entries: [], landed: 0 };
    });
    expect(res).to.deep.equal({ ok: false, current: 9 });
  });

  it('with expectUpper, a mismatch returns the new upper instead of retrying (the caller validates again)', async () => {
    const other = await client.openWriter(txnsId, TxnsCodecDefault.codecs);
    let undone = 0;
    const uppers: number[] = [];
    const res = await appendAtTs(
      txns,
      6,
      metrics.commit,
      async (upper) => {
        uppers.push(upper);
        expect((await other.compareAndAppend([], upper, upper + 2)).ok).to.equal(true);
        return { name: 'test commit', entries: [], landed: 0, onMismatch: () => undone++ };
      },
      1,
    );
    expect(res).to.deep.equal({ ok: false, current: 3 });
    expect(uppers, 'prepared once, not again at 3').to.deep.equal([1]);
    expect(undone).to.equal(1);
    expect(await txns.txnsWrite.fetchRecentUpper(), 'nothing of ours landed').to.equal(3);
  });

  it('with expectUpper, an upper already past it returns at once; one exactly at it writes [expectUpper, ts + 1)', async () => {
    const other = await client.openWriter(txnsId, TxnsCodecDefault.codecs);
    expect((await other.compareAndAppend([], 1, 4)).ok).to.equal(true);
    let prepared = 0;
    const attempt = async () => ({ name: 't', entries: [], landed: prepared++ });
    expect(await appendAtTs(txns, 8, metrics.commit, attempt, 2)).to.deep.equal({ ok: false, current: 4 });
    expect(prepared).to.equal(0);
    expect(await appendAtTs(txns, 8, metrics.commit, attempt, 4)).to.deep.equal({ ok: true, landed: 0 });
    expect(await txns.txnsWrite.fetchRecentUpper()).to.equal(9);
  });

  it('hands a thrown append to the attempt, then rethrows it', async () => {
    const boom = new Error('boom');
    const failing: TxnsAppender = {
      ...txns,
      txnsWrite: Object.assign(Object.create(txns.txnsWrite), {
        compareAndAppend: async () => {
          throw boom;
        },
      }),
    };
    const seen: unknown[] = [];
    const err = await appendAtTs(failing, 2, metrics.commit, async () => ({
      name: 'test commit',
      entries: [],
      landed: 0,
      onThrow: (e) => seen.push(e),
    })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.equal(boom);
    expect(seen).to.deep.equal([boom]);
  });

  it('refuses a mismatch that does not move the upper past the expected one', async () => {
    const stuck: TxnsAppender = {
      ...txns,
      txnsWrite: Object.assign(Object.create(txns.txnsWrite), {
        compareAndAppend: async (_u: unknown, upper: number) => ({ ok: false, current: upper }),
      }),
    };
    await expectReject(
      appendAtTs(stuck, 2, metrics.commit, async () => ({ name: 'test commit', entries: [], landed: 0 })),
      InvariantViolation,
      /test commit mismatch reported upper 1, not past the expected 1/,
    );
  });
});
