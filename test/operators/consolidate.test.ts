/** consolidate(): one consolidated updates event per progress window. */
import { expect } from 'chai';
import fc from 'fast-check';
import { from, lastValueFrom, toArray } from 'rxjs';
import { consolidate } from '../../src/operators/consolidate.js';
import { consolidateUpdates } from '../../src/operators/consolidate-updates.js';
import type { ShardEvent } from '../../src/sources/shard-source.js';
import { describeOperatorLifecycle } from '../support/rx.js';

type Ev = ShardEvent<string, null>;

describe('operators/consolidate', () => {
  it('sums equal (key, val, ts) within a window and drops what cancels', async () => {
    const events: Ev[] = [
      { kind: 'updates', updates: [['a', null, 1, 1], ['b', null, 2, 1]] },
      { kind: 'updates', updates: [['a', null, 1, -1], ['b', null, 2, 2], ['c', null, 1, 1]] },
      { kind: 'progress', upper: 3 },
      { kind: 'updates', updates: [['x', null, 3, 1], ['x', null, 3, -1]] },
      { kind: 'progress', upper: 4 },
    ];
    expect(await lastValueFrom(from(events).pipe(consolidate(), toArray()))).to.deep.equal([
      { kind: 'updates', updates: [['c', null, 1, 1], ['b', null, 2, 3]] },
      { kind: 'progress', upper: 3 },
      { kind: 'progress', upper: 4 },
    ]);
  });

  it('flushes updates still buffered when the source completes', async () => {
    const events: Ev[] = [{ kind: 'updates', updates: [['a', null, 1, 1], ['a', null, 1, 1]] }];
    expect(await lastValueFrom(from(events).pipe(consolidate(), toArray()))).to.deep.equal([{ kind: 'updates', updates: [['a', null, 1, 2]] }]);
  });

  it('keeps each row of bytes and JSON keys apart by value, not by reference', () => {
    const out = consolidateUpdates<Uint8Array | object, null>([
      [new Uint8Array([1, 2]), null, 0, 1],
      [new Uint8Array([1, 2]), null, 0, 1],
      [{ b: 1, a: 2 }, null, 0, 1],
      [{ a: 2, b: 1 }, null, 0, -1],
    ]);
    expect(out).to.deep.equal([[new Uint8Array([1, 2]), null, 0, 2]]);
  });

  it('property: the same events delivered whole or split into any chunks give the same windows, equal to a naive sum', async () => {
    const update = fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.constant(null), fc.nat(3), fc.integer({ min: -2, max: 2 }));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(update, { maxLength: 6 }), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(3)), async (windows, cutSeed) => {
        // Window w holds times shifted into [4w, 4w+4), closed by progress 4w+4.
        const whole: Ev[] = [];
        const split: Ev[] = [];
        windows.forEach((w, i) => {
          const ups = w.map(([k, v, t, d]) => [k, v, 4 * i + t, d] as const);
          if (ups.length > 0) whole.push({ kind: 'updates', updates: ups });
          for (let j = 0, c = 0; j < ups.length; c++) {
            const n = (cutSeed[c % Math.max(1, cutSeed.length)] ?? 0) + 1;
            split.push({ kind: 'updates', updates: ups.slice(j, j + n) });
            j += n;
          }
          whole.push({ kind: 'progress', upper: 4 * i + 4 });
          split.push({ kind: 'progress', upper: 4 * i + 4 });
        });
        const a = await lastValueFrom(from(whole).pipe(consolidate(), toArray()));
        const b = await lastValueFrom(from(split).pipe(consolidate(), toArray()));
        expect(b).to.deep.equal(a);
        // Naive: per window, sums per (key, ts), zeros dropped.
        const naive: Ev[] = [];
        windows.forEach((w, i) => {
          const sums = new Map<string, number>();
          for (const [k, , t, d] of w) sums.set(`${4 * i + t}|${k}`, (sums.get(`${4 * i + t}|${k}`) ?? 0) + d);
          const rows = [...sums].filter(([, d]) => d !== 0).map(([id, d]) => {
            const [t, k] = id.split('|');
            return [k!, null, Number(t), d] as const;
          });
          if (rows.length > 0) naive.push({ kind: 'updates', updates: rows });
          naive.push({ kind: 'progress', upper: 4 * i + 4 });
        });
        const norm = (evs: Ev[]) =>
          evs.map((e) => (e.kind === 'updates' ? [...e.updates].map((u) => JSON.stringify(u)).sort() : e.upper));
        expect(norm(a)).to.deep.equal(norm(naive));
      }),
      { numRuns: 200 },
    );
  });
});

describeOperatorLifecycle<Ev, Ev>('operators/consolidate', () => consolidate(), {
  sample: [{ kind: 'updates', updates: [['a', null, 0, 1]] }, { kind: 'progress', upper: 1 }],
  // A symbol is not row data: consolidating it throws InvalidUsage.
  breaking: [{ kind: 'updates', updates: [[Symbol('not data') as unknown as string, null, 0, 1]] }, { kind: 'progress', upper: 11 }],
  onEarlyComplete: 'complete',
});
