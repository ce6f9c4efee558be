/**
 * The fault-injecting Location wrapper: what each kind of fault does to the inner
 * store, that a seed replays the same faults, that rates hold over many calls, and
 * that the switch, the filter and the counters do what they say.
 */
import { expect } from 'chai';
import {
  DeterminateError,
  IndeterminateError,
  LocationUsageError,
  openLocation,
  withFaultInjection,
  type FaultInjectingLocation,
  type FaultInjectionOptions,
  type Location,
} from '../../src/location/index.js';

const bytes = (s: string) => new TextEncoder().encode(s);

/** Outcome of one call: 'ok', or the class name of the error it threw. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return (err as Error).name;
  }
}

describe('location: fault injection', () => {
  let inner: Location;
  beforeEach(async () => {
    inner = await openLocation('mem://');
  });
  afterEach(async () => {
    await inner.close();
  });

  function wrap(opts: FaultInjectionOptions): FaultInjectingLocation {
    return withFaultInjection(inner, opts);
  }

  it("passes the inner location's wake-up channel through, so readers on it are woken, not only polling", () => {
    expect(inner.stateChanges).to.not.equal(undefined);
    expect(wrap({ seed: 1 }).stateChanges).to.equal(inner.stateChanges);
  });

  it('a determinate fault never reaches the inner store', async () => {
    const loc = wrap({ seed: 1, writes: { determinate: 1, indeterminate: 0 }, reads: { determinate: 0, indeterminate: 0 } });
    for (let i = 0; i < 20; i++) {
      const err = await loc.blob.set(`k${i}`, bytes('v')).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(DeterminateError);
      const cas = await loc.consensus.compareAndSet(`c${i}`, undefined, { seqno: 1, data: bytes('d') }).then(() => undefined, (e: unknown) => e);
      expect(cas).to.be.instanceOf(DeterminateError);
    }
    const keys: string[] = [];
    await inner.blob.listKeysAndMetadata('', (k) => keys.push(k));
    expect(keys).to.deep.equal([]);
    expect(await inner.consensus.listKeys()).to.deep.equal([]);
    expect(loc.faults.counts.determinate).to.deep.equal({ 'blob.set': 20, 'consensus.compareAndSet': 20 });
  });

  it('an indeterminate fault reaches the inner store, then throws as if the reply was lost', async () => {
    const loc = wrap({ seed: 2, writes: { determinate: 0, indeterminate: 1 }, reads: { determinate: 0, indeterminate: 0 } });
    const err = await loc.blob.set('k', bytes('v')).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(IndeterminateError);
    expect((err as Error).message).to.match(/blob\.set\("k"\).*reply was lost/);
    expect(await inner.blob.get('k')).to.deep.equal(bytes('v'));

    const cas = await loc.consensus.compareAndSet('c', undefined, { seqno: 1, data: bytes('d') }).then(() => undefined, (e: unknown) => e);
    expect(cas).to.be.instanceOf(IndeterminateError);
    expect((await inner.consensus.head('c'))?.seqno).to.equal(1);

    // Reads pass: the read rates are 0.
    expect(await loc.blob.get('k')).to.deep.equal(bytes('v'));
    expect(loc.faults.counts.indeterminate).to.deep.equal({ 'blob.set': 1, 'consensus.compareAndSet': 1 });
  });

  it('an indeterminate fault on a call the inner store rejected rethrows the store’s own error', async () => {
    const loc = wrap({ seed: 3, faultRate: 0, writes: { indeterminate: 1 } });
    await inner.consensus.compareAndSet('c', undefined, { seqno: 1, data: bytes('d') });
    // Truncating beyond the head is misuse: the store says so, and that answer wins.
    const err = await loc.consensus.truncate('c', 5).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(LocationUsageError);
    expect(loc.faults.counts.indeterminate['consensus.truncate']).to.equal(1);
  });

  it('the same seed and the same calls give the same faults; another seed gives others', async () => {
    async function run(seed: number): Promise<string[]> {
      const loc = withFaultInjection(await openLocation('mem://'), { seed, faultRate: 0.3 });
      const seen: string[] = [];
      for (let i = 0; i < 200; i++) {
        seen.push(await outcome(i % 2 ? loc.blob.set(`k${i}`, bytes('v')) : loc.consensus.head(`c${i}`)));
      }
      await loc.close();
      return seen;
    }
    const a = await run(42);
    expect(await run(42)).to.deep.equal(a);
    expect(await run(43)).to.not.deep.equal(a);
    expect(a).to.include('DeterminateError').and.to.include('IndeterminateError').and.to.include('ok');
  });

  it('honours the rates over 10k calls, per kind of method', async () => {
    const loc = wrap({ seed: 9, reads: { determinate: 0.2, indeterminate: 0.05 }, writes: { determinate: 0.01, indeterminate: 0.1 } });
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      await outcome(loc.consensus.head('c'));
      await outcome(loc.blob.set('k', bytes('v')));
    }
    const { determinate, indeterminate } = loc.faults.counts;
    const within = (got: number | undefined, p: number) => expect(got ?? 0).to.be.within(n * p * 0.85, n * p * 1.15);
    within(determinate['consensus.head'], 0.2);
    within(indeterminate['consensus.head'], 0.05);
    within(determinate['blob.set'], 0.01);
    within(indeterminate['blob.set'], 0.1);
    expect(loc.faults.calls).to.equal(2 * n);
  });

  it('faultRate splits evenly between determinate and indeterminate faults', async () => {
    const loc = wrap({ seed: 10, faultRate: 0.4 });
    for (let i = 0; i < 5000; i++) await outcome(loc.blob.get('k'));
    const t = loc.faults.totals();
    expect(t.determinate).to.be.within(850, 1150);
    expect(t.indeterminate).to.be.within(850, 1150);
    expect(t.slow).to.equal(0);
  });

  it('an outage (burst) fails every call for its length, in runs a retry loop cannot ride out', async () => {
    const loc = wrap({ seed: 11, faultRate: 0, burst: { rate: 0.01, length: 5 } });
    const failed: boolean[] = [];
    for (let i = 0; i < 10_000; i++) failed.push((await outcome(loc.consensus.head('c'))) !== 'ok');
    const runs: number[] = [];
    let run = 0;
    for (const f of [...failed, false]) {
      if (f) run++;
      else if (run > 0) runs.push(run), (run = 0);
    }
    // Outages may follow each other back to back, so a run is a whole number of them.
    expect(runs.every((r) => r % 5 === 0), `runs of failures: ${runs.join(' ')}`).to.equal(true);
    expect(loc.faults.bursts).to.be.within(70, 125);
    expect(failed.filter(Boolean).length).to.equal(5 * loc.faults.bursts);
    const t = loc.faults.totals();
    expect(t.determinate).to.be.greaterThan(0);
    expect(t.indeterminate).to.be.greaterThan(0);
    expect(() => loc.faults.setBurst({ rate: 0.5, length: 1.5 })).to.throw(LocationUsageError, /burst.length must be an integer >= 0, got 1.5/);
    loc.faults.setBurst({ rate: 0, length: 0 });
    for (let i = 0; i < 100; i++) expect(await outcome(loc.consensus.head('c'))).to.equal('ok');
  });

  it('a slow call waits, then answers normally', async () => {
    const loc = wrap({ seed: 4, faultRate: 0, slowRate: 1, slowMaxMs: 30 });
    await inner.blob.set('k', bytes('v'));
    const started = performance.now();
    for (let i = 0; i < 10; i++) expect(await loc.blob.get('k')).to.deep.equal(bytes('v'));
    // Ten delays drawn from [0, 30] ms: all zero is vanishingly unlikely, and the seed fixes them.
    expect(performance.now() - started).to.be.greaterThan(5);
    expect(loc.faults.totals()).to.deep.equal({ determinate: 0, indeterminate: 0, slow: 10 });
  });

  it('turning faults off (enabled = false or setFaultRate(0)) forwards every call', async () => {
    const loc = wrap({ seed: 5, faultRate: 1 });
    expect(await outcome(loc.blob.get('k'))).to.not.equal('ok');
    loc.faults.enabled = false;
    for (let i = 0; i < 50; i++) expect(await outcome(loc.blob.set('k', bytes('v')))).to.equal('ok');
    loc.faults.enabled = true;
    expect(await outcome(loc.blob.get('k'))).to.not.equal('ok');
    loc.faults.setFaultRate(0);
    for (let i = 0; i < 50; i++) expect(await outcome(loc.consensus.head('c'))).to.equal('ok');
    expect(loc.faults.totals().determinate + loc.faults.totals().indeterminate).to.equal(2);
  });

  it('the filter limits faults to the calls it accepts', async () => {
    const loc = wrap({ seed: 6, faultRate: 1, filter: ({ method, key }) => method === 'blob.set' && key!.startsWith('data/') });
    for (let i = 0; i < 20; i++) {
      expect(await outcome(loc.blob.set(`meta/${i}`, bytes('v')))).to.equal('ok');
      expect(await outcome(loc.consensus.head('c'))).to.equal('ok');
      expect(await outcome(loc.blob.set(`data/${i}`, bytes('v')))).to.not.equal('ok');
    }
    const faulted = new Set([...Object.keys(loc.faults.counts.determinate), ...Object.keys(loc.faults.counts.indeterminate)]);
    expect([...faulted]).to.deep.equal(['blob.set']);
    expect(loc.faults.totals().determinate + loc.faults.totals().indeterminate).to.equal(20);
  });

  it('counters count by kind and method, and reset', async () => {
    const loc = wrap({ seed: 7, faultRate: 0, reads: { determinate: 1 } });
    await outcome(loc.blob.get('a'));
    await outcome(loc.blob.listKeysAndMetadata('', () => undefined));
    await outcome(loc.consensus.scan('c', 0, 10));
    await outcome(loc.consensus.listKeys());
    await outcome(loc.blob.set('a', bytes('v')));
    expect(loc.faults.counts.determinate).to.deep.equal({
      'blob.get': 1,
      'blob.listKeysAndMetadata': 1,
      'consensus.scan': 1,
      'consensus.listKeys': 1,
    });
    expect(loc.faults.calls).to.equal(5);
    loc.faults.resetCounts();
    expect(loc.faults.totals()).to.deep.equal({ determinate: 0, indeterminate: 0, slow: 0 });
    expect(loc.faults.calls).to.equal(0);
  });

  it('rejects bad options, naming the option and the value', () => {
    expect(() => wrap({ seed: 1, faultRate: 1.5 })).to.throw(LocationUsageError, /faultRate must be a number in \[0, 1\], got 1.5/);
    expect(() => wrap({ seed: 1.5 })).to.throw(LocationUsageError, /seed must be an integer, got 1.5/);
    expect(() => wrap({ seed: 1, writes: { determinate: 0.7, indeterminate: 0.7 } })).to.throw(LocationUsageError, /writes.determinate \+ writes.indeterminate must be at most 1/);
    expect(() => wrap({ seed: 1, slowMaxMs: -1 })).to.throw(LocationUsageError, /slowMaxMs/);
    expect(() => wrap({ seed: 1 }).faults.setFaultRate(NaN)).to.throw(LocationUsageError, /rate must be a number/);
  });

  it('is a Location a PersistClient can open', async () => {
    const { PersistClient, newShardId } = await import('../../src/persist/index.js');
    const { STRING_UNIT, rows } = await import('../support/persist.js');
    // Only faults persist survives by design today: refused writes, and reads of any kind.
    const loc = wrap({ seed: 8, reads: { determinate: 0.05, indeterminate: 0.05 }, writes: { determinate: 0.1, indeterminate: 0 } });
    const client = await PersistClient.open(loc, { config: { storageRetry: { attempts: 20, initialMs: 0, multiplier: 1, clampMs: 0 } } });
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    for (let t = 0; t < 20; t++) expect(await w.compareAndAppend(rows(t, `k${t}`), t, t + 1)).to.deep.equal({ ok: true });
    loc.faults.enabled = false;
    const r = await client.openLeasedReader(id, STRING_UNIT);
    expect(await r.snapshotAndFetch(19)).to.have.length(20);
    expect(loc.faults.totals().determinate + loc.faults.totals().indeterminate).to.be.greaterThan(0);
    await client.close();
  });
});
