/**
 * Reader lag (reader-lag.ts) by its definitions, on a txns progress and a wall clock
 * the test moves by hand: lag in timestamps is `progress − frontier`, lag in seconds
 * is the time since the progress first passed the frontier, the largest over a
 * collection's live readers; the history follows the progress only while a reader
 * is live.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { HISTORY_LIMIT, ReaderLag, ReaderMetrics } from '../../src/db/reader-lag.js';
import { Metrics } from '../../src/persist/metrics.js';
import type { TxnsRead } from '../../src/txn/txns-read.js';
import { flush } from '../support/async.js';
import { hasSample, sample, scrape } from '../support/metrics.js';

/** The part of TxnsRead the tracker uses: a progress the test sets, and waits on it. */
class FakeTxnsRead {
  progress = 0;
  private waiters: { ts: number; resolve: (p: number) => void; reject: (e: unknown) => void }[] = [];
  updateGt(ts: number, opts: { signal?: AbortSignal } = {}): Promise<number> {
    if (this.progress > ts) return Promise.resolve(this.progress);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error('aborted'));
      };
      const w = {
        ts,
        resolve: (p: number) => {
          opts.signal?.removeEventListener('abort', onAbort);
          resolve(p);
        },
        reject,
      };
      this.waiters.push(w);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
  /** Moves the progress and lets the tracker record it. */
  async moveTo(p: number): Promise<void> {
    this.progress = p;
    for (const w of this.waiters.splice(0)) w.resolve(p);
    await flush();
  }
  get waiting(): number {
    return this.waiters.length;
  }
}

describe('db: reader lag', () => {
  let read: FakeTxnsRead;
  let now: number;
  let metrics: Metrics;
  let lag: ReaderLag;
  beforeEach(() => {
    read = new FakeTxnsRead();
    now = 1_000_000;
    metrics = Metrics.forRegistry(new Registry());
    lag = new ReaderLag(read as unknown as TxnsRead, ReaderMetrics.of(metrics), () => now);
  });

  const gauges = async (collection: string) => {
    const fams = await scrape(metrics);
    return {
      ts: sample(fams, 'txnwal_reader_frontier_lag', { collection }),
      seconds: sample(fams, 'txnwal_reader_frontier_lag_seconds', { collection }),
      present: hasSample(fams, 'txnwal_reader_frontier_lag', { collection }),
    };
  };

  it('the module example: progress 10 seen at t, 15 at t+3 s; at t+5 s a reader at 12 trails by 3 timestamps and 2 s', async () => {
    await read.moveTo(10);
    const behind = lag.track('accounts', 12);
    await flush();
    now += 3000;
    await read.moveTo(15);
    now += 2000;
    expect(await gauges('accounts')).to.deep.equal({ ts: 3, seconds: 2, present: true });
    // Caught up: both 0.
    behind.advance(15);
    expect(await gauges('accounts')).to.deep.equal({ ts: 0, seconds: 0, present: true });
  });

  it('each series is the largest lag of its live readers; another collection is its own series', async () => {
    await read.moveTo(5);
    const a1 = lag.track('a', 5);
    const a2 = lag.track('a', 5);
    const b = lag.track('b', 5);
    await flush();
    now += 1000;
    await read.moveTo(8); // 8 known from now
    now += 4000;
    a1.advance(8);
    a2.advance(6);
    b.advance(8);
    expect(await gauges('a')).to.deep.equal({ ts: 2, seconds: 4, present: true });
    expect(await gauges('b')).to.deep.equal({ ts: 0, seconds: 0, present: true });
    a2.close();
    expect(await gauges('a')).to.deep.equal({ ts: 0, seconds: 0, present: true });
    a1.close();
    b.close();
    b.close(); // idempotent
    expect((await gauges('a')).present, 'no live reader, no series').to.equal(false);
    expect((await gauges('b')).present).to.equal(false);
  });

  it('a reader that starts before anything was seen trails at least since tracking began (a lower bound)', async () => {
    await read.moveTo(100);
    const old = lag.track('c', 3);
    await flush();
    now += 7000;
    expect(await gauges('c')).to.deep.equal({ ts: 97, seconds: 7, present: true });
    old.close();
  });

  it('follows the progress only while a reader is live', async () => {
    expect(read.waiting).to.equal(0);
    const r = lag.track('d', 0);
    await flush();
    expect(read.waiting, 'waits for the next progress step').to.equal(1);
    r.close();
    await flush();
    expect(read.waiting, 'the wait is aborted with the last reader').to.equal(0);
    // A new reader starts a fresh history from the progress it finds.
    await read.moveTo(4);
    const r2 = lag.track('d', 0);
    await flush();
    now += 1500;
    expect(await gauges('d')).to.deep.equal({ ts: 4, seconds: 1.5, present: true });
    r2.close();
    lag.close();
  });

  it('keeps the history bounded while a reader stays far behind', async () => {
    const stuck = lag.track('e', 0);
    await flush();
    for (let p = 1; p <= HISTORY_LIMIT + 600; p++) {
      now += 1;
      await read.moveTo(p);
    }
    const history = (lag as unknown as { progress: number[] }).progress;
    expect(history.length).to.be.at.most(HISTORY_LIMIT);
    // The seconds are now a lower bound: from the oldest entry kept, not from the start.
    const g = await gauges('e');
    expect(g.ts).to.equal(HISTORY_LIMIT + 600);
    expect(g.seconds).to.be.greaterThan(0);
    expect(g.seconds).to.be.below((HISTORY_LIMIT + 600) / 1000);
    // A reader close to the front trims what nobody can ask for any more.
    stuck.advance(HISTORY_LIMIT + 590);
    for (let p = HISTORY_LIMIT + 601; p <= HISTORY_LIMIT + 900; p++) await read.moveTo(p);
    expect((lag as unknown as { progress: number[] }).progress.length).to.be.at.most(320);
    stuck.close();
  });
});
