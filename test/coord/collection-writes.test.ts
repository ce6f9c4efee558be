/**
 * Writes by collection: rows are checked on arrival, and merging consolidates per
 * collection by encoded key and value — the same result however the rows were split
 * between writes, and equal to a naive per-(collection, key, value) sum.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { checkWrites, mergeWrites, type CheckedWrites } from '../../src/coord/collection-writes.js';
import { Codecs, InvalidUsage } from '../../src/persist/index.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import { RowEncoder } from '../../src/txn/row-encoder.js';

// Through a RowEncoder, as group commit checks writes: strings into shared slabs.
const CODECS = new RowEncoder({ key: Codecs.string, val: Codecs.string });
const IDS = [newShardId(), newShardId()] as const;

type Flat = [id: ShardId, key: string, val: string, diff: number];

function flatten(w: CheckedWrites<string, string>): Flat[] {
  const out: Flat[] = [];
  for (const [id, rows] of w) for (const r of rows) out.push([id, r.key, r.val, r.diff]);
  return out.sort((x, y) => (JSON.stringify(x.slice(0, 3)) < JSON.stringify(y.slice(0, 3)) ? -1 : 1));
}

function naive(rows: Flat[]): Flat[] {
  const sums = new Map<string, Flat>();
  for (const [id, k, v, d] of rows) {
    const at = JSON.stringify([id, k, v]);
    const prev = sums.get(at);
    if (prev) prev[3] += d;
    else sums.set(at, [id, k, v, d]);
  }
  return [...sums.values()].filter((r) => r[3] !== 0).sort((x, y) => (JSON.stringify(x.slice(0, 3)) < JSON.stringify(y.slice(0, 3)) ? -1 : 1));
}

describe('coord: writes by collection', () => {
  it('checks rows on arrival: a bad diff or collection id is refused, naming it', () => {
    expect(() => checkWrites({ [IDS[0]]: [['k', 'v', 0.5]] }, CODECS)).to.throw(InvalidUsage, /diff of row 0 written to/);
    expect(() => checkWrites({ nope: [['k', 'v', 1]] }, CODECS)).to.throw(InvalidUsage);
  });

  it('key and value boundaries matter: ("ab","c") and ("a","bc") stay apart', () => {
    const merged = mergeWrites([checkWrites({ [IDS[0]]: [['ab', 'c', 1], ['a', 'bc', 1]] }, CODECS)]);
    expect(flatten(merged)).to.have.length(2);
  });

  it('a collection whose rows cancel out stays in the merge, with no rows', () => {
    const merged = mergeWrites([checkWrites({ [IDS[0]]: [['k', 'v', 1]] }, CODECS), checkWrites({ [IDS[0]]: [['k', 'v', -1]] }, CODECS)]);
    expect([...merged.keys()]).to.deep.equal([IDS[0]]);
    expect(merged.get(IDS[0])).to.deep.equal([]);
  });

  it('merged rows come in first-appearance order and keep the decoded key and value first written', () => {
    const json = new RowEncoder({ key: Codecs.json<Record<string, number>>(), val: Codecs.string });
    const first = { b: 1, a: 2 };
    const merged = mergeWrites([
      checkWrites({ [IDS[0]]: [[first, 'x', 1], [{ z: 0 }, 'x', 1]] }, json),
      checkWrites({ [IDS[1]]: [[{ y: 0 }, 'x', 1]], [IDS[0]]: [[{ a: 2, b: 1 }, 'x', 1]] }, json),
    ]);
    expect([...merged.keys()]).to.deep.equal([IDS[0], IDS[1]]);
    const rows = merged.get(IDS[0])!;
    expect(rows.map((r) => [r.key, r.diff])).to.deep.equal([[first, 2], [{ z: 0 }, 1]]);
    expect(rows[0]!.key, 'the very object first written').to.equal(first);
  });

  it('property: merging equals a naive sum, however the rows are split between writes', () => {
    const row = fc.tuple(fc.constantFrom(...IDS), fc.constantFrom('a', 'b', 'c'), fc.constantFrom('x', 'y'), fc.integer({ min: -3, max: 3 }));
    fc.assert(
      fc.property(fc.array(row, { maxLength: 30 }), fc.array(fc.nat({ max: 29 }), { maxLength: 5 }), (rows, cuts) => {
        const points = [...new Set([0, ...cuts.filter((c) => c < rows.length), rows.length])].sort((x, y) => x - y);
        const writes = [];
        for (let i = 0; i + 1 < points.length; i++) {
          const part = new Map<ShardId, [string, string, number][]>();
          for (const [id, k, v, d] of rows.slice(points[i], points[i + 1])) {
            if (!part.has(id)) part.set(id, []);
            part.get(id)!.push([k, v, d]);
          }
          writes.push(checkWrites(part, CODECS));
        }
        const whole = mergeWrites([
          checkWrites(new Map(IDS.map((id) => [id, rows.filter((r) => r[0] === id).map(([, k, v, d]) => [k, v, d] as const)])), CODECS),
        ]);
        expect(flatten(mergeWrites(writes))).to.deep.equal(naive(rows));
        expect(flatten(whole)).to.deep.equal(naive(rows));
      }),
      { numRuns: 300 },
    );
  });
});
