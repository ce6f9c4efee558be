/**
 * RowEncoder: strings go into shared slabs, yet every key and value is exactly the
 * bytes its codec's own `encode` gives, views never change once handed out, and a
 * value the codec refuses is refused with the codec's message.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Codecs } from '../../src/persist/codec.js';
import { RowEncoder } from '../../src/txn/row-encoder.js';

describe('txn: RowEncoder', () => {
  it('encodes any strings to the bytes Codecs.string gives, and earlier views stay as they were', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.fullUnicodeString(), fc.string({ unit: 'binary', maxLength: 4000 })), { maxLength: 200 }), (strings) => {
        const enc = new RowEncoder({ key: Codecs.string, val: Codecs.unit });
        const views = strings.map((s) => enc.key(s));
        // Checked after all were written: a later string never overwrote an earlier view.
        strings.forEach((s, i) => expect(Array.from(views[i]!), JSON.stringify(s)).to.deep.equal(Array.from(Codecs.string.encode(s))));
      }),
      { numRuns: 200 },
    );
  });

  it('a lone surrogate is replaced as TextEncoder does; a string longer than a slab gets its own', () => {
    const enc = new RowEncoder({ key: Codecs.string, val: Codecs.string });
    expect(Array.from(enc.key('a\ud800b'))).to.deep.equal(Array.from(Codecs.string.encode('a\ud800b')));
    // ASCII first, then a code unit past it: the bytes written for the ASCII part are redone by encodeInto.
    const mixed = ['abcé', 'x', '\u0000\u007f\u0080', 'a'.repeat(64) + 'é', 'a'.repeat(65)].map((s) => [s, enc.key(s)] as const);
    for (const [s, bytes] of mixed) expect(Array.from(bytes), JSON.stringify(s)).to.deep.equal(Array.from(Codecs.string.encode(s)));
    const long = 'é'.repeat(100_000);
    const v = enc.val(long);
    expect(v.byteLength).to.equal(200_000);
    expect(Buffer.from(v).toString('utf8')).to.equal(long);
  });

  it('a non-string is refused by the codec itself; other codecs are called as they are', () => {
    const enc = new RowEncoder({ key: Codecs.string, val: Codecs.json<unknown>() });
    expect(() => enc.key(7 as unknown as string)).to.throw(/Codecs\.string: a value must be a string/);
    expect(Array.from(enc.val({ b: 1, a: 2 }))).to.deep.equal(Array.from(Codecs.json<unknown>().encode({ a: 2, b: 1 })));
  });
});
