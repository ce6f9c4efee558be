/**
 * txn-wal metrics (spec §4, named by the Prometheus conventions as `txnwal_txn_*`)
 * recorded into a registry of the test's own.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { PersistClient } from '../../src/persist/client.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import { Metrics } from '../../src/persist/metrics.js';
import { TxnMetrics } from '../../src/txn/metrics.js';
import type { TxnsHandle } from '../../src/txn/txns-handle.js';
import { memClient } from '../support/persist.js';
import { openTxns, writer } from '../support/txn.js';

const OP_COUNTERS = [
  'txnwal_txn_ops_started_total',
  'txnwal_txn_ops_succeeded_total',
  'txnwal_txn_ops_failed_total',
  'txnwal_txn_ops_retried_total',
] as const;

/**
 * Every metric value of `registry` as `name{op="…"}` → value (labels sorted; no labels:
 * just the name). Histogram series go by their sample names (`…_count`, `…_sum`; buckets left out).
 */
async function snapshot(registry: Registry): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of await registry.getMetricsAsJSON()) {
    for (const v of m.values as { labels?: Record<string, string | number>; value: number; metricName?: string }[]) {
      if (v.metricName?.endsWith('_bucket')) continue;
      const name = v.metricName ?? m.name;
      const labels = Object.entries(v.labels ?? {})
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, x]) => `${k}="${x}"`)
        .join(',');
      out.set(labels ? `${name}{${labels}}` : name, v.value);
    }
  }
  return out;
}

/** A metric value, 0 when the labelled series was never touched. */
function val(s: Map<string, number>, name: string, op?: string): number {
  return s.get(op === undefined ? name : `${name}{op="${op}"}`) ?? 0;
}

/** The counters of one op: started / succeeded / failed / retried. */
function op(s: Map<string, number>, name: string) {
  return {
    started: val(s, 'txnwal_txn_ops_started_total', name),
    succeeded: val(s, 'txnwal_txn_ops_succeeded_total', name),
    failed: val(s, 'txnwal_txn_ops_failed_total', name),
    retried: val(s, 'txnwal_txn_ops_retried_total', name),
  };
}

async function commitKeys(txns: TxnsHandle<string, null>, ts: number, writes: [ShardId, string][]) {
  const txn = txns.begin();
  for (const [id, k] of writes) await txn.write(id, k, null, 1);
  return { txn, res: await txn.commitAt(txns, ts) };
}

/** The sum of the byte sizes of the batch pointers the cache lists as untidied. */
async function untidiedBytes(txns: TxnsHandle<string, null>, upper: number): Promise<{ count: number; bytes: number; minTs: number }> {
  const cache = txns.readCache();
  await cache.updateGe(upper);
  const list = cache.state.unappliedBatchList();
  return { count: list.length, bytes: list.reduce((n, b) => n + b.raw.byteLength, 0), minTs: cache.minUnappliedTs() };
}

