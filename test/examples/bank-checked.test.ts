/**
 * The bank on read-write transactions (`npm run demo -- --checked`): four processes
 * transfer at once in one bank, each transfer checking the balance in the database
 * before moving money, with amounts that are often too large. No account is ever
 * overdrawn and the total holds, at every frontier each process's reader checks,
 * and in a final read by this process.
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBank } from '../../examples/bank/bank.js';
import { describeChild, runChild } from '../support/run-child.js';

const main = fileURLToPath(new URL('../../examples/bank/main.ts', import.meta.url));

describe('examples: bank with checked transfers (db.transact) from 4 processes', function () {
  this.timeout(180_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-bank-checked-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('never overdraws an account and keeps the total, while refusing transfers the balance cannot cover', async () => {
    // Create the bank once (its opening deposit), then transfer from four processes at once.
    const bank = await openBank(`file:${dir}`);
    await bank.close();
    const runs = await Promise.all(
      [1, 2, 3, 4].map((seed) =>
        runChild(process.execPath, ['--import', 'tsx', main, '--dir', dir, '--seconds', '3', '--checked', '--seed', String(seed)], { timeoutMs: 150_000 }),
      ),
    );
    let done = 0;
    let refused = 0;
    for (const r of runs) {
      expect(r.code, describeChild('a bank process', r)).to.equal(0);
      const m = /done: (\d+) transactions .*, (\d+) refused for insufficient funds, .*invariant OK/.exec(r.stdout);
      expect(m, r.stdout).to.not.equal(null);
      done += Number(m![1]);
      refused += Number(m![2]);
    }
    expect(done, 'transfers went through').to.be.greaterThan(0);
    expect(refused, 'some transfers were too large and refused').to.be.greaterThan(0);
    // A final read of every account by a fresh process-level client.
    const reopened = await openBank(`file:${dir}`);
    try {
      const snap = await reopened.db.snapshot(reopened.branches);
      const balances = new Map<string, number>();
      for (const rows of Object.values(snap.collections)) for (const [account, , diff] of rows) balances.set(account as string, (balances.get(account as string) ?? 0) + diff);
      const negative = [...balances].filter(([, b]) => b < 0);
      expect(negative, 'overdrawn accounts').to.deep.equal([]);
      expect([...balances.values()].reduce((a, b) => a + b, 0)).to.equal(reopened.expectedTotal);
    } finally {
      await reopened.close();
    }
  });
});
