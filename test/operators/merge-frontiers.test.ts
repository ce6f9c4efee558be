/** mergeFrontiers: several streams, one frontier (the least), updates held until it passes them. */
import { expect } from 'chai';
import fc from 'fast-check';
import { Subject, lastValueFrom, of, toArray, type Observable } from 'rxjs';
import { mergeFrontiers } from '../../src/operators/merge-frontiers.js';
import type { ShardEvent } from '../../src/sources/shard-source.js';
import { Recorder, describeOperatorLifecycle } from '../support/rx.js';

type Ev = ShardEvent<string, null>;

describe('operators/mergeFrontiers', () => {
  it('the worked example: progress is the least input progress, updates wait for it', () => {
    const a = new Subject<Ev>();
    const b = new Subject<Ev>();
    const rec = new Recorder(mergeFrontiers([a, b]));
    a.next({ kind: 'updates', updates: [['x', null, 1, 1]] });
    a.next({ kind: 'progress', upper: 3 });
    expect(rec.events, 'held: b has no progress yet').to.deep.equal([]);
    b.next({ kind: 'updates', updates: [['y', null, 1, 1]] });
    b.next({ kind: 'progress', upper: 2 });
    b.next({ kind: 'updates', updates: [['z', null, 2, 1]] });
    b.next({ kind: 'progress', upper: 4 });
    expect(rec.events).to.deep.equal([
      { kind: 'updates', updates: [['x', null, 1, 1], ['y', null, 1, 1]] },
      { kind: 'progress', upper: 2 },
      { kind: 'updates', updates: [['z', null, 2, 1]] },
      { kind: 'progress', upper: 3 },
    ]);
    // a finishing no longer holds the frontier at 3.
    a.complete();
    expect(rec.events.at(-1)).to.deep.equal({ kind: 'progress', upper: 4 });
    b.complete();
    expect(rec.completed).to.equal(true);
  });

  it('property: at each merged progress, the output so far is exactly every input update below it', async () => {
    const stream = fc.array(fc.tuple(fc.array(fc.tuple(fc.constantFrom('a', 'b'), fc.nat(2)), { maxLength: 3 }), fc.integer({ min: 1, max: 3 })), {
      maxLength: 5,
    });
    await fc.assert(
      fc.asyncProperty(fc.array(stream, { minLength: 1, maxLength: 3 }), async (specs) => {
        // Input i: windows of updates at [lower, lower + step), each closed by progress.
        const inputs: Ev[][] = specs.map((windows) => {
          const evs: Ev[] = [];
          let lower = 0;
          for (const [ups, step] of windows) {
            const upper = lower + step;
            const inWindow = ups.map(([k, off]) => [k, null, lower + (off % step), 1] as const);
            if (inWindow.length > 0) evs.push({ kind: 'updates', updates: inWindow });
            evs.push({ kind: 'progress', upper });
            lower = upper;
          }
          return evs;
        });
        // Interleave the inputs round-robin through Subjects.
        const subjects = inputs.map(() => new Subject<Ev>());
        const rec = new Recorder(mergeFrontiers(subjects as Observable<Ev>[]));
        const cursors = inputs.map(() => 0);
        for (let more = true; more; ) {
          more = false;
          inputs.forEach((evs, i) => {
            if (cursors[i]! < evs.length) {
              subjects[i]!.next(evs[cursors[i]!++]!);
              more = true;
            }
          });
        }
        const all = inputs.flat().flatMap((e) => (e.kind === 'updates' ? e.updates : []));
        let seen: (readonly [string, null, number, number])[] = [];
        let lower = -Infinity;
        for (const e of rec.events) {
          if (e.kind === 'updates') {
            for (const u of e.updates) expect(u[2]).to.be.at.least(lower === -Infinity ? 0 : lower);
            seen = seen.concat(e.updates);
            continue;
          }
          expect(e.upper).to.be.greaterThan(lower);
          const expected = all.filter((u) => u[2] < e.upper).map((u) => JSON.stringify(u)).sort();
          expect(seen.map((u) => JSON.stringify(u)).sort()).to.deep.equal(expected);
          lower = e.upper;
        }
        for (const s of subjects) s.complete();
        expect(rec.completed).to.equal(true);
        const total = rec.events.flatMap((e) => (e.kind === 'updates' ? e.updates : [])).length;
        expect(total, 'every update exactly once').to.equal(all.length);
      }),
      { numRuns: 300 },
    );
  });

  it('errors as soon as any input errors, and unsubscribes the others', () => {
    const a = new Subject<Ev>();
    const b = new Subject<Ev>();
    const rec = new Recorder(mergeFrontiers([a, b]));
    b.error(new Error('boom'));
    expect((rec.error as Error).message).to.equal('boom');
    expect(a.observed).to.equal(false);
  });

  it('unsubscribing unsubscribes every input; no inputs completes at once', async () => {
    const a = new Subject<Ev>();
    const b = new Subject<Ev>();
    const rec = new Recorder(mergeFrontiers([a, b]));
    rec.unsubscribe();
    expect(a.observed || b.observed).to.equal(false);
    expect(await lastValueFrom(mergeFrontiers<string, null>([]).pipe(toArray()))).to.deep.equal([]);
    expect(await lastValueFrom(mergeFrontiers([of<Ev>({ kind: 'progress', upper: 1 })]).pipe(toArray()))).to.deep.equal([
      { kind: 'progress', upper: 1 },
    ]);
  });
});

// Through one input, so the shared suite can drive it as a pipeable operator.
describeOperatorLifecycle<Ev, Ev>('operators/mergeFrontiers', () => (source) => mergeFrontiers([source]), {
  sample: [{ kind: 'updates', updates: [['a', null, 0, 1]] }, { kind: 'progress', upper: 1 }],
  // A malformed event (updates that are not iterable) makes its own work throw.
  breaking: [{ kind: 'updates', updates: null as unknown as Ev & [] }],
  onEarlyComplete: 'complete',
});
