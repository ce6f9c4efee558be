/**
 * A small deterministic PRNG for randomized tests: a printed seed replays the run.
 *
 * Example:
 * ```ts
 * const next = xorshift32(seed);
 * const pick = ids[next() % ids.length];
 * ```
 */

/** xorshift32 from `seed` (0 is replaced by a fixed non-zero seed): unsigned 32-bit integers. */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
