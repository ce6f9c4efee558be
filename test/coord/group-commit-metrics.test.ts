/**
 * Group commit metrics: group sizes, commits by outcome, lock waits of both kinds,
 * the queue depth a scrape sees, timestamp retries, and where the committer's
 * metrics go by default.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { CommittedButUnconfirmed, GroupCommitFailed } from '../../src/coord/group-commit-errors.js';
import { Metrics } from '../../src/persist/metrics.js';
import { waitFor } from '../support/async.js';
import { conventionProblems, hasSample, sample, scrape } from '../support/metrics.js';
import { expectReject } from '../support/persist.js';
import { openTxns, testMetrics } from '../support/txn.js';
import { rowsOf, setup, type Env } from './group-commit-support.js';

const COMMITS = 'txnwal_group_commits_total';

describe('coord: group commit metrics', function () {
  this.timeout(30_000);
  let env: Env | undefined;
  let metrics: Metrics;
  beforeEach(() => {
    metrics = Metrics.forRegistry(new Registry());
  });
  afterEach(async () => {
    await env?.close();
    env = undefined;
  });

  it('writes submitted together are one group: one group-size observation of their count, one commit', async () => {
    env = await setup({ collections: 2, committer: { metrics } });
    const [a, b] = env.ids as [string, string];
    let fams = await scrape(metrics);
    // open() committed one empty internal group.
    expect(sample(fams, COMMITS, { outcome: 'committed' })).to.equal(1);
    expect(sample(fams, 'txnwal_group_commit_group_size_count')).to.equal(1);
    const sizesBefore = sample(fams, 'txnwal_group_commit_group_size_sum');
    const acks = await Promise.all(Array.from({ length: 20 }, (_, i) => env!.gc.submitWrite({ [i % 2 ? a : b]: rowsOf(`k${i}`) })));
    expect(new Set(acks.map((x) => x.commitTs)).size, 'one group').to.equal(1);
    fams = await scrape(metrics);
    expect(sample(fams, COMMITS, { outcome: 'committed' })).to.equal(2);
    expect(sample(fams, 'txnwal_group_commit_group_size_count')).to.equal(2);
    expect(sample(fams, 'txnwal_group_commit_group_size_sum') - sizesBefore).to.equal(20);
    // 20 lands in the (16, 32] bucket.
    const bucket = (le: string) => sample(fams, 'txnwal_group_commit_group_size_bucket', { le });
    expect(bucket('32') - bucket('16')).to.equal(1);
    expect(sample(fams, 'txnwal_group_commit_duration_seconds_count')).to.equal(2);
    expect(hasSample(fams, 'txnwal_group_commit_queue_depth'), 'a live committer has a depth').to.equal(true);
    expect(conventionProblems(fams)).to.deep.equal([]);
    await env.close();
    env = undefined;
    expect(hasSample(await scrape(metrics), 'txnwal_group_commit_queue_depth'), 'a closed one has none').to.equal(false);
  });

  it('counts lock waits of both kinds, and a scrape sees the deferred write in the queue depth', async () => {
    env = await setup({ collections: 1, committer: { metrics } });
    const [a] = env.ids as [string];
    // A read-then-write takes a's lock and holds it until `release`.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const holding = new Promise<void>((r) => (locked = r));
    const holder = env.gc.readThenWrite([a], async () => {
      locked();
      await gate;
      return { [a]: rowsOf('holder') };
    });
    await holding;
    let fams = await scrape(metrics);
    expect(sample(fams, 'txnwal_group_commit_lock_waits_total', { kind: 'read_then_write' }), 'the holder found the lock free').to.equal(0);
    expect(sample(fams, 'txnwal_group_commit_queue_depth')).to.equal(0);

    const blind = env.gc.submitWrite({ [a]: rowsOf('blind') });
    await waitFor(() => env!.gc.stats.deferrals >= 1);
    const queued = env.gc.readThenWrite([a], async () => ({ [a]: rowsOf('queued') }));
    fams = await scrape(metrics);
    expect(sample(fams, 'txnwal_group_commit_queue_depth'), 'the deferred blind write').to.equal(1);
    expect(sample(fams, 'txnwal_group_commit_lock_waits_total', { kind: 'deferred' }), 'counted when its wait ends').to.equal(0);

    release();
    await Promise.all([holder, blind, queued]);
    fams = await scrape(metrics);
    const deferred = sample(fams, 'txnwal_group_commit_lock_waits_total', { kind: 'deferred' });
    expect(deferred).to.equal(env.gc.stats.deferrals);
    expect(deferred).to.be.at.least(1);
    expect(sample(fams, 'txnwal_group_commit_lock_wait_seconds_count', { kind: 'deferred' })).to.equal(deferred);
    expect(sample(fams, 'txnwal_group_commit_lock_waits_total', { kind: 'read_then_write' })).to.equal(1);
    expect(sample(fams, 'txnwal_group_commit_lock_wait_seconds_count', { kind: 'read_then_write' })).to.equal(1);
    expect(sample(fams, 'txnwal_group_commit_lock_wait_seconds_sum', { kind: 'read_then_write' })).to.be.greaterThan(0);
    expect(sample(fams, 'txnwal_group_commit_queue_depth')).to.equal(0);
  });

  it('counts commits by outcome: failed (did not land), unconfirmed (the apply failed), committed', async () => {
    env = await setup({ collections: 1, committer: { metrics } });
    const [a] = env.ids as [string];
    env.consensus.refused.add(env.txns.txnsId);
    await expectReject(env.gc.submitWrite({ [a]: rowsOf('lost') }), GroupCommitFailed);
    env.consensus.refused.delete(env.txns.txnsId);
    env.consensus.refused.add(a); // the data shard refuses: the commit lands, its apply fails
    await expectReject(env.gc.submitWrite({ [a]: rowsOf('durable') }), CommittedButUnconfirmed);
    env.consensus.refused.delete(a);
    await env.gc.submitWrite({ [a]: rowsOf('fine') });
    const fams = await scrape(metrics);
    expect(sample(fams, COMMITS, { outcome: 'failed' })).to.equal(1);
    expect(sample(fams, COMMITS, { outcome: 'unconfirmed' })).to.equal(1);
    expect(sample(fams, COMMITS, { outcome: 'committed' })).to.equal(2); // open()'s empty group and 'fine'
    expect(sample(fams, 'txnwal_group_commit_duration_seconds_count')).to.equal(4);
  });

  it('counts a timestamp another writer took as a retry', async () => {
    env = await setup({ collections: 1, committer: { metrics } });
    const [a] = env.ids as [string];
    const other = await openTxns(env.client, env.txns.txnsId);
    expect((await other.begin().commitAt(other, (await env.oracle.peekWriteTs()) + 1000)).ok).to.equal(true);
    await env.gc.submitWrite({ [a]: rowsOf('after the race') });
    const fams = await scrape(metrics);
    expect(sample(fams, 'txnwal_group_commit_timestamp_retries_total')).to.equal(env.gc.stats.lostRaces);
    expect(env.gc.stats.lostRaces).to.be.at.least(1);
    await other.close();
  });

  it("defaults to the TxnsHandle's metrics", async () => {
    env = await setup({ collections: 1 }); // no metrics option: the txns handle's (testMetrics)
    const [a] = env.ids as [string];
    await env.gc.submitWrite({ [a]: rowsOf('x') });
    expect(env.txns.metrics.metrics).to.equal(testMetrics);
    const fams = await scrape(testMetrics);
    expect(sample(fams, COMMITS, { outcome: 'committed' })).to.be.at.least(2);
    expect(hasSample(fams, 'txnwal_group_commit_queue_depth')).to.equal(true);
  });
});
