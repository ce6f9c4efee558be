/**
 * WriteLocks: all-or-nothing sets, waiting in line without holding anything, and the
 * wake-ups deferred writes rely on. A property test runs random scripts against the
 * invariants: no collection held twice, waiters served in order where they overlap,
 * and everyone granted once everything is released (no deadlock).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { WriteLocks, emptyGuard, type WriteLockGuard } from '../../src/coord/write-locks.js';
import { InvalidUsage } from '../../src/persist/errors.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import { flush, observe } from '../support/async.js';

const [A, B, C, D] = Array.from({ length: 4 }, () => newShardId()) as [ShardId, ShardId, ShardId, ShardId];

describe('coord: write locks', () => {
  it('tryAcquire takes a whole set or nothing: a partly held set leaves its free collections untaken', () => {
    const locks = new WriteLocks();
    const g = locks.tryAcquire([A, B])!;
    expect([...g.ids]).to.have.members([A, B]);
    expect(locks.tryAcquire([B, C])).to.equal(undefined);
    // C was free, but the failed set must not have taken it.
    expect(locks.isHeld(C)).to.equal(false);
    expect(locks.tryAcquire([C])).to.not.equal(undefined);
  });

  it('isFree says what tryAcquire would take: neither held nor reserved by a queued acquire', async () => {
    const locks = new WriteLocks();
    const gA = locks.tryAcquire([A])!;
    const queued = locks.acquire([A, B]);
    expect([A, B, C].map((id) => locks.isFree(id))).to.deep.equal([false, false, true]);
    expect(locks.tryAcquire([B])).to.equal(undefined);
    gA.release();
    const gAB = await queued;
    expect(locks.isFree(B)).to.equal(false);
    gAB.release();
    expect([A, B].map((id) => locks.isFree(id))).to.deep.equal([true, true]);
  });

  it('acquire waits until the whole set is free, holding nothing meanwhile, then takes it at once', async () => {
    const locks = new WriteLocks();
    const gA = locks.tryAcquire([A])!;
    const gB = locks.tryAcquire([B])!;
    const waiting = observe(locks.acquire([A, B]));
    gA.release();
    await flush();
    expect(waiting.value, 'B is still held').to.equal(undefined);
    // Not holding A while waiting: nobody holds it now.
    expect(locks.isHeld(A)).to.equal(false);
    gB.release();
    await flush();
    expect([...waiting.value!.ids]).to.have.members([A, B]);
    expect(locks.isHeld(A) && locks.isHeld(B)).to.equal(true);
  });

  it('a queued large set is not starved by later small sets that overlap it', async () => {
    const locks = new WriteLocks();
    const gA = locks.tryAcquire([A])!;
    const big = observe(locks.acquire([A, B]));
    // B is free, but reserved by the queued waiter: neither a try nor a later acquire jumps ahead.
    expect(locks.tryAcquire([B])).to.equal(undefined);
    const small = observe(locks.acquire([B]));
    await flush();
    expect(small.value).to.equal(undefined);
    gA.release();
    await flush();
    expect(big.value, 'the earlier, larger set is granted first').to.not.equal(undefined);
    expect(small.value).to.equal(undefined);
    big.value!.release();
    await flush();
    expect([...small.value!.ids]).to.deep.equal([B]);
  });

  it('disjoint waiters are not held up by an unrelated waiter ahead of them', async () => {
    const locks = new WriteLocks();
    const gA = locks.tryAcquire([A])!;
    const first = observe(locks.acquire([A]));
    const second = observe(locks.acquire([C]));
    await flush();
    expect(first.value).to.equal(undefined);
    expect(second.value, 'C overlaps nothing ahead of it').to.not.equal(undefined);
    gA.release();
  });

  it('an aborted acquire holds nothing and lets the waiters behind it through', async () => {
    const locks = new WriteLocks();
    const gA = locks.tryAcquire([A])!;
    const ac = new AbortController();
    const aborted = observe(locks.acquire([A, B], { signal: ac.signal }));
    const behind = observe(locks.acquire([B]));
    await flush();
    expect(behind.value).to.equal(undefined);
    ac.abort(new Error('gave up'));
    await flush();
    expect((aborted.error as Error).message).to.equal('gave up');
    expect(behind.value, 'B no longer reserved').to.not.equal(undefined);
    expect(locks.waiting).to.equal(0);
    gA.release();
    expect(locks.isHeld(A)).to.equal(false);
  });

  it('nextChange wakes on the release of any named collection, and on a waiter leaving the queue', async () => {
    const locks = new WriteLocks();
    const gA = locks.tryAcquire([A])!;
    const gC = locks.tryAcquire([C])!;
    const onAB = observe(locks.nextChange([A, B]));
    gC.release();
    await flush();
    // nextChange resolves with no value: whether it settled is what tells.
    expect(onAB.settled, 'C is not watched').to.equal(false);
    gA.release();
    await flush();
    expect(onAB.settled, 'woken by the release of A').to.equal(true);
    expect(onAB.error).to.equal(undefined);

    // A reservation going away is a change too.
    const gD = locks.tryAcquire([D])!;
    const ac = new AbortController();
    const queued = observe(locks.acquire([B, D], { signal: ac.signal }));
    const onB = observe(locks.nextChange([B]));
    ac.abort();
    await flush();
    expect(queued.error).to.be.instanceOf(Error);
    expect(onB.settled, 'woken when the reservation on B went away').to.equal(true);
    expect(onB.error).to.equal(undefined);
    gD.release();
  });

  it('release is idempotent; absorb moves locks into one guard that frees them all', () => {
    const locks = new WriteLocks();
    const group = emptyGuard(locks);
    const g1 = locks.tryAcquire([A])!;
    const g2 = locks.tryAcquire([B, C])!;
    group.absorb(g1);
    group.absorb(g2);
    expect([...group.ids]).to.have.members([A, B, C]);
    // The absorbed guards no longer own anything: releasing them frees nothing.
    g1.release();
    expect(locks.isHeld(A)).to.equal(true);
    group.release();
    group.release();
    expect([A, B, C].some((id) => locks.isHeld(id))).to.equal(false);
    expect(() => group.absorb(locks.tryAcquire([D])!)).to.throw(InvalidUsage, /released/);
  });

  it('rejects ids that are not shard ids', () => {
    const locks = new WriteLocks();
    expect(() => locks.tryAcquire(['nope' as ShardId])).to.throw(InvalidUsage);
  });

  it('property: never two holders of one collection, overlapping waiters in order, and no deadlock', async () => {
    const ids = [A, B, C, D];
    const idSet = fc.uniqueArray(fc.constantFrom(...ids), { minLength: 1, maxLength: 3 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant('try' as const), ids: idSet }),
      fc.record({ kind: fc.constant('acquire' as const), ids: idSet, abortable: fc.boolean() }),
      fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (script) => {
        const locks = new WriteLocks();
        const held: WriteLockGuard[] = [];
        interface Waiter {
          seq: number;
          ids: ShardId[];
          granted: boolean;
          aborted: boolean;
          ctl?: AbortController;
        }
        const waiters: Waiter[] = [];
        const violations: string[] = [];
        let seq = 0;
        const checkDisjoint = () => {
          const seen = new Set<ShardId>();
          for (const g of held) {
            for (const id of g.ids) {
              expect(seen.has(id), `${id} held twice`).to.equal(false);
              seen.add(id);
              expect(locks.isHeld(id)).to.equal(true);
            }
          }
          for (const id of ids) expect(locks.isHeld(id)).to.equal(seen.has(id));
        };
        for (const step of script) {
          if (step.kind === 'try') {
            const g = locks.tryAcquire(step.ids);
            if (g) held.push(g);
          } else if (step.kind === 'acquire') {
            const w: Waiter = { seq: seq++, ids: step.ids, granted: false, aborted: false };
            if (step.abortable) w.ctl = new AbortController();
            waiters.push(w);
            locks.acquire(step.ids, { signal: w.ctl?.signal }).then(
              (g) => {
                // Served in order: no earlier waiter that overlaps is still waiting.
                for (const e of waiters) {
                  if (e.seq < w.seq && !e.granted && !e.aborted && e.ids.some((id) => w.ids.includes(id))) {
                    violations.push(`waiter ${w.seq} (${w.ids}) granted before earlier overlapping waiter ${e.seq} (${e.ids})`);
                  }
                }
                w.granted = true;
                held.push(g);
              },
              () => (w.aborted = true),
            );
          } else if (step.kind === 'release' && held.length > 0) {
            held.splice(step.pick % held.length, 1)[0]!.release();
          } else if (step.kind === 'abort') {
            const open = waiters.filter((w) => w.ctl && !w.granted && !w.aborted);
            if (open.length > 0) open[step.pick % open.length]!.ctl!.abort();
          }
          await flush();
          checkDisjoint();
          expect(violations).to.deep.equal([]);
        }
        // Release everything, repeatedly: every waiter still in line must get its set.
        for (let round = 0; round < waiters.length + 1; round++) {
          for (const g of held.splice(0)) g.release();
          await flush();
        }
        for (const w of waiters) expect(w.granted || w.aborted, `waiter ${w.seq} (${w.ids}) never granted`).to.equal(true);
        expect(locks.waiting).to.equal(0);
      }),
      { numRuns: 300 },
    );
  });
});
