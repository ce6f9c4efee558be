/**
 * Stored parts and their compact columns (format version 3): a column whose entries
 * are all alike (one time, one diff, keys or values of one width) is stored as one
 * entry, and every part reads back as the columns it was written from, whichever
 * columns were compact. Parts of format version 2 (every column in full) still read;
 * a compact column that also carries bytes, or one under an older version, is refused.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { FORMAT_VERSION, Proto, encodeChecksummed } from '../../src/persist/encoding.js';
import { StoredFormatError } from '../../src/persist/errors.js';
import { decodePartColumns, decodePartData, encodeUpdateColumns, type PartColumns } from '../../src/persist/part.js';
import { UpdateColumns } from '../../src/persist/update-columns.js';

type Row = [key: Uint8Array, val: Uint8Array, time: number, diff: number];

function columnsOf(rows: readonly Row[]): UpdateColumns {
  const c = new UpdateColumns();
  for (const [k, v, t, d] of rows) c.push(k, v, t, d);
  return c;
}

function rowsOf(c: PartColumns): Row[] {
  const out: Row[] = [];
  for (let i = 0; i < c.count; i++) {
    out.push([
      c.keyData.slice(c.keyOffsets[i], c.keyOffsets[i + 1]),
      c.valData.slice(c.valOffsets[i], c.valOffsets[i + 1]),
      c.times[i]!,
      c.diffs[i]!,
    ]);
  }
  return out;
}

const plain = (rows: Row[]) => rows.map(([k, v, t, d]) => [[...k], [...v], t, Object.is(d, -0) ? '-0' : d]);

/** A part of format version 2, every column in full, as builds before version 3 wrote it. */
function version2Part(rows: readonly Row[]): Uint8Array {
  const c = columnsOf(rows);
  const bytes = (a: Uint32Array | Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return encodeChecksummed(Proto.Part, {
    formatVersion: 2,
    count: c.length,
    keyData: c.keyData(),
    keyOffsets: bytes(c.keyOffsetsView()),
    valData: c.valData(),
    valOffsets: bytes(c.valOffsetsView()),
    times: bytes(c.timesView()),
    diffs: bytes(c.diffsView()),
  });
}

describe('persist: parts (compact columns, format version 3)', () => {
  it('property: a part reads back as the rows it was written from, whichever of its columns are compact', () => {
    // Small pools, so that columns are often, but not always, all alike.
    const bytesFrom = (widths: number[]) => fc.constantFrom(...widths).chain((w) => fc.uint8Array({ minLength: w, maxLength: w }));
    const row = fc.tuple(bytesFrom([0, 3, 8]), bytesFrom([0, 0, 5]), fc.constantFrom(0, 7, 2 ** 40), fc.constantFrom(1, 1, -1, 3, -0, 0));
    fc.assert(
      fc.property(fc.array(row, { maxLength: 40 }), fc.boolean(), (rows, alike) => {
        // Half the runs: one time and one diff for every row, as a written batch has.
        const input: Row[] = alike ? rows.map(([k, v]) => [k, v, 5, 1]) : rows;
        const sealed = encodeUpdateColumns(columnsOf(input));
        expect(plain(rowsOf(decodePartColumns(sealed, 'part')))).to.deep.equal(plain(input));
        expect(decodePartData(sealed, 'part').times).to.deep.equal(input.map((r) => r[2]));
        // The same rows in full (format version 2) read back the same.
        expect(plain(rowsOf(decodePartColumns(version2Part(input), 'v2 part')))).to.deep.equal(plain(input));
      }),
      { numRuns: 300 },
    );
    // Alike means exactly alike: -0 and 0 are two diffs.
    for (const diffs of [[0, -0], [-0, 0], [-0, -0]]) {
      const input: Row[] = diffs.map((d, i) => [new Uint8Array([i]), new Uint8Array(0), 1, d]);
      expect(plain(rowsOf(decodePartColumns(encodeUpdateColumns(columnsOf(input)), 'part')))).to.deep.equal(plain(input));
    }
  });

  it('a batch of keys at one time with diff 1 and empty values stores only its keys and their offsets', () => {
    const rows: Row[] = Array.from({ length: 1000 }, (_, i) => [new TextEncoder().encode(`key-${i}`), new Uint8Array(0), 9, 1]);
    const sealed = encodeUpdateColumns(columnsOf(rows));
    const keyBytes = rows.reduce((n, [k]) => n + k.byteLength, 0);
    const m = Proto.Part.decode(sealed) as unknown as Record<string, unknown>;
    expect(m).to.include({ formatVersion: FORMAT_VERSION, hasTime: true, time: 9, hasDiff: true, diff: 1, hasValWidth: true, valWidth: 0 });
    expect(m.hasKeyWidth, 'keys of different lengths keep their offsets').to.equal(false);
    // Keys, 1,001 key offsets and a few dozen bytes of framing: no times, diffs or value offsets.
    expect(sealed.byteLength).to.be.below(keyBytes + 1001 * 4 + 64);
    expect(version2Part(rows).byteLength).to.be.above(keyBytes + 1000 * 20);
  });

  it('refuses a compact column that also carries bytes, and compact columns under an older format version', () => {
    const base = { count: 2, keyData: new Uint8Array([1, 2]), hasKeyWidth: true, keyWidth: 1, hasValWidth: true, valWidth: 0, hasDiff: true, diff: 1 };
    const ok = encodeChecksummed(Proto.Part, { ...base, formatVersion: 3, hasTime: true, time: 4 });
    expect(decodePartData(ok, 'p')).to.deep.include({ times: [4, 4], diffs: [1, 1] });
    const both = encodeChecksummed(Proto.Part, { ...base, formatVersion: 3, hasTime: true, time: 4, times: new Uint8Array(16) });
    expect(() => decodePartColumns(both, 'part p')).to.throw(StoredFormatError, /part p: its columns do not hold 2 updates/);
    const wide = encodeChecksummed(Proto.Part, { ...base, formatVersion: 3, hasTime: true, time: 4, keyWidth: 2 });
    expect(() => decodePartColumns(wide, 'part p')).to.throw(StoredFormatError, /part p: column offsets do not span the column/);
    const old = encodeChecksummed(Proto.Part, { ...base, formatVersion: 2, hasTime: true, time: 4 });
    expect(() => decodePartColumns(old, 'part p')).to.throw(StoredFormatError, /part p is corrupt .*compact columns .*says format version 2/);
  });
});
