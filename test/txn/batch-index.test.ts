/**
 * BatchIndex against the map it replaced (keyed by the shard and a string of every
 * byte): the same answers for any sequence of set / get / delete, including pointers
 * that differ in one byte the bucket hash does not sample, and equal bytes in
 * different arrays.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { bytesKey } from '../../src/location/bytes.js';
import { BatchIndex } from '../../src/txn/batch-index.js';

/** Pointers of 0–300 bytes; variants differ from a base in one position (often unsampled). */
const pointer = fc
  .tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 3 }), fc.nat(), fc.integer({ min: 0, max: 255 }))
  .map(([len, seed, at, byte]) => {
    const raw = Uint8Array.from({ length: len }, (_, i) => (i * 31 + seed) & 0xff);
    if (len > 0 && byte % 2 === 0) raw[at % len] = byte;
    return raw;
  });

const op = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), shard: fc.constantFrom('s1', 's2'), raw: pointer, value: fc.nat() }),
  fc.record({ kind: fc.constant('get' as const), shard: fc.constantFrom('s1', 's2'), raw: pointer }),
  fc.record({ kind: fc.constant('delete' as const), shard: fc.constantFrom('s1', 's2'), raw: pointer }),
);

describe('txn: BatchIndex', () => {
  it('answers every set, get and delete as a map keyed by the exact bytes does', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const idx = new BatchIndex<number>();
        const model = new Map<string, number>();
        for (const o of ops) {
          const key = `${o.shard}|${bytesKey(o.raw)}`;
          if (o.kind === 'set') {
            if (model.has(key)) continue; // set is only called for pointers not yet indexed
            idx.set(o.shard, Uint8Array.from(o.raw), o.value);
            model.set(key, o.value);
          } else if (o.kind === 'get') {
            expect(idx.get(o.shard, o.raw)).to.equal(model.get(key));
            expect(idx.has(o.shard, o.raw)).to.equal(model.has(key));
          } else {
            expect(idx.delete(o.shard, o.raw)).to.equal(model.get(key));
            model.delete(key);
          }
          expect(idx.size).to.equal(model.size);
        }
      }),
    );
  });
});
