/**
 * The metrics plumbing every layer uses: one Metrics object per registry, its parts,
 * the `metrics` option check, and the cell-backed families (what their exposition
 * looks like to a scraper, and that their updates never throw or go backwards).
 */
import { expect } from 'chai';
import { register as globalRegistry, Registry, Counter } from 'prom-client';
import { InvalidArgument, InvalidUsage } from '../../src/persist/errors.js';
import { counterFamily, gaugeFamily, histogramFamily } from '../../src/persist/metric-families.js';
import { Metrics } from '../../src/persist/metrics.js';
import { parseExposition, sample, hasSample, scrape } from '../support/metrics.js';

describe('persist: metrics plumbing (Metrics per registry, cell-backed families)', () => {
  it('Metrics.forRegistry is one object per registry; the default is the global registry', () => {
    const r = new Registry();
    const m = Metrics.forRegistry(r);
    expect(Metrics.forRegistry(r)).to.equal(m);
    expect(m.registry).to.equal(r);
    expect(Metrics.forRegistry(new Registry())).to.not.equal(m);
    expect(Metrics.forRegistry().registry).to.equal(globalRegistry);
    expect(Metrics.default()).to.equal(Metrics.forRegistry(globalRegistry));
    // A part is made once per Metrics object.
    let made = 0;
    const make = () => ({ n: ++made });
    expect(m.part('test-part', make)).to.equal(m.part('test-part', make));
    expect(made).to.equal(1);
  });

  it('refuses what is not a registry or a Metrics object, saying how to make one', () => {
    expect(() => Metrics.forRegistry({} as Registry)).to.throw(InvalidArgument, /prom-client Registry/);
    const fallback = Metrics.forRegistry(new Registry());
    expect(Metrics.option(undefined, 'X option metrics', () => fallback)).to.equal(fallback);
    expect(() => Metrics.option(new Registry(), 'X option metrics', () => fallback)).to.throw(InvalidArgument, /Metrics\.forRegistry\(registry\)/);
    expect(() => Metrics.option('global', 'X option metrics', () => fallback)).to.throw(InvalidArgument, /X option metrics must be a Metrics object/);
  });

  it('counters: one cell per label set, shared by every asker; only ever up', async () => {
    const m = Metrics.forRegistry(new Registry());
    const fam = counterFamily(m, 'txnwal_test_things_total', 'things counted by the test', ['kind']);
    const a = fam.cell({ kind: 'a' });
    expect(counterFamily(m, 'txnwal_test_things_total', 'things counted by the test', ['kind']).cell({ kind: 'a' })).to.equal(a);
    a.inc();
    a.inc(2.5);
    for (const bad of [-1, 0, NaN, Infinity]) a.inc(bad);
    fam.cell({ kind: 'b' }); // exported at 0 from the start
    const fams = await scrape(m);
    const f = fams.get('txnwal_test_things_total')!;
    expect(f.type).to.equal('counter');
    expect(f.help).to.equal('things counted by the test');
    expect(sample(fams, 'txnwal_test_things_total', { kind: 'a' })).to.equal(3.5);
    expect(hasSample(fams, 'txnwal_test_things_total', { kind: 'b' })).to.equal(true);
    // resetMetrics does not zero txnwal's cumulative counts.
    m.registry.resetMetrics();
    expect(sample(await scrape(m), 'txnwal_test_things_total', { kind: 'a' })).to.equal(3.5);
  });

  it('histograms: cumulative buckets, +Inf, _sum and _count per label set', async () => {
    const m = Metrics.forRegistry(new Registry());
    const h = histogramFamily(m, 'txnwal_test_wait_seconds', 'Duration of test waits', ['op'], [0.01, 0.1, 1]).cell({ op: 'x' });
    for (const v of [0.005, 0.01, 0.05, 0.5, 3, NaN]) h.observe(v);
    const text = await m.text();
    expect(text).to.match(/# TYPE txnwal_test_wait_seconds histogram/);
    const fams = parseExposition(text);
    const bucket = (le: string) => sample(fams, 'txnwal_test_wait_seconds_bucket', { op: 'x', le });
    expect([bucket('0.01'), bucket('0.1'), bucket('1'), bucket('+Inf')]).to.deep.equal([2, 3, 4, 5]);
    expect(sample(fams, 'txnwal_test_wait_seconds_count', { op: 'x' })).to.equal(5);
    expect(sample(fams, 'txnwal_test_wait_seconds_sum', { op: 'x' })).to.be.closeTo(3.565, 1e-9);
    // The JSON form agrees (prom-client's getMetricsAsJSON reads the same cells).
    const json = (await m.registry.getMetricsAsJSON()).find((x) => x.name === 'txnwal_test_wait_seconds')!;
    const count = (json.values as { metricName?: string; value: number }[]).find((v) => v.metricName === 'txnwal_test_wait_seconds_count');
    expect(count?.value).to.equal(5);
  });

  it('sourced gauges: read at scrape time, summed or maxed over live sources, gone with the last one', async () => {
    const m = Metrics.forRegistry(new Registry());
    const sum = gaugeFamily(m, 'txnwal_test_depth', 'queue depth of the test', [], 'sum');
    const max = gaugeFamily(m, 'txnwal_test_lag', 'lag of the test readers', ['collection'], 'max');
    let x = 3;
    const stopA = sum.source({}, () => x);
    const stopB = sum.source({}, () => 4);
    const stopC = max.source({ collection: 'c' }, () => x);
    const stopD = max.source({ collection: 'c' }, () => 10);
    x = 5;
    let fams = await scrape(m);
    expect(sample(fams, 'txnwal_test_depth')).to.equal(9);
    expect(sample(fams, 'txnwal_test_lag', { collection: 'c' })).to.equal(10);
    stopD();
    stopB();
    fams = await scrape(m);
    expect(sample(fams, 'txnwal_test_depth')).to.equal(5);
    expect(sample(fams, 'txnwal_test_lag', { collection: 'c' })).to.equal(5);
    stopA();
    stopC();
    stopC(); // idempotent
    fams = await scrape(m);
    expect(hasSample(fams, 'txnwal_test_depth')).to.equal(false);
    expect(hasSample(fams, 'txnwal_test_lag', { collection: 'c' })).to.equal(false);
    expect(fams.get('txnwal_test_lag')?.type, 'the family is still described').to.equal('gauge');
  });

  it('two registries never collide; a foreign metric of the same name is reported, not overwritten', () => {
    const [r1, r2] = [new Registry(), new Registry()];
    const c1 = counterFamily(Metrics.forRegistry(r1), 'txnwal_test_same_total', 'same name in two registries', []).cell({});
    const c2 = counterFamily(Metrics.forRegistry(r2), 'txnwal_test_same_total', 'same name in two registries', []).cell({});
    expect(c1).to.not.equal(c2);
    const r3 = new Registry();
    new Counter({ name: 'txnwal_test_taken_total', help: 'registered by someone else', registers: [r3] });
    expect(() => counterFamily(Metrics.forRegistry(r3), 'txnwal_test_taken_total', 'ours', [])).to.throw(InvalidUsage, /already registered .* registry of its own/);
  });
});
