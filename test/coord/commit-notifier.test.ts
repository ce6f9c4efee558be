/**
 * The notifier / waiter pair: notifications collapse, one permit at a time, and
 * cancel safety (an aborted ready() consumes nothing and gives its permit back; a
 * notification handed over is never undone by a late abort).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { commitNotifier, type CommitPermit } from '../../src/coord/commit-notifier.js';
import { flush, observe } from '../support/async.js';

describe('coord: commit notifier', () => {
  it('a notification given before anyone waits is kept, and many of them collapse into one', async () => {
    const { notifier, waiter } = commitNotifier();
    notifier.notify();
    notifier.notify();
    notifier.notify();
    const first = await waiter.ready();
    first.release();
    const second = observe(waiter.ready());
    await flush();
    expect(second.value, 'three notifications were one request').to.equal(undefined);
    notifier.notify();
    await flush();
    expect(second.value).to.not.equal(undefined);
  });

  it('at most one permit: a notified second ready() waits until the first permit is released', async () => {
    const { notifier, waiter } = commitNotifier();
    notifier.notify();
    const first = await waiter.ready();
    notifier.notify();
    const second = observe(waiter.ready());
    await flush();
    expect(second.value).to.equal(undefined);
    first.release();
    first.release(); // idempotent: must not free a second permit
    await flush();
    expect(second.value).to.not.equal(undefined);
    notifier.notify();
    const third = observe(waiter.ready());
    await flush();
    expect(third.value, 'the double release did not mint a permit').to.equal(undefined);
    second.value!.release();
    await flush();
    expect(third.value).to.not.equal(undefined);
  });

  it('triggers arriving while a commit runs lead to exactly one more run', async () => {
    const { notifier, waiter } = commitNotifier();
    const stop = new AbortController();
    let runs = 0;
    let running = 0;
    let maxRunning = 0;
    const loop = (async () => {
      for (;;) {
        let permit: CommitPermit;
        try {
          permit = await waiter.ready({ signal: stop.signal });
        } catch {
          return;
        }
        runs++;
        maxRunning = Math.max(maxRunning, ++running);
        await new Promise((r) => setTimeout(r, 30));
        running--;
        permit.release();
      }
    })();
    notifier.notify();
    await new Promise((r) => setTimeout(r, 5));
    expect(runs).to.equal(1);
    for (let i = 0; i < 20; i++) notifier.notify();
    await new Promise((r) => setTimeout(r, 120));
    stop.abort();
    await loop;
    expect(runs, 'one run, then exactly one more for the 20 triggers').to.equal(2);
    expect(maxRunning).to.equal(1);
  });

  it('cancel-safe: a ready() aborted while waiting for a notification gives its permit back and consumes nothing', async () => {
    const { notifier, waiter } = commitNotifier();
    const ac = new AbortController();
    const aborted = observe(waiter.ready({ signal: ac.signal }));
    await flush();
    ac.abort(new Error('dropped'));
    await flush();
    expect((aborted.error as Error).message).to.equal('dropped');
    // The permit came back: a new ready() is not stuck behind the aborted one…
    const next = observe(waiter.ready());
    // …and a notification sent after the abort reaches it.
    notifier.notify();
    await flush();
    expect(next.value).to.not.equal(undefined);
  });

  it('cancel-safe: a ready() aborted while queued for the permit leaves no trace', async () => {
    const { notifier, waiter } = commitNotifier();
    notifier.notify();
    const held = await waiter.ready();
    const ac = new AbortController();
    notifier.notify(); // pending, for whoever comes next
    const queued = observe(waiter.ready({ signal: ac.signal }));
    ac.abort();
    await flush();
    expect(queued.error).to.be.instanceOf(Error);
    expect(waiter.hasPendingNotification, 'the aborted waiter never took the notification').to.equal(true);
    held.release();
    const next = observe(waiter.ready());
    await flush();
    expect(next.value).to.not.equal(undefined);
    expect(waiter.hasPendingNotification).to.equal(false);
  });

  it('a notification already handed to a waiter is not undone by an abort in the same tick', async () => {
    const { notifier, waiter } = commitNotifier();
    const ac = new AbortController();
    const p = observe(waiter.ready({ signal: ac.signal }));
    await flush();
    notifier.notify();
    ac.abort();
    await flush();
    expect(p.error).to.equal(undefined);
    expect(p.value, 'the waiter got the permit with the notification').to.not.equal(undefined);
    expect(waiter.hasPendingNotification).to.equal(false);
  });

  it('property: every notification is acted on by some successful ready(), whatever gets aborted', async () => {
    // Ops: notify, start a ready (abortable or not), abort one, release the permit.
    const op = fc.oneof(
      fc.constant({ kind: 'notify' as const }),
      fc.record({ kind: fc.constant('ready' as const), abortable: fc.boolean() }),
      fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }),
      fc.constant({ kind: 'release' as const }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (script) => {
        const { notifier, waiter } = commitNotifier();
        const permits: CommitPermit[] = [];
        const open: { ctl?: AbortController; done: boolean }[] = [];
        // Whether a notification was sent that no successful ready() has answered yet.
        let unanswered = false;
        const start = (abortable: boolean) => {
          const entry: { ctl?: AbortController; done: boolean } = { done: false };
          if (abortable) entry.ctl = new AbortController();
          open.push(entry);
          waiter.ready({ signal: entry.ctl?.signal }).then(
            (p) => {
              entry.done = true;
              unanswered = false;
              permits.push(p);
            },
            () => (entry.done = true),
          );
        };
        for (const step of script) {
          if (step.kind === 'notify') {
            notifier.notify();
            unanswered = true;
          } else if (step.kind === 'ready') {
            start(step.abortable);
          } else if (step.kind === 'abort') {
            const live = open.filter((e) => e.ctl && !e.done);
            if (live.length > 0) live[step.pick % live.length]!.ctl!.abort();
          } else {
            permits.shift()?.release();
          }
          await flush();
          expect(permits.length, 'at most one permit out').to.be.at.most(1);
        }
        // Drain: release permits and keep one plain ready() in flight until quiet.
        for (let i = 0; i < script.length + 2; i++) {
          for (const p of permits.splice(0)) p.release();
          if (!open.some((e) => !e.done)) start(false);
          await flush();
        }
        expect(unanswered, 'a notification was lost').to.equal(false);
      }),
      { numRuns: 300 },
    );
  });
});
