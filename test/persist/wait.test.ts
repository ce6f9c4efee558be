/**
 * abortableWait: the one "promise + abort listener + timer + cleanup" every wait in
 * the library is built on; sleep over it; the one macrotask yield.
 */
import { expect } from 'chai';
import { getEventListeners } from 'node:events';
import { abortableWait, sleep, yieldMacrotask } from '../../src/persist/wait.js';
import { flush, observe, rejection } from '../support/async.js';
import { trackLibraryTimers } from '../support/rx.js';

const abortListeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;

describe('persist: abortableWait', () => {
  it('leaves no abort listener on a long-lived signal after 1,000 wake-ups', async () => {
    const ac = new AbortController();
    const wakers = new Set<(n: number) => void>();
    for (let i = 0; i < 1000; i++) {
      const p = abortableWait<number>({
        signal: ac.signal,
        register: (wake) => {
          wakers.add(wake);
          return () => wakers.delete(wake);
        },
      });
      expect(abortListeners(ac.signal), 'one listener while waiting').to.equal(1);
      for (const w of wakers) w(i);
      expect(await p).to.equal(i);
    }
    expect(abortListeners(ac.signal)).to.equal(0);
    expect(wakers.size, 'every unregister ran').to.equal(0);
  });

  it('clears its timer when woken first, and when aborted', async () => {
    const timers = trackLibraryTimers();
    try {
      let wake!: () => void;
      const woken = abortableWait({ timeoutMs: 60_000, register: (w) => void (wake = w) });
      expect(timers.pending(), 'the timer runs while waiting').to.have.length(1);
      wake();
      await woken;
      const ac = new AbortController();
      const aborted = abortableWait({ signal: ac.signal, timeoutMs: 60_000 });
      ac.abort();
      await aborted.catch(() => undefined);
      expect(timers.pending(), 'no timer outlives its wait').to.deep.equal([]);
    } finally {
      timers.stop();
    }
  });

  it('resolves when the timer fires, removing its listener and unregistering', async () => {
    const ac = new AbortController();
    let unregistered = 0;
    await abortableWait({ signal: ac.signal, timeoutMs: 1, register: () => () => unregistered++ });
    expect(unregistered).to.equal(1);
    expect(abortListeners(ac.signal)).to.equal(0);
  });

  it("rejects with the signal's reason on abort, and unregisters once", async () => {
    const ac = new AbortController();
    let unregistered = 0;
    const p = observe(abortableWait({ signal: ac.signal, register: () => () => unregistered++ }));
    await flush();
    expect(p.settled).to.equal(false);
    const reason = new Error('gave up');
    ac.abort(reason);
    await flush();
    expect(p.error).to.equal(reason);
    expect(unregistered).to.equal(1);
    expect(abortListeners(ac.signal)).to.equal(0);
  });

  it('a reason that is not an Error becomes an AbortError', async () => {
    const ac = new AbortController();
    const p = abortableWait({ signal: ac.signal });
    ac.abort('just a string');
    const err = (await rejection(p)) as Error;
    expect(err).to.be.instanceOf(Error);
    expect(err.name).to.equal('AbortError');
  });

  it('an already aborted signal rejects at once: nothing is registered, no listener, no timer', async () => {
    const ac = new AbortController();
    const reason = new Error('already');
    ac.abort(reason);
    let registered = false;
    const timers = trackLibraryTimers();
    const p = abortableWait({
      signal: ac.signal,
      timeoutMs: 60_000,
      register: () => {
        registered = true;
      },
    });
    timers.stop();
    expect(await rejection(p)).to.equal(reason);
    expect(registered).to.equal(false);
    expect(abortListeners(ac.signal)).to.equal(0);
    expect(timers.pending()).to.deep.equal([]);
  });

  it('the first outcome wins: an abort or a failure after a wake is ignored', async () => {
    const ac = new AbortController();
    let wake!: (v: string) => void;
    let fail!: (err: unknown) => void;
    let unregistered = 0;
    const p = abortableWait<string>({
      signal: ac.signal,
      register: (w, f) => {
        wake = w;
        fail = f;
        return () => unregistered++;
      },
    });
    wake('first');
    ac.abort();
    fail(new Error('late'));
    wake('second');
    expect(await p).to.equal('first');
    expect(unregistered).to.equal(1);
  });

  it('fail rejects with the given error', async () => {
    const boom = new Error('boom');
    const p = abortableWait<number>({ register: (_wake, fail) => fail(boom) });
    expect(await rejection(p)).to.equal(boom);
  });

  it('a wait settled inside register still unregisters once, and adds no listener', async () => {
    const ac = new AbortController();
    let unregistered = 0;
    const p = abortableWait<number>({
      signal: ac.signal,
      register: (wake) => {
        wake(7);
        return () => unregistered++;
      },
    });
    expect(unregistered).to.equal(1);
    expect(abortListeners(ac.signal)).to.equal(0);
    expect(await p).to.equal(7);
  });

  it('unregister runs after the wait settled, so it may hand what the waiter held to others', async () => {
    // A queue that, on abort, grants the next waiter: the aborted one settles first.
    const order: string[] = [];
    const ac = new AbortController();
    let grantNext!: () => void;
    const next = new Promise<void>((r) => (grantNext = r)).then(() => order.push('next granted'));
    const first = abortableWait({ signal: ac.signal, register: () => () => grantNext() }).catch(() => order.push('first aborted'));
    ac.abort();
    await Promise.all([first, next]);
    expect(order).to.deep.equal(['first aborted', 'next granted']);
  });
});

describe('persist: sleep', () => {
  it('resolves after the delay, leaving no listener', async () => {
    const ac = new AbortController();
    const started = Date.now();
    await sleep(20, ac.signal);
    expect(Date.now() - started).to.be.at.least(15);
    expect(abortListeners(ac.signal)).to.equal(0);
  });

  it("rejects with the signal's reason as soon as it fires", async () => {
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    const reason = new Error('stop');
    ac.abort(reason);
    expect(await rejection(p)).to.equal(reason);
  });
});

describe('persist: yieldMacrotask', () => {
  it('lets already queued macrotasks run first, which a microtask would not', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('immediate'));
    await Promise.resolve();
    order.push('after a microtask');
    await yieldMacrotask();
    order.push('after the yield');
    expect(order).to.deep.equal(['after a microtask', 'immediate', 'after the yield']);
  });
});
