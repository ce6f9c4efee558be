/** materialize(): consistent contents, one view per frontier. */
import { expect } from 'chai';
import fc from 'fast-check';
import { from, lastValueFrom, toArray } from 'rxjs';
import { materialize, type MaterializedView } from '../../src/operators/materialize.js';
import type { ShardEvent } from '../../src/sources/shard-source.js';
import { describeOperatorLifecycle } from '../support/rx.js';

type Ev = ShardEvent<string, null>;

describe('operators/materialize', () => {
  it('folds a window only when its progress arrives, and earlier views never change', async () => {
    const events: Ev[] = [
      { kind: 'updates', updates: [['alice', null, 0, 100], ['bob', null, 0, 50]] },
      { kind: 'progress', upper: 1 },
      { kind: 'updates', updates: [['alice', null, 1, -30], ['bob', null, 1, 30]] },
      { kind: 'progress', upper: 2 },
      { kind: 'updates', updates: [['bob', null, 2, -80]] },
      { kind: 'progress', upper: 3 },
    ];
    const views = await lastValueFrom(from(events).pipe(materialize(), toArray()));
    expect(views.map((v) => v.upper)).to.deep.equal([1, 2, 3]);
    expect(views[0]!.toArray()).to.deep.equal([['alice', null, 100], ['bob', null, 50]]);
    expect(views[1]!.count('alice', null)).to.equal(70);
    expect(views[1]!.count('bob', null)).to.equal(80);
    expect(views[2]!.count('bob', null), 'a row whose diffs sum to 0 is gone').to.equal(0);
    expect(views[2]!.size).to.equal(1);
    expect(views[0]!.count('alice', null), 'the first view is unchanged').to.equal(100);
  });

  it('never shows half a window: updates after the last progress are not folded in', async () => {
    const events: Ev[] = [
      { kind: 'updates', updates: [['a', null, 0, 1]] },
      { kind: 'progress', upper: 1 },
      { kind: 'updates', updates: [['a', null, 1, -1]] },
    ];
    const views = await lastValueFrom(from(events).pipe(materialize(), toArray()));
    expect(views).to.have.length(1);
    expect(views[0]!.count('a', null)).to.equal(1);
  });

  it('property: each view equals the naive sum of every update below its upper, delivered whole or split', async () => {
    const update = fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.constant(null), fc.nat(2), fc.integer({ min: -2, max: 2 }));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(update, { maxLength: 5 }), { minLength: 1, maxLength: 6 }), fc.boolean(), async (windows, split) => {
        const events: Ev[] = [];
        const all: [string, number, number][] = [];
        windows.forEach((w, i) => {
          const ups = w.map(([k, v, t, d]) => [k, v, 3 * i + t, d] as const);
          if (split) for (const u of ups) events.push({ kind: 'updates', updates: [u] });
          else if (ups.length > 0) events.push({ kind: 'updates', updates: ups });
          events.push({ kind: 'progress', upper: 3 * i + 3 });
          for (const [k, , t, d] of ups) all.push([k, t, d]);
        });
        const views: MaterializedView<string, null>[] = await lastValueFrom(from(events).pipe(materialize(), toArray()));
        expect(views).to.have.length(windows.length);
        for (const v of views) {
          const sums = new Map<string, number>();
          for (const [k, t, d] of all) if (t < v.upper) sums.set(k, (sums.get(k) ?? 0) + d);
          const expected = [...sums].filter(([, d]) => d !== 0).sort();
          expect(v.toArray().map(([k, , d]) => [k, d]).sort()).to.deep.equal(expected);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describeOperatorLifecycle<Ev, unknown>('operators/materialize', () => materialize(), {
  sample: [{ kind: 'updates', updates: [['a', null, 0, 1]] }, { kind: 'progress', upper: 1 }],
  // A symbol is not row data: consolidating it throws InvalidUsage.
  breaking: [{ kind: 'updates', updates: [[Symbol('not data') as unknown as string, null, 0, 1]] }, { kind: 'progress', upper: 11 }],
  onEarlyComplete: 'complete',
});
