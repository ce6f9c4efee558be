/**
 * A listen's one-pass decode of a stored part (appendListenUpdates) against the
 * naive recomputation it replaced: decode the part into per-update arrays, apply the
 * part's rewrite and keep bounds, filter by the listen's `t > asOf && t >= frontier`,
 * then decode each key and value with the codecs.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Codecs, type Codec, type ShardCodecs } from '../../src/persist/codec.js';
import { float64sToBytes, uint32sToBytes } from '../../src/persist/columns.js';
import { FORMAT_VERSION, Proto, encodeChecksummed } from '../../src/persist/encoding.js';
import { StoredFormatError } from '../../src/persist/errors.js';
import { appendListenUpdates } from '../../src/persist/fetch.js';
import { decodePartColumns, decodePartData, encodePartData, interpretPart, type HollowPart } from '../../src/persist/part.js';
import type { Update } from '../../src/persist/update.js';

function naive<K, V>(bytes: Uint8Array, part: HollowPart, asOf: number, frontier: number, codecs: ShardCodecs<K, V>): Update<K, V>[] {
  const data = interpretPart(part, decodePartData(bytes, 'part'));
  const out: Update<K, V>[] = [];
  for (let i = 0; i < data.times.length; i++) {
    const t = data.times[i]!;
    if (t <= asOf || t < frontier) continue;
    out.push([codecs.key.decode(data.keys[i]!), codecs.val.decode(data.vals[i]!), t, data.diffs[i]!]);
  }
  return out;
}

function onePass<K, V>(bytes: Uint8Array, part: HollowPart, asOf: number, frontier: number, codecs: ShardCodecs<K, V>): Update<K, V>[] {
  const out: Update<K, V>[] = [];
  appendListenUpdates(decodePartColumns(bytes, 'part'), part, asOf, frontier, codecs, out);
  return out;
}

/** A codec without `decodeFrom`: readers fall back to decoding a view. */
const upperCase: Codec<string> = {
  name: 'upper',
  encode: (s) => Codecs.string.encode(s.toUpperCase()),
  decode: (b) => Codecs.string.decode(b),
};

const rows = fc.array(fc.tuple(fc.string({ unit: 'grapheme', maxLength: 6 }), fc.integer({ min: 0, max: 12 }), fc.integer({ min: -3, max: 3 })), {
  maxLength: 40,
});
const bounds = fc.record({
  tsRewrite: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }),
  keep: fc.option(
    fc.tuple(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 12 })).map(([a, b]) => ({ lower: Math.min(a, b), upper: Math.max(a, b) })),
    { nil: undefined },
  ),
  asOf: fc.integer({ min: -1, max: 12 }),
  frontier: fc.integer({ min: 0, max: 13 }),
});

describe('persist: a listen decodes a stored part in one pass', () => {
  for (const [name, codecs, toRow] of [
    ['string keys, unit values', { key: Codecs.string, val: Codecs.unit }, (k: string) => [k, null] as const],
    ['json keys, bytes values', { key: Codecs.json<{ k: string }>(), val: Codecs.bytes }, (k: string) => [{ k }, Codecs.string.encode(k)] as const],
    ['a codec without decodeFrom', { key: upperCase, val: Codecs.string }, (k: string) => [k, k] as const],
  ] as const) {
    it(`delivers exactly what the naive decode, rewrite, keep and filter deliver (${name})`, () => {
      fc.assert(
        fc.property(rows, bounds, (rs, { tsRewrite, keep, asOf, frontier }) => {
          const c = codecs as ShardCodecs<unknown, unknown>;
          const data = {
            keys: rs.map(([k]) => c.key.encode(toRow(k)[0])),
            vals: rs.map(([k]) => c.val.encode(toRow(k)[1])),
            times: rs.map(([, t]) => t),
            diffs: rs.map(([, , d]) => d),
          };
          const bytes = encodePartData(data);
          const part: HollowPart = { inline: bytes, encodedSizeBytes: bytes.byteLength, updateCount: rs.length, tsRewrite, keep };
          expect(onePass(bytes, part, asOf, frontier, c)).to.deep.equal(naive(bytes, part, asOf, frontier, c));
        }),
      );
    });
  }

  it('string keys decode non-ASCII text exactly, and refuse invalid UTF-8 like decode does', () => {
    const keys = ['plain', 'grüße', '日本', '🙂', ''].map((k) => Codecs.string.encode(k));
    keys.push(new Uint8Array([0x61, 0xff, 0x62]));
    const data = { keys, vals: keys.map(() => new Uint8Array(0)), times: keys.map(() => 1), diffs: keys.map(() => 1) };
    const bytes = encodePartData(data);
    const part: HollowPart = { inline: bytes, encodedSizeBytes: bytes.byteLength, updateCount: keys.length };
    const cols = decodePartColumns(bytes, 'part');
    const out: Update<string, null>[] = [];
    expect(() => appendListenUpdates(cols, part, 0, 0, { key: Codecs.string, val: Codecs.unit }, out)).to.throw(TypeError);
    expect(out.map(([k]) => k)).to.deep.equal(['plain', 'grüße', '日本', '🙂', '']);
  });

  it('refuses a part whose offsets run backwards, naming it', () => {
    const bytes = encodePartData({ keys: [new Uint8Array([1]), new Uint8Array([2])], vals: [new Uint8Array(0), new Uint8Array(0)], times: [1, 1], diffs: [1, 1] });
    const cols = decodePartColumns(bytes, 'p');
    expect(Array.from(cols.keyOffsets)).to.deep.equal([0, 1, 2]);
    const broken = encodeWithKeyOffsets(bytes, [0, 3, 2]);
    expect(() => decodePartColumns(broken, 'part p9')).to.throw(StoredFormatError, /part p9.*offsets/);
  });
});

/** `bytes` (an encoded part) with its key offsets replaced, re-sealed as a valid part. */
function encodeWithKeyOffsets(bytes: Uint8Array, offsets: number[]): Uint8Array {
  const d = decodePartData(bytes, 'p');
  // encodePartData derives offsets from the keys, so rebuild the encoding by hand.
  return encodeRaw(d.keys, offsets, d.vals, d.times, d.diffs);
}

function encodeRaw(keys: Uint8Array[], keyOffsets: number[], vals: Uint8Array[], times: number[], diffs: number[]): Uint8Array {
  const keyData = new Uint8Array(keys.reduce((n, k) => n + k.byteLength, 0));
  let at = 0;
  for (const k of keys) {
    keyData.set(k, at);
    at += k.byteLength;
  }
  return encodeChecksummed(Proto.Part, {
    formatVersion: FORMAT_VERSION,
    count: keys.length,
    keyData,
    keyOffsets: uint32sToBytes(Uint32Array.from(keyOffsets)),
    valData: new Uint8Array(0),
    valOffsets: uint32sToBytes(new Uint32Array(vals.length + 1)),
    times: float64sToBytes(times),
    diffs: float64sToBytes(diffs),
  });
}
