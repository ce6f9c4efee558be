/**
 * A database's metrics as an operator sees them: one registry holding every layer's
 * families by the naming conventions, counters that move with a workload, reader lag
 * per collection (held back by a commit nobody has applied yet), registries that
 * do not collide, and the global registry by default.
 */
import { expect } from 'chai';
import { Registry, register as globalRegistry } from 'prom-client';
import { Codecs, InvalidArgument, type ShardEvent } from '../../src/index.js';
import { openDatabase, type Database } from '../../src/db/index.js';
import { PersistClient } from '../../src/persist/client.js';
import { Metrics } from '../../src/persist/metrics.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { TxnsHandle } from '../../src/txn/txns-handle.js';
import { conventionProblems, hasSample, parseExposition, sample, scrape, scrapeUntil } from '../support/metrics.js';

const STRING_UNIT = { key: Codecs.string, val: Codecs.unit };
const BYTES = { key: Codecs.bytes, val: Codecs.bytes };
const QUICK = { persist: { config: { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 20 } } } };

/** Follows `events$` and resolves `past(ts)` once its progress passed ts. */
function follow(events$: import('rxjs').Observable<ShardEvent<unknown, unknown>>) {
  let upper = 0;
  const waiters: { ts: number; resolve: () => void }[] = [];
  const sub = events$.subscribe((ev) => {
    if (ev.kind !== 'progress') return;
    upper = ev.upper;
    for (const w of waiters.filter((x) => upper > x.ts)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  return {
    past: (ts: number) => (upper > ts ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ ts, resolve }))),
    get upper() {
      return upper;
    },
    stop: () => sub.unsubscribe(),
  };
}

