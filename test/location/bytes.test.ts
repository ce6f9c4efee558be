/**
 * bytesKey: one code unit per byte, equal exactly for byte-equal arrays, whatever
 * memory the array views.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { bytesKey } from '../../src/location/bytes.js';

describe('location/bytes: bytesKey', () => {
  it('maps every byte value to the code unit with that value (0x80–0x9f too)', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const key = bytesKey(all);
    expect(key).to.have.length(256);
    for (let i = 0; i < 256; i++) expect(key.charCodeAt(i), `byte ${i}`).to.equal(i);
  });

  it('reads only the viewed bytes of a subarray or Buffer', () => {
    const backing = Uint8Array.of(9, 1, 2, 9);
    expect(bytesKey(backing.subarray(1, 3))).to.equal(bytesKey(Uint8Array.of(1, 2)));
    expect(bytesKey(Buffer.from([1, 2]))).to.equal(bytesKey(Uint8Array.of(1, 2)));
    expect(bytesKey(new Uint8Array(0))).to.equal('');
  });

  it('property: keys are equal iff the bytes are equal', () => {
    const bytes = fc.uint8Array({ maxLength: 6, max: 3 });
    fc.assert(
      fc.property(bytes, bytes, (a, b) => {
        const sameBytes = a.length === b.length && a.every((x, i) => x === b[i]);
        expect(bytesKey(a) === bytesKey(b)).to.equal(sameBytes);
      }),
      { numRuns: 500 },
    );
  });
});
