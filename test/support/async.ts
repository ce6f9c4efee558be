/**
 * Promise helpers for tests that step concurrent code by hand:
 * - `flush(turns)` lets queued promise callbacks run (no timers involved);
 * - `observe(p)` shows whether `p` settled, and how, without awaiting it;
 * - `rejection(p)` is the error `p` rejected with, for checks that want their own
 *   labels (`expectReject` in persist.ts checks the type itself);
 * - `waitFor(cond)` polls (every 5 ms, on real timers) until `cond()` holds, for
 *   effects that land in the background, such as a reader released after teardown.
 *
 * Example:
 * ```ts
 * const waiting = observe(locks.acquire([a]));
 * await flush();
 * expect(waiting.settled).to.equal(false);
 * ```
 */
import { expect } from 'chai';

/** Lets `turns` rounds of the microtask queue run. */
export async function flush(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

export interface Observed<T> {
  readonly settled: boolean;
  /** The value it resolved with (undefined until then). */
  readonly value: T | undefined;
  /** The reason it rejected with (undefined unless it rejected). */
  readonly error: unknown;
  readonly promise: Promise<T>;
}

/** `p`'s state, updated as it settles. */
export function observe<T>(p: Promise<T>): Observed<T> {
  const state = { settled: false, value: undefined as T | undefined, error: undefined as unknown, promise: p };
  p.then(
    (v) => {
      state.settled = true;
      state.value = v;
    },
    (e: unknown) => {
      state.settled = true;
      state.error = e;
    },
  );
  return state;
}

/** Resolves with the error `p` rejected with; fails the test if it resolved. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  expect.fail('expected the call to reject');
}

/** Resolves once `cond()` holds, checking every 5 ms; throws after `ms`. */
export async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
