/**
 * UpdateColumns, the columnar buffer batches are built in: pushed rows read back as
 * pushed across slab growth, a string field as its UTF-8, the caller's arrays are
 * copied (so it may reuse them), truncate takes pushes back,
 * clear() keeps the capacity for the next batch, and its columns encode to the same
 * part bytes as the row form; a range of a decoded part appends in bulk as it would row
 * by row. consolidateColumns hands back the very buffer when
 * nothing sums, and a consolidated copy otherwise.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Codecs } from '../../src/persist/codec.js';
import { consolidateColumns, consolidatePartData } from '../../src/persist/consolidate.js';
import { decodePartColumns, decodePartData, encodePartData, encodeUpdateColumns, type PartData } from '../../src/persist/part.js';
import { ColumnsPool, UpdateColumns } from '../../src/persist/update-columns.js';
import { partDataOf } from '../support/persist.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

function rowsOf(c: UpdateColumns): [string, number[], number, number][] {
  const out: [string, number[], number, number][] = [];
  for (let i = 0; i < c.length; i++) out.push([new TextDecoder().decode(c.key(i)), [...c.val(i)], c.time(i), c.diff(i)]);
  return out;
}

function columnsOf(data: PartData): UpdateColumns {
  const c = new UpdateColumns();
  for (let i = 0; i < data.times.length; i++) c.push(data.keys[i]!, data.vals[i]!, data.times[i]!, data.diffs[i]!);
  return c;
}

describe('persist: UpdateColumns (the columnar batch buffer)', () => {
  it('rows read back as pushed across many slab and column growths, with their byte count', () => {
    const c = new UpdateColumns();
    const expected: [string, number[], number, number][] = [];
    let bytes = 0;
    for (let i = 0; i < 3000; i++) {
      const key = `key-${i}-${'x'.repeat(i % 50)}`;
      const val = Array.from({ length: i % 300 }, (_, j) => (i + j) & 0xff);
      c.push(utf8(key), Uint8Array.from(val), i % 7, i % 2 === 0 ? 1 : -2);
      expected.push([key, val, i % 7, i % 2 === 0 ? 1 : -2]);
      bytes += utf8(key).byteLength + val.length;
    }
    expect(c.length).to.equal(3000);
    expect(c.dataBytes).to.equal(bytes);
    expect(rowsOf(c)).to.deep.equal(expected);
  });

  it('copies the pushed bytes: a caller reusing one array for every row does not change what was pushed', () => {
    const c = new UpdateColumns();
    const scratch = new Uint8Array(4);
    for (let i = 0; i < 3; i++) {
      scratch.fill(i);
      c.push(utf8(`k${i}`), scratch, 0, 1);
    }
    scratch.fill(9);
    expect([0, 1, 2].map((i) => [...c.val(i)])).to.deep.equal([[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2]]);
  });

  it('property: a string field is stored as exactly the bytes Codecs.string encodes it to, beside byte fields, with push and rowBytes counting them', () => {
    const field = fc.oneof(
      fc.string(),
      fc.fullUnicodeString(),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.uint8Array({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(field, field), { maxLength: 150 }), (rows) => {
        const c = new UpdateColumns();
        const bytesOf = (f: string | Uint8Array) => (typeof f === 'string' ? Codecs.string.encode(f) : f);
        rows.forEach(([k, v], i) => {
          const stored = c.push(k, v, i, 1);
          expect(stored).to.equal(bytesOf(k).byteLength + bytesOf(v).byteLength);
          expect(c.rowBytes(i)).to.equal(stored);
        });
        // Read back once all are in: a later row never overwrote an earlier one.
        rows.forEach(([k, v], i) => {
          expect([...c.key(i)], JSON.stringify(k)).to.deep.equal([...bytesOf(k)]);
          expect([...c.val(i)], JSON.stringify(v)).to.deep.equal([...bytesOf(v)]);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('truncate(n) takes back the last pushes: the next push lands where they were', () => {
    const c = new UpdateColumns();
    c.push('a', 'x', 1, 1);
    c.push('bb', 'yy', 1, 1);
    c.push('ccc', 'zzz', 1, 1);
    c.truncate(1);
    expect(c.length).to.equal(1);
    expect(c.dataBytes).to.equal(2);
    c.push('d', 'w', 2, -1);
    expect(rowsOf(c)).to.deep.equal([
      ['a', [...utf8('x')], 1, 1],
      ['d', [...utf8('w')], 2, -1],
    ]);
    expect(() => c.truncate(3)).to.throw(RangeError, /truncate\(3\) of 2/);
  });

  it('ColumnsPool hands a given-back buffer out again, empty, and keeps only a few small ones', () => {
    const pool = new ColumnsPool(2, 64 * 1024);
    const a = pool.take();
    for (let i = 0; i < 500; i++) a.push(`k${i}`, 'v', 1, 1);
    pool.give(a);
    const again = pool.take();
    expect(again, 'the given-back buffer').to.equal(a);
    expect(again.length).to.equal(0);
    expect(pool.take(), 'a new one once the pool is empty').to.not.equal(a);
    const big = new UpdateColumns();
    big.push(new Uint8Array(100_000), '', 0, 1);
    pool.give(big);
    expect(pool.take(), 'too big to keep').to.not.equal(big);
    const kept = [pool.take(), pool.take(), pool.take()];
    for (const c of kept) pool.give(c);
    expect([pool.take(), pool.take()]).to.have.members(kept.slice(0, 2));
    expect(kept, 'only two kept').to.not.include(pool.take());
  });

  it('clear() empties it and the next batch reuses the grown slabs', () => {
    const c = new UpdateColumns();
    for (let i = 0; i < 1000; i++) c.push(utf8(`a${i}`), new Uint8Array(100), 1, 1);
    const slab = c.valData().buffer;
    c.clear();
    expect(c.length).to.equal(0);
    expect(c.dataBytes).to.equal(0);
    for (let i = 0; i < 1000; i++) c.push(utf8(`b${i}`), new Uint8Array(100).fill(i & 0xff), 2, -1);
    expect(c.valData().buffer).to.equal(slab);
    expect(rowsOf(c)[999]).to.deep.equal(['b999', new Array(100).fill(999 & 0xff), 2, -1]);
  });

  it('property: encoded straight from its columns it is the same part as the row form, and decodes to the rows', () => {
    const row = fc.tuple(fc.uint8Array({ maxLength: 12 }), fc.uint8Array({ maxLength: 12 }), fc.nat(1000), fc.integer({ min: -3, max: 3 }));
    fc.assert(
      fc.property(fc.array(row, { maxLength: 60 }), (rows) => {
        const data = partDataOf(rows);
        const cols = columnsOf(data);
        const fromColumns = encodeUpdateColumns(cols);
        expect([...fromColumns]).to.deep.equal([...encodePartData(data)]);
        // Any range of rows encodes as the part of just those rows.
        const from = Math.floor(rows.length / 3);
        const to = rows.length - Math.floor(rows.length / 4);
        const slice: PartData = {
          keys: data.keys.slice(from, to),
          vals: data.vals.slice(from, to),
          times: data.times.slice(from, to),
          diffs: data.diffs.slice(from, to),
        };
        expect([...encodeUpdateColumns(cols, from, to)]).to.deep.equal([...encodePartData(slice)]);
        const back = decodePartData(fromColumns, 'test part');
        expect(back.times).to.deep.equal(data.times);
        expect(back.diffs).to.deep.equal(data.diffs);
        expect(back.keys.map((k) => [...k])).to.deep.equal(data.keys.map((k) => [...k]));
        expect(back.vals.map((v) => [...v])).to.deep.equal(data.vals.map((v) => [...v]));
      }),
    );
  });

  it('property: pushRange of a decoded part appends exactly those rows, as pushing them one by one would; raiseTimes raises only below the floor', () => {
    const row = fc.tuple(fc.uint8Array({ maxLength: 12 }), fc.uint8Array({ maxLength: 12 }), fc.nat(1000), fc.integer({ min: -3, max: 3 }));
    fc.assert(
      fc.property(fc.array(row, { maxLength: 40 }), fc.array(row, { maxLength: 40 }), fc.nat(), fc.nat(), fc.nat(1000), (before, stored, a, b, floor) => {
        const part = partDataOf(stored);
        const src = decodePartColumns(encodePartData(part), 'test part');
        const from = stored.length === 0 ? 0 : a % (stored.length + 1);
        const to = from + (stored.length - from === 0 ? 0 : b % (stored.length - from + 1));
        const bulk = new UpdateColumns();
        const oneByOne = new UpdateColumns();
        for (const [k, v, t, d] of before) {
          bulk.push(k, v, t, d);
          oneByOne.push(k, v, t, d);
        }
        bulk.pushRange(src, from, to);
        bulk.raiseTimes(before.length, floor);
        for (let i = from; i < to; i++) oneByOne.push(part.keys[i]!, part.vals[i]!, Math.max(part.times[i]!, floor), part.diffs[i]!);
        expect(rowsOf(bulk)).to.deep.equal(rowsOf(oneByOne));
        expect(bulk.dataBytes).to.equal(oneByOne.dataBytes);
        expect([...encodeUpdateColumns(bulk)]).to.deep.equal([...encodeUpdateColumns(oneByOne)]);
      }),
    );
  });
});

describe('persist: consolidateColumns', () => {
  it('hands back the same buffer, uncopied, when no two rows sum and no diff is zero', () => {
    const c = new UpdateColumns();
    c.push(utf8('a'), utf8('x'), 0, 1);
    c.push(utf8('a'), utf8('y'), 0, 1);
    c.push(utf8('a'), utf8('x'), 1, 1);
    expect(consolidateColumns(c)).to.equal(c);
  });

  it('sums equal rows and drops zeros into a new buffer, leaving the input as it was', () => {
    const c = new UpdateColumns();
    c.push(utf8('a'), utf8('x'), 0, 1);
    c.push(utf8('b'), utf8('x'), 0, 1);
    c.push(utf8('a'), utf8('x'), 0, 2);
    c.push(utf8('b'), utf8('x'), 0, -1);
    c.push(utf8('c'), utf8('x'), 0, 0);
    const out = consolidateColumns(c);
    expect(out).to.not.equal(c);
    expect(rowsOf(out)).to.deep.equal([['a', [120], 0, 3]]);
    expect(c.length).to.equal(5);
  });

  it('property: the same rows as consolidating the row form', () => {
    const row = fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.constantFrom('', 'x'), fc.nat(2), fc.integer({ min: -2, max: 2 }));
    fc.assert(
      fc.property(fc.array(row, { maxLength: 40 }), (rows) => {
        const data = partDataOf(rows.map(([k, v, t, d]) => [utf8(k), utf8(v), t, d] as const));
        expect(rowsOf(consolidateColumns(columnsOf(data)))).to.deep.equal(rowsOf(columnsOf(consolidatePartData(data))));
      }),
    );
  });
});
