/**
 * Consolidator's indices: `add` numbers the distinct updates in first-appearance
 * order, and `finishIndexed` names the survivors by those numbers, so a caller can
 * carry its own data per row (collection-writes keeps the decoded key and value).
 * The plain sum-equals-naive property lives in codec.test.ts, beside the part codec.
 * And the hash spreads updates: distinct updates rarely share one, whatever views
 * their bytes are.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ColumnConsolidator, Consolidator, hashUpdate } from '../../src/persist/consolidate.js';
import { decodePartColumns, encodePartData } from '../../src/persist/part.js';
import { partDataOf } from '../support/persist.js';
import { UpdateColumns } from '../../src/persist/update-columns.js';

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

describe('persist: hashUpdate', () => {
  it('distinct keys with empty values, read back as views of one buffer, hash apart', () => {
    // The shape of a keys-only write buffered in columns: every value is a zero-length
    // view of an empty slab (node's zlib.crc32 once returned 0 for those, whatever
    // the seed, so every such update hashed alike).
    const cols = new UpdateColumns();
    const enc = new TextEncoder();
    for (let i = 0; i < 2000; i++) cols.push(enc.encode(`k${i}.7`), new Uint8Array(0), 0, 1);
    const hashes = new Set<number>();
    for (let i = 0; i < cols.length; i++) hashes.add(hashUpdate(cols.key(i), cols.val(i), cols.time(i)));
    expect(hashes.size).to.be.at.least(1999);
  });

  it('separates key from value, and mixes in the time', () => {
    const ab = Uint8Array.of(97, 98);
    const c = Uint8Array.of(99);
    expect(hashUpdate(ab, c, 0)).to.not.equal(hashUpdate(Uint8Array.of(97), Uint8Array.of(98, 99), 0));
    expect(hashUpdate(ab, c, 1)).to.not.equal(hashUpdate(ab, c, 2));
    expect(hashUpdate(ab, c, 2 ** 40)).to.not.equal(hashUpdate(ab, c, 2 ** 41));
    expect(hashUpdate(new Uint8Array(0), new Uint8Array(0), 5)).to.equal(hashUpdate(new Uint8Array(8).subarray(3, 3), new Uint8Array(0), 5));
  });
});

describe('persist: ColumnConsolidator', () => {
  it('property: fed rows of stored parts by index, it gives what Consolidator gives fed the same rows as arrays', () => {
    // Short and long keys and values, so both hash paths (JS and zlib) and both copy
    // paths (byte loop and bulk) run; few distinct ones, so rows sum and cancel.
    const bytes = fc.oneof(fc.constantFrom(Uint8Array.of(), Uint8Array.of(1), Uint8Array.of(1, 2)), fc.uint8Array({ minLength: 30, maxLength: 90 }));
    const row = fc.tuple(bytes, bytes, fc.nat(3), fc.integer({ min: -2, max: 2 }));
    fc.assert(
      fc.property(fc.array(fc.array(row, { maxLength: 25 }), { maxLength: 4 }), fc.nat(3), (parts, since) => {
        const naive = new Consolidator();
        const columns = new ColumnConsolidator();
        for (const rows of parts) {
          const data = partDataOf(rows);
          const c = decodePartColumns(encodePartData(data), 'test part');
          for (let i = 0; i < c.count; i++) {
            columns.add(c, i, Math.max(c.times[i]!, since), c.diffs[i]!);
            naive.add(data.keys[i]!, data.vals[i]!, Math.max(data.times[i]!, since), data.diffs[i]!);
          }
        }
        const want = naive.finish();
        const got = columns.finish();
        const rowsOf = (n: number, key: (i: number) => Uint8Array, val: (i: number) => Uint8Array, t: (i: number) => number, d: (i: number) => number) =>
          Array.from({ length: n }, (_, i) => [[...key(i)], [...val(i)], t(i), d(i)]);
        expect(rowsOf(got.length, (i) => got.key(i), (i) => got.val(i), (i) => got.time(i), (i) => got.diff(i))).to.deep.equal(
          rowsOf(want.times.length, (i) => want.keys[i]!, (i) => want.vals[i]!, (i) => want.times[i]!, (i) => want.diffs[i]!),
        );
      }),
      { numRuns: 300 },
    );
  });
});
