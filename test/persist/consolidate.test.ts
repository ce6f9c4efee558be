/**
 * Consolidator's indices: `add` numbers the distinct updates in first-appearance
 * order, and `finishIndexed` names the survivors by those numbers, so a caller can
 * carry its own data per row (collection-writes keeps the decoded key and value).
 * The plain sum-equals-naive property lives in codec.test.ts, beside the part codec.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Consolidator } from '../../src/persist/consolidate.js';

const a = Uint8Array.of(1);
const b = Uint8Array.of(2);
const x = Uint8Array.of(9);

describe('persist: Consolidator indices', () => {
  it('add returns the index of the distinct update it was summed into', () => {
    const c = new Consolidator();
    expect(c.add(a, x, 0, 1)).to.equal(0);
    expect(c.add(b, x, 0, 1)).to.equal(1);
    expect(c.add(Uint8Array.of(1), Uint8Array.of(9), 0, -1), 'equal bytes, another array').to.equal(0);
    expect(c.add(a, x, 1, 1), 'another time is another update').to.equal(2);
    const { updates, indices } = c.finishIndexed();
    expect(indices).to.deep.equal([1, 2]);
    expect(updates.keys).to.deep.equal([b, a]);
    expect(updates.times).to.deep.equal([0, 1]);
    expect(updates.diffs).to.deep.equal([1, 1]);
  });

  it('property: indices are first-appearance numbers, and each kept row is the sum of the updates under its index', () => {
    const update = fc.record({
      k: fc.uint8Array({ maxLength: 2, max: 2 }),
      v: fc.uint8Array({ maxLength: 1, max: 1 }),
      t: fc.nat(2),
      d: fc.integer({ min: -2, max: 2 }),
    });
    fc.assert(
      fc.property(fc.array(update, { maxLength: 80 }), (updates) => {
        const c = new Consolidator();
        const firstSeen = new Map<string, number>();
        const sums: number[] = [];
        for (const u of updates) {
          const id = JSON.stringify([[...u.k], [...u.v], u.t]);
          const expected = firstSeen.get(id) ?? firstSeen.size;
          firstSeen.set(id, expected);
          expect(c.add(u.k, u.v, u.t, u.d)).to.equal(expected);
          sums[expected] = (sums[expected] ?? 0) + u.d;
        }
        const { updates: out, indices } = c.finishIndexed();
        expect(indices).to.deep.equal(sums.flatMap((s, i) => (s === 0 ? [] : [i])));
        expect(out.diffs).to.deep.equal(indices.map((i) => sums[i]));
        const ids = [...firstSeen.keys()];
        expect(indices.map((_, j) => JSON.stringify([[...out.keys[j]!], [...out.vals[j]!], out.times[j]]))).to.deep.equal(
          indices.map((i) => ids[i]),
        );
      }),
      { numRuns: 300 },
    );
  });
});
