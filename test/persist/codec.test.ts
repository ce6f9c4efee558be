import { expect } from 'chai';
import fc from 'fast-check';
import { InvalidArgument } from '../../src/persist/errors.js';
import { Codecs } from '../../src/persist/index.js';
import { consolidatePartData } from '../../src/persist/consolidate.js';
import { decodePartData, encodePartData, type PartData } from '../../src/persist/part.js';

describe('persist: codecs and parts', () => {
  it('the string codec round-trips any string, ASCII or not', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 100 }), (s) => {
        expect(Codecs.string.decode(Codecs.string.encode(s))).to.equal(s);
      }),
    );
    expect(Codecs.string.decode(Codecs.string.encode('grüße, 世界'))).to.equal('grüße, 世界');
  });

  it('property: the string codec decodes a range where it lies (decodeFrom) as decode does its copy, for every short length and past it', () => {
    const text = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 30 }), fc.stringMatching(/^[ -~]{0,18}$/));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 8 }), text, fc.uint8Array({ maxLength: 8 }), (before, str, after) => {
        const bytes = Codecs.string.encode(str);
        const data = new Uint8Array([...before, ...bytes, ...after]);
        const got = Codecs.string.decodeFrom!(data, before.length, before.length + bytes.length);
        expect(got).to.equal(str);
        expect(got).to.equal(Codecs.string.decode(data.slice(before.length, before.length + bytes.length)));
      }),
      { numRuns: 500 },
    );
    // Every length the short path builds by hand, and the first past it.
    for (let n = 0; n <= 17; n++) {
      const str = 'abcdefghijklmnopqr'.slice(0, n);
      expect(Codecs.string.decodeFrom!(Codecs.string.encode(`__${str}__`), 2, 2 + n)).to.equal(str);
    }
    expect(() => Codecs.string.decodeFrom!(new Uint8Array([0x61, 0xff, 0x62]), 0, 3), 'not UTF-8').to.throw(TypeError);
  });

  it('the string codec rejects bytes that are not UTF-8', () => {
    expect(() => Codecs.string.decode(new Uint8Array([0x61, 0xff]))).to.throw(TypeError);
  });

  it('json encodes equal objects to equal bytes whatever their key order', () => {
    const json = Codecs.json<Record<string, number>>();
    expect(Buffer.from(json.encode({ a: 1, b: 2 })).equals(Buffer.from(json.encode({ b: 2, a: 1 })))).to.equal(true);
    expect(json.decode(json.encode({ b: 2, a: 1 }))).to.deep.equal({ a: 1, b: 2 });
  });

  it('json refuses what JSON cannot carry with an InvalidArgument instead of a TypeError or a changed value', () => {
    const json = Codecs.json('rows');
    expect(() => json.encode({ n: 5n })).to.throw(InvalidArgument, /Codecs.json \(rows\): cannot encode field "n", which is a bigint 5n/);
    expect(() => json.encode([1, NaN])).to.throw(InvalidArgument, /NaN/);
    expect(() => json.encode(Infinity)).to.throw(InvalidArgument, /cannot encode a value Infinity/);
    expect(() => json.encode(undefined)).to.throw(InvalidArgument, /cannot encode a value undefined/);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => json.encode(cycle)).to.throw(InvalidArgument, /field "self", which is an object that contains itself/);
    // Dates still go through their toJSON.
    expect(json.decode(json.encode({ at: new Date(0) }))).to.deep.equal({ at: '1970-01-01T00:00:00.000Z' });
  });

  it('string, bytes and unit refuse values of the wrong kind with an InvalidArgument naming the kind', () => {
    expect(() => Codecs.string.encode(5 as never)).to.throw(InvalidArgument, 'Codecs.string: a value must be a string, got 5');
    expect(() => Codecs.bytes.encode('x' as never)).to.throw(InvalidArgument, /got a string "x"/);
    expect(() => Codecs.unit.encode({} as never)).to.throw(InvalidArgument, /got an object/);
  });

  it('unit encodes null as no bytes and refuses anything else', () => {
    expect(Codecs.unit.encode(null)).to.have.length(0);
    expect(() => Codecs.unit.decode(new Uint8Array([1]))).to.throw(/no bytes/);
  });

  const partData = fc
    .array(
      fc.record({
        k: fc.uint8Array({ maxLength: 6 }),
        v: fc.uint8Array({ maxLength: 3 }),
        t: fc.nat(5),
        d: fc.integer({ min: -3, max: 3 }),
      }),
      { maxLength: 60 },
    )
    .map((rows): PartData => ({
      keys: rows.map((r) => r.k),
      vals: rows.map((r) => r.v),
      times: rows.map((r) => r.t),
      diffs: rows.map((r) => r.d),
    }));

  it('parts round-trip through their stored (columnar) form', () => {
    fc.assert(
      fc.property(partData, (data) => {
        const back = decodePartData(encodePartData(data), 'test part');
        expect(back.keys.map((k) => [...k])).to.deep.equal(data.keys.map((k) => [...k]));
        expect(back.vals.map((v) => [...v])).to.deep.equal(data.vals.map((v) => [...v]));
        expect(back.times).to.deep.equal(data.times);
        expect(back.diffs).to.deep.equal(data.diffs);
      }),
    );
  });

  it('consolidation equals a naive sum per (key, val, time), and is the same delivered whole or split', () => {
    const id = (k: Uint8Array, v: Uint8Array, t: number) => JSON.stringify([[...k], [...v], t]);
    const naive = (d: PartData) => {
      const m = new Map<string, number>();
      for (let i = 0; i < d.times.length; i++) {
        const key = id(d.keys[i]!, d.vals[i]!, d.times[i]!);
        m.set(key, (m.get(key) ?? 0) + d.diffs[i]!);
      }
      return new Map([...m].filter(([, x]) => x !== 0));
    };
    const asMap = (d: PartData) => {
      const m = new Map<string, number>();
      for (let i = 0; i < d.times.length; i++) {
        const key = id(d.keys[i]!, d.vals[i]!, d.times[i]!);
        expect(m.has(key), 'each update appears once').to.equal(false);
        m.set(key, d.diffs[i]!);
      }
      return m;
    };
    fc.assert(
      fc.property(partData, fc.nat(60), (data, cut) => {
        const whole = consolidatePartData(data);
        expect(asMap(whole)).to.deep.equal(naive(data));
        const slice = (from: number, to?: number): PartData => ({
          keys: data.keys.slice(from, to),
          vals: data.vals.slice(from, to),
          times: data.times.slice(from, to),
          diffs: data.diffs.slice(from, to),
        });
        const first = consolidatePartData(slice(0, cut));
        const second = consolidatePartData(slice(cut));
        const rejoined = consolidatePartData({
          keys: [...first.keys, ...second.keys],
          vals: [...first.vals, ...second.vals],
          times: [...first.times, ...second.times],
          diffs: [...first.diffs, ...second.diffs],
        });
        expect(asMap(rejoined)).to.deep.equal(asMap(whole));
      }),
    );
  });
});
