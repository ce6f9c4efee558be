/**
 * The library's waits: one abortable wait (`abortableWait`) that every
 * "promise + abort listener + timer" is built on, `sleep` over it, the one
 * macrotask yield, and a FIFO mutex.
 *
 * Example (a wake-able, abortable poll, as a shard machine waits for a new state):
 * ```ts
 * const wakers = new Set<() => void>();
 * // Resolves when someone calls one of `wakers`, or after 50 ms; rejects on abort.
 * await abortableWait({
 *   signal,
 *   timeoutMs: 50,
 *   register: (wake) => {
 *     wakers.add(wake);
 *     return () => wakers.delete(wake);
 *   },
 * });
 * ```
 */
export { yieldMacrotask } from '../location/macrotask.js';

/** The error a wait rejects with when `signal` aborts: its reason if that is an Error, else an AbortError. */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error('the operation was aborted');
  err.name = 'AbortError';
  return err;
}

/**
 * Hands the wait's settle functions to whoever will wake it (a queue, a set of
 * watchers), and returns how to take them back out (or nothing, if there is
 * nothing to take out).
 */
export type WaitRegister<T> = (wake: (value: T) => void, fail: (err: unknown) => void) => (() => unknown) | void;

export interface AbortableWaitOptions<T> {
  /** Rejects the wait with the signal's reason ({@link abortError}) when it fires. */
  signal?: AbortSignal | undefined;
  /** Hands `wake` / `fail` to whoever settles the wait. */
  register?: WaitRegister<T>;
}

/**
 * A promise that settles exactly once, at the first of:
 * - `wake(value)` (handed to `register`): resolves with `value`;
 * - `fail(err)` (handed to `register`): rejects with `err`;
 * - the timer, when `timeoutMs` is given: resolves (with `undefined`);
 * - `signal` aborting: rejects with {@link abortError}`(signal)`.
 *
 * Cleanup rules (the point of having one of these):
 * - A signal that is already aborted rejects at once: `register` is not called and
 *   no timer or listener is created.
 * - Otherwise `register` runs synchronously, before the promise is returned; it may
 *   settle the wait right away.
 * - However the wait ends, the abort listener is removed and the timer cleared
 *   *before* the promise settles, so a long-lived signal never collects listeners
 *   and no timer outlives its wait (a pending timer keeps the process alive, as any
 *   pending I/O would: a wait for another process's write must not let it exit).
 * - However the wait ends, the function `register` returned runs exactly once,
 *   *after* the promise settled: a queue that hands over what the waiter reserved
 *   can do so knowing the waiter already has its answer. It also runs when the wait
 *   was woken through the registrant, so it must be harmless for an entry already
 *   taken out (e.g. `set.delete`, or an `indexOf` check).
 * - Calls to `wake` / `fail` after the wait settled (a late wake, an abort in the
 *   same tick as a wake) are ignored: the first one wins and is never undone.
 */
export function abortableWait(opts: AbortableWaitOptions<void> & { timeoutMs?: number }): Promise<void>;
export function abortableWait<T>(opts: AbortableWaitOptions<T> & { register: WaitRegister<T>; timeoutMs?: never }): Promise<T>;
export function abortableWait<T>(opts: AbortableWaitOptions<T> & { timeoutMs?: number }): Promise<T> {
  const { signal, register, timeoutMs } = opts;
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    let settled = false;
    let registered = false;
    let unregister: (() => unknown) | void;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => end(() => reject(abortError(signal!)));
    const end = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settle();
      // Settled from inside `register`: its return value is not known yet (run below).
      if (registered) unregister?.();
    };
    unregister = register?.(
      (value) => end(() => resolve(value)),
      (err) => end(() => reject(err as Error)),
    );
    registered = true;
    if (settled) {
      unregister?.();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== undefined) timer = setTimeout(() => end(() => resolve(undefined as T)), timeoutMs);
  });
}

/** Resolves after `ms`, or rejects as soon as `signal` fires (an {@link abortableWait} with only a timer). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return abortableWait({ signal, timeoutMs: ms });
}

/** A mutual-exclusion lock granted in request order. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const prev = this.tail;
    this.tail = prev.then(() => held);
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
