/**
 * Byte assertions for storage tests.
 *
 * `expectBytes(actual, expected)` checks that `actual` is a Uint8Array with exactly the
 * bytes of `expected`. It compares with Buffer.compare, so a 1 MiB value costs one
 * memcmp rather than a million chai steps, and on failure it reports lengths and the
 * first differing offset instead of dumping both arrays.
 *
 * Example:
 * ```ts
 * expectBytes(await blob.get('k'), new Uint8Array([1, 2]));
 * ```
 */
import { expect } from 'chai';

export function expectBytes(actual: Uint8Array | undefined, expected: Uint8Array): void {
  expect(actual, 'value').to.be.instanceOf(Uint8Array);
  const a = actual as Uint8Array;
  const bufA = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const bufE = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (Buffer.compare(bufA, bufE) === 0) return;
  let i = 0;
  while (i < Math.min(bufA.length, bufE.length) && bufA[i] === bufE[i]) i++;
  expect.fail(`bytes differ: length ${bufA.length} vs expected ${bufE.length}, first difference at offset ${i}`);
}

/** `n` pseudo-random bytes (deterministic per seed, so failures reproduce). */
export function patternBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The UTF-8 bytes of `s`. */
export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