describe('db: metrics', function () {
  this.timeout(60_000);
  const dbs: Database[] = [];
  afterEach(async () => {
    for (const db of dbs.splice(0)) await db.close();
  });
  async function open(url: string, opts: Parameters<typeof openDatabase>[1] = {}): Promise<Database> {
    const db = await openDatabase(url, { ...QUICK, ...opts });
    dbs.push(db);
    return db;
  }

  it("one registry holds every layer's families, by the conventions, and the counters move with the workload", async () => {
    const metrics = Metrics.forRegistry(new Registry());
    const db = await open('mem://', { metrics });
    expect(db.metricsRegistry).to.equal(metrics.registry);
    const accounts = await db.collection('accounts', STRING_UNIT);
    const live = follow(db.subscribe$(accounts));
    const { commitTs } = await db.write({ accounts: [['alice', null, 1]] });
    await live.past(commitTs);
    await db.transact(async (tx) => tx.set(accounts, 'bob', null));
    const first = parseExposition(await db.metrics());
    expect(conventionProblems(first)).to.deep.equal([]);
    for (const [name, type] of [
      ['txnwal_consensus_compare_and_sets_total', 'counter'],
      ['txnwal_blob_written_bytes_total', 'counter'],
      ['txnwal_storage_call_duration_seconds', 'histogram'],
      ['txnwal_persist_state_compare_and_sets_total', 'counter'],
      ['txnwal_txn_ops_started_total', 'counter'],
      ['txnwal_txn_op_duration_seconds', 'histogram'],
      ['txnwal_group_commits_total', 'counter'],
      ['txnwal_group_commit_group_size', 'histogram'],
      ['txnwal_reader_frontier_lag', 'gauge'],
      ['txnwal_reader_frontier_lag_seconds', 'gauge'],
    ] as const) {
      expect(first.get(name)?.type, name).to.equal(type);
    }
    expect(hasSample(first, 'txnwal_reader_frontier_lag', { collection: 'accounts' }), 'a live reader of accounts').to.equal(true);
    const committed = (f: typeof first) => sample(f, 'txnwal_consensus_compare_and_sets_total', { outcome: 'committed' });
    const commits = (f: typeof first) => sample(f, 'txnwal_txn_ops_succeeded_total', { op: 'commit' });
    expect(commits(first)).to.be.at.least(2);
    const { commitTs: again } = await db.write({ accounts: [['carol', null, 1]] });
    await live.past(again);
    const second = parseExposition(await db.metrics());
    expect(committed(second)).to.be.greaterThan(committed(first));
    expect(commits(second)).to.equal(commits(first) + 1);
    expect(sample(second, 'txnwal_group_commits_total', { outcome: 'committed' })).to.be.greaterThan(sample(first, 'txnwal_group_commits_total', { outcome: 'committed' }));
    live.stop();
    // The transactions' index of accounts (an arrangement) is a reader too, until the database closes.
    expect(hasSample(await scrape(metrics), 'txnwal_reader_frontier_lag', { collection: 'accounts' }), "the transactions' reader").to.equal(true);
    await db.close();
    expect(hasSample(await scrape(metrics), 'txnwal_reader_frontier_lag', { collection: 'accounts' }), 'no reader left').to.equal(false);
  });

  it('reader lag: a commit nobody applied holds the reader back, in timestamps and in seconds; applying it clears both', async () => {
    const metrics = Metrics.forRegistry(new Registry());
    const url = `mem://reader-lag-${newShardId()}`;
    const db = await open(url, { metrics });
    const accounts = await db.collection('accounts', STRING_UNIT);
    const live = follow(db.subscribe$(accounts));
    const { commitTs } = await db.write({ accounts: [['alice', null, 1]] });
    await live.past(commitTs);
    const lagOf = (f: Map<string, import('../support/metrics.js').Family>) => ({
      ts: sample(f, 'txnwal_reader_frontier_lag', { collection: 'accounts' }),
      seconds: sample(f, 'txnwal_reader_frontier_lag_seconds', { collection: 'accounts' }),
    });
    await scrapeUntil(metrics, (f) => lagOf(f).ts === 0, 'the caught-up reader at lag 0');

    // Another process's handle on the same txns shard commits to accounts and does not apply.
    const other = await PersistClient.open(url, { metrics: Metrics.forRegistry(new Registry()) });
    const txns = await TxnsHandle.open(other, { txnsId: db.txnsId, codecs: BYTES });
    let ts = live.upper;
    for (;;) {
      const reg = await txns.register(ts, [await other.openWriter(accounts.shardId, BYTES)]);
      if (reg.ok) break;
      ts = reg.current;
    }
    const txn = txns.begin();
    await txn.write(accounts.shardId, Codecs.string.encode('mallory'), Codecs.unit.encode(null), 1);
    let res = await txn.commitAt(txns, ts + 1);
    while (!res.ok) res = await txn.commitAt(txns, res.current);
    const behind = await scrapeUntil(metrics, (f) => lagOf(f).ts > 0 && lagOf(f).seconds > 0, 'the reader to lag behind the unapplied commit');
    expect(lagOf(behind).ts).to.be.at.most(2);
    expect(live.upper, 'the reader has not passed the unapplied commit').to.be.at.most(res.ok ? res.apply.commitTs : 0);

    await res.apply.apply(txns);
    await scrapeUntil(metrics, (f) => lagOf(f).ts === 0 && lagOf(f).seconds === 0, 'the reader to catch up once applied');
    live.stop();
    await txns.close();
    await other.close();
  });

  it('two databases on two registries never collide; two on one registry add up', async () => {
    const [m1, m2] = [Metrics.forRegistry(new Registry()), Metrics.forRegistry(new Registry())];
    const a = await open('mem://', { metrics: m1 });
    const b = await open('mem://', { metrics: m2 });
    await a.collection('x', STRING_UNIT);
    await b.collection('x', STRING_UNIT);
    const groupCommits = async (m: Metrics) => sample(await scrape(m), 'txnwal_group_commits_total', { outcome: 'committed' });
    const [a0, b0] = [await groupCommits(m1), await groupCommits(m2)];
    await a.write({ x: [['1', null, 1]] });
    expect(await groupCommits(m1)).to.equal(a0 + 1);
    expect(await groupCommits(m2), "a's write is not in b's registry").to.equal(b0);
    // A third database on m1 shares its families: its commits count there too.
    const c = await open('mem://', { metrics: m1 });
    await c.collection('x', STRING_UNIT);
    const before = await groupCommits(m1);
    await Promise.all([a.write({ x: [['2', null, 1]] }), c.write({ x: [['3', null, 1]] })]);
    expect(await groupCommits(m1)).to.equal(before + 2);
  });

  it('the global registry is the default', async () => {
    const db = await open('mem://');
    await db.collection('x', STRING_UNIT);
    await db.write({ x: [['1', null, 1]] });
    expect(db.metricsRegistry).to.equal(globalRegistry);
    expect(db.client.metrics).to.equal(Metrics.default());
    const fams = parseExposition(await globalRegistry.metrics());
    expect(sample(fams, 'txnwal_group_commits_total', { outcome: 'committed' })).to.be.greaterThan(0);
    expect(conventionProblems(fams)).to.deep.equal([]);
  });

  it('refuses a bare registry or two different Metrics objects, saying what to pass', async () => {
    let err: unknown;
    try {
      await openDatabase('mem://', { metrics: new Registry() as unknown as Metrics });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(InvalidArgument);
    expect((err as Error).message).to.match(/openDatabase option metrics .*Metrics\.forRegistry\(registry\)/);
    err = undefined;
    try {
      await openDatabase('mem://', { metrics: Metrics.forRegistry(new Registry()), persist: { metrics: Metrics.forRegistry(new Registry()) } });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(InvalidArgument);
    expect((err as Error).message).to.match(/two different Metrics objects/);
  });
});