describe('txn: metrics (spec §4)', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient();
  });
  afterEach(async () => {
    await client.close();
  });

  it('TxnMetrics.of is one object per registry, with the spec\'s families under conventional names and kinds', () => {
    const r = new Registry();
    const m = TxnMetrics.of(Metrics.forRegistry(r));
    expect(TxnMetrics.of(Metrics.forRegistry(r))).to.equal(m);
    expect(m.metrics.registry).to.equal(r);
    const other = TxnMetrics.of(Metrics.forRegistry(new Registry()));
    expect(other).to.not.equal(m);
    // Each registry holds its own metric families.
    const kinds = new Map(r.getMetricsAsArray().map((x) => [x.name, (x as unknown as { type: string }).type]));
    const expected: [string, string][] = [
      ...OP_COUNTERS.map((n): [string, string] => [n, 'counter']),
      ['txnwal_txn_op_duration_seconds', 'histogram'],
      ['txnwal_txn_data_shards', 'gauge'],
      ['txnwal_txn_batches_committed_total', 'counter'],
      ['txnwal_txn_committed_batch_bytes_total', 'counter'],
      ['txnwal_txn_unapplied_batches', 'gauge'],
      ['txnwal_txn_unapplied_batch_bytes', 'gauge'],
      ['txnwal_txn_unapplied_min_ts', 'gauge'],
    ];
    for (const [n, type] of expected) expect(kinds.get(n), n).to.equal(type);
  });

  it('counts register, a taken-ts commit and its retry, applyLe and compactTo; gauges follow applyLe', async () => {
    const registry = new Registry();
    const metrics = Metrics.forRegistry(registry);
    const txnsId = newShardId();
    const txns = await openTxns(client, txnsId, { metrics });
    const [d0, d1] = [newShardId(), newShardId()];

    // register at 1 (txns upper 1 → 2).
    const reg = await txns.register(1, [await writer(client, d0), await writer(client, d1)]);
    expect(reg.ok).to.equal(true);
    let s = await snapshot(registry);
    expect(op(s, 'register')).to.deep.equal({ started: 1, succeeded: 1, failed: 0, retried: 0 });
    expect(op(s, 'commit')).to.deep.equal({ started: 0, succeeded: 0, failed: 0, retried: 0 });
    expect(val(s, 'txnwal_txn_op_duration_seconds_sum', 'register')).to.be.greaterThan(0);
    // register applied up to 1 itself, refreshing the gauges on the way in: both shards are known,
    // nothing is committed, and the register at 1 was still unapplied then.
    expect(val(s, 'txnwal_txn_data_shards')).to.equal(2);
    expect(val(s, 'txnwal_txn_unapplied_batches')).to.equal(0);
    expect(val(s, 'txnwal_txn_unapplied_batch_bytes')).to.equal(0);
    expect(val(s, 'txnwal_txn_unapplied_min_ts')).to.equal(1);
    const applyStartedAfterRegister = op(s, 'apply_le').started;

    // A commit at the taken ts 1: an error, not a retry (no compare-and-append was attempted).
    const { txn, res: r1 } = await commitKeys(txns, 1, [
      [d0, 'a'],
      [d1, 'b'],
    ]);
    expect(r1).to.deep.equal({ ok: false, current: 2 });
    s = await snapshot(registry);
    expect(op(s, 'commit')).to.deep.equal({ started: 1, succeeded: 0, failed: 1, retried: 0 });
    expect(val(s, 'txnwal_txn_batches_committed_total')).to.equal(0);
    expect(val(s, 'txnwal_txn_committed_batch_bytes_total')).to.equal(0);

    // The same txn at current: one batch per shard.
    const r2 = await txn.commitAt(txns, 2);
    expect(r2.ok).to.equal(true);
    const committed = await untidiedBytes(txns, 3);
    expect(committed.count).to.equal(2);
    s = await snapshot(registry);
    expect(op(s, 'commit')).to.deep.equal({ started: 2, succeeded: 1, failed: 1, retried: 0 });
    expect(val(s, 'txnwal_txn_batches_committed_total')).to.equal(2);
    expect(val(s, 'txnwal_txn_committed_batch_bytes_total')).to.equal(committed.bytes);
    expect(committed.bytes).to.be.greaterThan(2 * 16); // each pointer carries a 16-byte id and a ProtoBatch
    // Gauges move only inside applyLe: still as the register left them.
    expect(val(s, 'txnwal_txn_unapplied_batches')).to.equal(0);
    expect(val(s, 'txnwal_txn_unapplied_min_ts')).to.equal(1);

    // applyLe(2): one apply_le op; the gauges are refreshed at its start (before applying).
    const tidy = await txns.applyLe(2);
    expect(tidy.size).to.equal(2);
    s = await snapshot(registry);
    expect(op(s, 'apply_le')).to.deep.equal({ started: applyStartedAfterRegister + 1, succeeded: applyStartedAfterRegister + 1, failed: 0, retried: 0 });
    expect(val(s, 'txnwal_txn_data_shards')).to.equal(2);
    expect(val(s, 'txnwal_txn_unapplied_batches')).to.equal(2);
    expect(val(s, 'txnwal_txn_unapplied_batch_bytes')).to.equal(committed.bytes);
    expect(val(s, 'txnwal_txn_unapplied_min_ts')).to.equal(2);

    // compactTo: started and succeeded only.
    await txns.compactTo(2);
    s = await snapshot(registry);
    expect(op(s, 'compact_to')).to.deep.equal({ started: 1, succeeded: 1, failed: 0, retried: 0 });
    expect(val(s, 'txnwal_txn_op_duration_seconds_sum', 'compact_to')).to.be.greaterThan(0);
    expect(val(s, 'txnwal_txn_op_duration_seconds_count', 'compact_to')).to.equal(1);

    // Tidy at 3, then applyLe(3): applying does not untidy, the tidy does; the gauges show it.
    expect(await txns.tidyAt(3, tidy)).to.deep.equal({ ok: true });
    await txns.applyLe(3);
    s = await snapshot(registry);
    expect(op(s, 'commit')).to.deep.equal({ started: 3, succeeded: 2, failed: 1, retried: 0 }); // tidyAt commits
    expect(val(s, 'txnwal_txn_batches_committed_total')).to.equal(2); // a tidy commits no batch
    expect(val(s, 'txnwal_txn_unapplied_batches')).to.equal(0);
    expect(val(s, 'txnwal_txn_unapplied_batch_bytes')).to.equal(0);
    expect(val(s, 'txnwal_txn_unapplied_min_ts')).to.equal(4); // nothing outstanding: the progress
    expect(val(s, 'txnwal_txn_data_shards')).to.equal(2);

    // forget: a fallible op of its own; forgotten shards stay in the data shard count.
    expect((await txns.forget(4, [d0])).ok).to.equal(true);
    expect(await txns.forget(4, [d0])).to.deep.equal({ ok: false, current: 5 });
    await txns.applyLe(4);
    s = await snapshot(registry);
    expect(op(s, 'forget')).to.deep.equal({ started: 2, succeeded: 1, failed: 1, retried: 0 });
    expect(val(s, 'txnwal_txn_data_shards')).to.equal(2);

    // Every started op finished one way or the other.
    for (const name of ['register', 'commit', 'forget', 'apply_le', 'compact_to']) {
      const o = op(s, name);
      expect(o.started, name).to.equal(o.succeeded + o.failed);
    }
    await txns.close();
  });

  it('counts compare-and-append retries when two handles race on one txns shard', async () => {
    const registry = new Registry();
    const metrics = Metrics.forRegistry(registry);
    const txnsId = newShardId();
    const [a, b] = [await openTxns(client, txnsId, { metrics }), await openTxns(client, txnsId, { metrics })];
    const [d0, d1] = [newShardId(), newShardId()];
    expect((await a.register(1, [await writer(client, d0)])).ok).to.equal(true);
    expect((await b.register(2, [await writer(client, d1)])).ok).to.equal(true);
    let upper = 3;

    // Race commits at the same ts until one of them loses at the compare-and-append (rather than
    // seeing the new upper before trying). Each race: one winner at `upper`, one taken-ts error.
    let races = 0;
    let retried = 0;
    while (retried === 0 && races < 50) {
      races++;
      const [ra, rb] = await Promise.all([
        commitKeys(a, upper, [[d0, `a${races}`]]),
        commitKeys(b, upper, [[d1, `b${races}`]]),
      ]);
      const oks = [ra.res, rb.res].filter((r) => r.ok);
      expect(oks, `race ${races}`).to.have.length(1);
      const loser = ra.res.ok ? rb : ra;
      const loserHandle = ra.res.ok ? b : a;
      expect(loser.res).to.deep.equal({ ok: false, current: upper + 1 });
      expect((await loser.txn.commitAt(loserHandle, upper + 1)).ok).to.equal(true);
      upper += 2;
      retried = op(await snapshot(registry), 'commit').retried;
    }
    expect(retried, `no retry in ${races} races`).to.equal(1);
    let s = await snapshot(registry);
    expect(op(s, 'commit')).to.deep.equal({ started: 3 * races, succeeded: 2 * races, failed: races, retried: 1 });
    expect(val(s, 'txnwal_txn_batches_committed_total')).to.equal(2 * races);

    // The same for register: both race to register a new shard at one ts.
    const [d2, d3] = [newShardId(), newShardId()];
    let regRaces = 0;
    let regRetried = 0;
    while (regRetried === 0 && regRaces < 50) {
      regRaces++;
      const ts = upper;
      const [w2, w3] = [await writer(client, d2), await writer(client, d3)];
      const [ra, rb] = await Promise.all([a.register(ts, [w2]), b.register(ts, [w3])]);
      expect([ra, rb].filter((r) => r.ok), `register race ${regRaces}`).to.have.length(1);
      expect([ra, rb].find((r) => !r.ok)).to.deep.equal({ ok: false, current: ts + 1 });
      upper += 1;
      regRetried = op(await snapshot(registry), 'register').retried;
      // Forget both again so the next race registers something new (both forgets write: one ts each).
      expect((await a.forget(upper, [d2, d3])).ok).to.equal(true);
      upper += 1;
    }
    s = await snapshot(registry);
    expect(regRetried, `no register retry in ${regRaces} races`).to.equal(1);
    // 2 registers up front, 2 per race; one error per race.
    expect(op(s, 'register')).to.deep.equal({ started: 2 + 2 * regRaces, succeeded: 2 + regRaces, failed: regRaces, retried: 1 });

    // Handles opened with other metrics do not count here.
    const before = await snapshot(registry);
    const other = await openTxns(client, txnsId);
    expect((await other.register(upper, [await writer(client, newShardId())])).ok).to.equal(true);
    await other.applyLe(upper);
    const after = await snapshot(registry);
    for (const n of ['txnwal_txn_ops_started_total', 'txnwal_txn_ops_succeeded_total']) {
      for (const o of ['register', 'apply_le']) expect(val(after, n, o), `${n} ${o}`).to.equal(val(before, n, o));
    }
    await other.close();
    await a.close();
    await b.close();
  });
});
