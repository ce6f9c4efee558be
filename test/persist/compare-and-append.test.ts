import { expect } from 'chai';
import {
  InvalidBounds,
  InvalidEmptyTimeInterval,
  InvalidTimestamp,
  UpdateBeyondUpper,
  UpdateNotBeyondLower,
  CodecMismatch,
  Codecs,
  newShardId,
  PersistClient,
} from '../../src/persist/index.js';
import { STRING_UNIT, expectReject, memClient, rows, sorted } from '../support/persist.js';

describe('persist: compare-and-append', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient();
  });
  afterEach(() => client.close());

  it('appends at the expected upper and moves the upper to the new one', async () => {
    const w = await client.openWriter(newShardId(), STRING_UNIT);
    expect(w.upper()).to.equal(0);
    expect(await w.compareAndAppend(rows(0, 'a', 'b'), 0, 3)).to.deep.equal({ ok: true });
    expect(w.upper()).to.equal(3);
    expect(await w.fetchRecentUpper()).to.equal(3);
  });

  it('on a mismatch writes nothing and returns the true current upper', async () => {
    const id = newShardId();
    // Two clients on one location: each has its own cached copy of shard state, as
    // two processes would.
    const name = `mem://caa-${id}`;
    const c1 = await PersistClient.open(name);
    const c2 = await PersistClient.open(name);
    try {
      const w1 = await c1.openWriter(id, STRING_UNIT);
      const w2 = await c2.openWriter(id, STRING_UNIT);
      expect(await w1.compareAndAppend(rows(0, 'a'), 0, 5)).to.deep.equal({ ok: true });
      // w2's cached upper is stale (0): its write must fail and report 5.
      expect(await w2.compareAndAppend(rows(1, 'lost'), 0, 2)).to.deep.equal({ ok: false, current: 5 });
      expect(w2.upper()).to.equal(5);
      const r = await c2.openLeasedReader(id, STRING_UNIT);
      expect(await r.snapshotAndFetch(4)).to.deep.equal([['a', null, 4, 1]]);
      // Expected above the current upper is also a mismatch.
      expect(await w2.compareAndAppend(rows(7, 'x'), 7, 8)).to.deep.equal({ ok: false, current: 5 });
    } finally {
      await c1.close();
      await c2.close();
    }
  });

  it('rejects data in an empty interval [u, u) but accepts it without data', async () => {
    const w = await client.openWriter(newShardId(), STRING_UNIT);
    await w.compareAndAppend([], 0, 2);
    await expectReject(w.compareAndAppend(rows(2, 'a'), 2, 2), InvalidEmptyTimeInterval, /newUpper > 2/);
    expect(await w.compareAndAppend([], 2, 2)).to.deep.equal({ ok: true });
    expect(await w.fetchRecentUpper()).to.equal(2);
    // At a stale upper even an empty interval is a mismatch.
    expect(await w.compareAndAppend([], 1, 1)).to.deep.equal({ ok: false, current: 2 });
  });

  it('rejects newUpper < expectedUpper', async () => {
    const w = await client.openWriter(newShardId(), STRING_UNIT);
    await expectReject(w.compareAndAppend([], 3, 2), InvalidBounds, /only move the upper forward/);
  });

  it('rejects updates outside [expectedUpper, newUpper) and writes nothing', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend([], 0, 5);
    await expectReject(w.compareAndAppend(rows(4, 'early'), 5, 7), UpdateNotBeyondLower, /time 4 is below 5.*write it at a time >= 5/);
    await expectReject(w.compareAndAppend(rows(7, 'late'), 5, 7), UpdateBeyondUpper, /upper > 7/);
    expect(await w.fetchRecentUpper()).to.equal(5);
  });

  it('rejects bad timestamps and diffs with a message naming the value', async () => {
    const w = await client.openWriter(newShardId(), STRING_UNIT);
    await expectReject(w.compareAndAppend([['a', null, -1, 1]], 0, 1), InvalidTimestamp, /got -1/);
    await expectReject(w.compareAndAppend([['a', null, 0.5, 1]], 0, 1), InvalidTimestamp, /got 0.5/);
    await expectReject(w.compareAndAppend([['a', null, 0, 1.5]], 0, 1), InvalidTimestamp, /diff/);
    await expectReject(w.compareAndAppend([], 0, Number.NaN), InvalidTimestamp, /newUpper/);
  });

  it('appending up to Infinity closes the shard for good', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    expect(await w.compareAndAppend(rows(0, 'last'), 0, Infinity)).to.deep.equal({ ok: true });
    expect(await w.fetchRecentUpper()).to.equal(Infinity);
    expect(await w.compareAndAppend(rows(9, 'x'), 9, 10)).to.deep.equal({ ok: false, current: Infinity });
    const r = await client.openLeasedReader(id, STRING_UNIT);
    expect(await r.snapshotAndFetch(1_000_000)).to.deep.equal([['last', null, 1_000_000, 1]]);
  });

  it('refuses to open a shard with other codecs', async () => {
    const id = newShardId();
    await client.openWriter(id, STRING_UNIT);
    await expectReject(client.openWriter(id, { key: Codecs.json(), val: Codecs.unit }), CodecMismatch, /key: string/);
  });

  it('append (non-linearized) trims what is covered and no-ops when covered', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(0, 'a', 'b'), 0, 2);
    // A replica writes [0, 4) with the same first rows: only [2, 4) is new.
    expect(await w.append([...rows(0, 'a', 'b'), ...rows(3, 'c')], 0, 4)).to.deep.equal({ ok: true });
    expect(await w.append(rows(1, 'b'), 0, 3)).to.deep.equal({ ok: true });
    expect(await w.append(rows(9, 'gap'), 6, 10)).to.deep.equal({ ok: false, current: 4 });
    const r = await client.openLeasedReader(id, STRING_UNIT);
    expect(sorted(await r.snapshotAndFetch(3))).to.deep.equal(sorted(rows(3, 'a', 'b', 'c')));
  });

  it('advanceUpper appends empty batches; waitForUpperPast resolves once the upper passes', async () => {
    const w = await client.openWriter(newShardId(), STRING_UNIT);
    const waiting = w.waitForUpperPast(6);
    let resolved = false;
    void waiting.then(() => (resolved = true));
    await w.advanceUpper(5);
    await new Promise((r) => setTimeout(r, 5));
    expect(resolved).to.equal(false);
    await w.advanceUpper(7);
    await waiting;
    expect(w.upper()).to.equal(7);
    const ac = new AbortController();
    const aborted = w.waitForUpperPast(100, { signal: ac.signal });
    ac.abort();
    await expectReject(aborted, Error, /abort/i);
  });

  it('an empty append is metadata only: it never adds a batch', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(0, 'a'), 0, 1);
    for (let t = 1; t < 50; t++) await w.compareAndAppend([], t, t + 1);
    await client.flushMaintenance();
    const spine = client.shardMachine(id).state.spine;
    expect(spine.length).to.equal(1);
    expect(spine[0]!.batch.upper).to.equal(50);
  });
});
