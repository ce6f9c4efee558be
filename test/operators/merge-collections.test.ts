/**
 * mergeCollections: named streams merged at their least frontier, each updates event
 * naming its collection; forCollection: one collection's view of a merged stream.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Subject, lastValueFrom, of, toArray, type Observable } from 'rxjs';
import { forCollection } from '../../src/operators/for-collection.js';
import { mergeCollections, type CollectionEvent } from '../../src/operators/merge-collections.js';
import type { ShardEvent } from '../../src/sources/shard-source.js';
import { Recorder, describeOperatorLifecycle } from '../support/rx.js';

type Ev = ShardEvent<string, null>;

describe('operators/mergeCollections', () => {
  it('the worked example: updates keep their collection and wait for the least frontier', () => {
    const accounts = new Subject<Ev>();
    const audit = new Subject<Ev>();
    const rec = new Recorder(mergeCollections({ accounts, audit }));
    accounts.next({ kind: 'updates', updates: [['a', null, 1, 1]] });
    accounts.next({ kind: 'progress', upper: 3 });
    expect(rec.events, 'held: audit has no progress yet').to.deep.equal([]);
    audit.next({ kind: 'updates', updates: [['t', null, 1, 1]] });
    audit.next({ kind: 'progress', upper: 2 });
    audit.next({ kind: 'progress', upper: 4 });
    expect(rec.events).to.deep.equal([
      { kind: 'updates', collection: 'accounts', updates: [['a', null, 1, 1]] },
      { kind: 'updates', collection: 'audit', updates: [['t', null, 1, 1]] },
      { kind: 'progress', upper: 2 },
      { kind: 'progress', upper: 3 },
    ]);
    accounts.complete();
    audit.complete();
    expect(rec.completed).to.equal(true);
  });

  it('property: at each progress, the folded output per collection is exactly its inputs below it, whatever the interleaving', () => {
    // Transactions: each writes some keys of some collections at its own time.
    const txns = fc.array(fc.array(fc.tuple(fc.nat(2), fc.constantFrom('x', 'y')), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(txns, fc.array(fc.nat(2), { minLength: 60, maxLength: 60 }), fc.array(fc.nat(3), { minLength: 3, maxLength: 3 }), (plan, schedule, steps) => {
        const names = ['c0', 'c1', 'c2'];
        // Txn i commits at time i; input c reports progress in strides of steps[c] + 1.
        const inputs: Ev[][] = names.map((_, c) => {
          const evs: Ev[] = [];
          const stride = steps[c]! + 1;
          for (let lower = 0; lower < plan.length; lower += stride) {
            const upper = Math.min(lower + stride, plan.length);
            const ups = plan.flatMap((t, ts) => (ts >= lower && ts < upper ? t.filter(([cc]) => cc === c).map(([, k]) => [k, null, ts, 1] as const) : []));
            if (ups.length > 0) evs.push({ kind: 'updates', updates: ups });
            evs.push({ kind: 'progress', upper });
          }
          return evs;
        });
        const subjects = names.map(() => new Subject<Ev>());
        const rec = new Recorder(mergeCollections(Object.fromEntries(names.map((n, c) => [n, subjects[c]! as Observable<Ev>]))));
        const cursors = names.map(() => 0);
        const feed = (c: number) => {
          if (cursors[c]! < inputs[c]!.length) subjects[c]!.next(inputs[c]![cursors[c]!++]!);
        };
        for (const c of schedule) feed(c);
        for (let c = 0; c < names.length; c++) while (cursors[c]! < inputs[c]!.length) feed(c);
        const folded = new Map<string, number>();
        let lower = 0;
        for (const e of rec.events) {
          if (e.kind === 'updates') {
            for (const [k, , ts] of e.updates) {
              expect(ts).to.be.at.least(lower);
              folded.set(`${e.collection}/${k}`, (folded.get(`${e.collection}/${k}`) ?? 0) + 1);
            }
            continue;
          }
          expect(e.upper).to.be.greaterThan(lower);
          const naive = new Map<string, number>();
          plan.forEach((t, ts) => {
            if (ts < e.upper) for (const [c, k] of t) naive.set(`c${c}/${k}`, (naive.get(`c${c}/${k}`) ?? 0) + 1);
          });
          expect([...folded].sort(), `at ${e.upper}`).to.deep.equal([...naive].sort());
          lower = e.upper;
        }
        expect(lower, 'the merged frontier reached the end').to.equal(plan.length);
      }),
      { numRuns: 300 },
    );
  });

  it('errors as soon as any input errors; unsubscribing unsubscribes every input; no inputs completes at once', async () => {
    const a = new Subject<Ev>();
    const b = new Subject<Ev>();
    const rec = new Recorder(mergeCollections({ a, b }));
    b.error(new Error('boom'));
    expect((rec.error as Error).message).to.equal('boom');
    expect(a.observed).to.equal(false);
    const c = new Subject<Ev>();
    new Recorder(mergeCollections({ c })).unsubscribe();
    expect(c.observed).to.equal(false);
    expect(await lastValueFrom(mergeCollections({}).pipe(toArray()))).to.deep.equal([]);
  });
});

describe('operators/forCollection', () => {
  it('keeps one collection’s updates and every progress', async () => {
    const events: CollectionEvent<string, null>[] = [
      { kind: 'updates', collection: 'a', updates: [['x', null, 0, 1]] },
      { kind: 'updates', collection: 'b', updates: [['y', null, 0, 1]] },
      { kind: 'progress', upper: 1 },
    ];
    expect(await lastValueFrom(of(...events).pipe(forCollection('b'), toArray()))).to.deep.equal([
      { kind: 'updates', updates: [['y', null, 0, 1]] },
      { kind: 'progress', upper: 1 },
    ]);
  });
});

// Through one input, so the shared suite can drive it as a pipeable operator.
describeOperatorLifecycle<Ev, CollectionEvent<string, null>>('operators/mergeCollections', () => (source) => mergeCollections({ only: source }), {
  sample: [{ kind: 'updates', updates: [['a', null, 0, 1]] }, { kind: 'progress', upper: 1 }],
  breaking: [{ kind: 'updates', updates: null as unknown as Ev & [] }],
  onEarlyComplete: 'complete',
});

describeOperatorLifecycle<CollectionEvent<string, null>, Ev>('operators/forCollection', () => forCollection<string, null>('a'), {
  sample: [{ kind: 'updates', collection: 'a', updates: [['a', null, 0, 1]] }, { kind: 'progress', upper: 1 }],
  // A malformed (null) event makes its own work throw.
  breaking: [null as unknown as CollectionEvent<string, null>],
  onEarlyComplete: 'complete',
});
