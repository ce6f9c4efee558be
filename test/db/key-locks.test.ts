/**
 * KeyLocks scenarios: wait-die (an older transaction waits, a younger one dies),
 * every waiter of a released key wakes, blind writers wait without holding, and
 * waits end with their transaction or their signal.
 */
import { expect } from 'chai';
import { KeyLocks, LockConflict, LockWaitEnded } from '../../src/db/key-locks.js';
import { yieldMacrotask } from '../../src/persist/wait.js';
import { observe } from '../support/async.js';
import { expectReject } from '../support/persist.js';

describe('db: key locks', () => {
  it('an older holder waits for a younger one; a younger one asking an older one dies at once', async () => {
    const locks = new KeyLocks();
    const [t1, t2] = [locks.holder(), locks.holder()];
    await locks.acquire(t2, 'c', 'k');
    const waiting = observe(locks.acquire(t1, 'c', 'k'));
    await yieldMacrotask();
    expect(waiting.settled).to.equal(false);
    locks.release(t2);
    await waiting.promise;
    expect(locks.holds(t1, 'c', 'k')).to.equal(true);
    await expectReject(locks.acquire(t2, 'c', 'k'), LockConflict, /older transaction/);
    locks.release(t1);
    expect(locks.size).to.equal(0);
  });

  it('every waiter of a released key wakes: the oldest takes it, the younger ones then die (none is left waiting)', async () => {
    const locks = new KeyLocks();
    const holders = Array.from({ length: 4 }, () => locks.holder());
    const youngest = holders[3]!;
    await locks.acquire(youngest, 'c', 'k');
    const outcomes = Promise.allSettled(holders.slice(0, 3).map((h) => locks.acquire(h, 'c', 'k')));
    await yieldMacrotask();
    locks.release(youngest);
    const settled = await outcomes;
    expect(settled.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'rejected']);
    for (const o of settled.slice(1)) expect((o as PromiseRejectedResult).reason).to.be.instanceOf(LockConflict);
    expect(locks.holds(holders[0]!, 'c', 'k')).to.equal(true);
  });

  it('blind writers wait until no transaction holds their keys, holding nothing themselves', async () => {
    const locks = new KeyLocks();
    const [t1, t2] = [locks.holder(), locks.holder()];
    await locks.acquire(t1, 'c', 'a');
    await locks.acquire(t2, 'c', 'b');
    const blind = observe(locks.waitUnlocked('c', ['a', 'b', 'z']));
    const other = observe(locks.waitUnlocked('c', ['a']));
    locks.release(t1);
    await other.promise;
    await yieldMacrotask();
    expect(blind.settled, 'b is still held').to.equal(false);
    locks.release(t2);
    await blind.promise;
    expect(locks.size).to.equal(0);
  });

  it('a wait ends when its own transaction is released, or when its signal aborts', async () => {
    const locks = new KeyLocks();
    const [t1, t2, t3] = [locks.holder(), locks.holder(), locks.holder()];
    await locks.acquire(t3, 'c', 'k');
    const ended = locks.acquire(t1, 'c', 'k');
    const ac = new AbortController();
    const aborted = locks.acquire(t2, 'c', 'k', ac.signal);
    locks.release(t1);
    await expectReject(ended, LockWaitEnded, /ended while waiting for key "k"/);
    ac.abort(new Error('stop'));
    await expectReject(aborted, Error, /stop/);
    locks.release(t3);
    expect(locks.size).to.equal(0);
  });
});
