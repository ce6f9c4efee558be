/**
 * The transaction history trial, small: worker processes with SIGKILLs on a file:
 * location, at each isolation level, then the history checker (txn-history.ts). And
 * the checker itself, on histories with known anomalies, so it is known to catch them.
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ISOLATION_LEVELS } from '../../src/db/read-write-transaction.js';
import { checkHistory, runHistoryTrial, type Attempt } from './txn-history.js';

describe('db: transaction histories across processes', function () {
  this.timeout(240_000);

  for (const isolation of ISOLATION_LEVELS) {
    it(`${isolation}: 3 processes on hot keys, 2 SIGKILLs: atomic, durable, and ${isolation === 'snapshot' ? 'snapshot-isolated' : 'serializable'}`, async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-history-'));
      try {
        const r = await runHistoryTrial({ location: `file:${dir}`, isolation, workers: 3, txnsPerWorker: 12, kills: 2, seed: 7 });
        expect(r.anomalies).to.deep.equal([]);
        expect(r.commits, 'transactions committed').to.be.greaterThan(5);
        expect(r.kills).to.be.at.least(1);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  describe('the checker', () => {
    const attempt = (id: string, readTs: number, reads: Attempt['reads'], writes: Attempt['writes'], commitTs?: number): Attempt => ({
      id,
      readTs,
      reads,
      writes,
      outcome: commitTs === undefined ? 'conflict' : 'committed',
      commitTs,
    });
    const row = (key: string, value: string, ts: number, diff = 1) => ({ key, value, ts, diff });

    it('finds write skew under serializable (a cycle through anti-dependencies) but not under snapshot', () => {
      const history = [
        attempt('seed', 0, {}, { x: 'seed', y: 'seed2' }, 1),
        attempt('t1', 1, { x: 'seed', y: 'seed2' }, { x: 't1' }, 2),
        attempt('t2', 1, { x: 'seed', y: 'seed2' }, { y: 't2' }, 3),
      ];
      history[0]!.writes = { x: 'seed' };
      history.push(attempt('seed2', 0, {}, { y: 'seed2' }, 1));
      const recorded = [row('x', 'seed', 1), row('y', 'seed2', 1), row('x', 'seed', 2, -1), row('x', 't1', 2), row('y', 'seed2', 3, -1), row('y', 't2', 3)];
      expect(checkHistory(history, recorded, 'serializable').anomalies.join('\n')).to.match(/dependency cycle \(not serializable\)/);
      expect(checkHistory(history, recorded, 'snapshot').anomalies).to.deep.equal([]);
    });

    it('finds lost, partial, stale-read and concurrent-writer histories', () => {
      const lost = checkHistory([attempt('a', 0, {}, { x: 'a' }, 1)], [], 'snapshot').anomalies;
      expect(lost.join('\n')).to.match(/acknowledged at 1 but lost/);
      const partial = checkHistory([attempt('a', 0, {}, { x: 'a', y: 'a' }, 1)], [row('x', 'a', 1)], 'snapshot').anomalies;
      expect(partial.join('\n')).to.match(/partly visible/);
      const stale = checkHistory(
        [attempt('a', 0, {}, { x: 'a' }, 1), attempt('b', 2, { x: null }, {}, 2)],
        [row('x', 'a', 1)],
        'snapshot',
      ).anomalies;
      expect(stale.join('\n')).to.match(/read x = null at 2, but the version there is a/);
      const both = checkHistory(
        [attempt('a', 0, { x: null }, { x: 'a' }, 2), attempt('b', 0, { x: null }, { x: 'b' }, 3)],
        [row('x', 'a', 2), row('x', 'a', 3, -1), row('x', 'b', 3)],
        'snapshot',
      ).anomalies;
      expect(both.join('\n')).to.match(/both wrote x concurrently/);
      const conflicted = checkHistory([attempt('a', 0, {}, { x: 'a' })], [row('x', 'a', 1)], 'snapshot').anomalies;
      expect(conflicted.join('\n')).to.match(/failed with a conflict, yet landed/);
    });
  });
});
