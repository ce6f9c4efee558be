/**
 * The main job, `npm run demo`: the bank runs in a child process on a file:
 * location, checks the invariant at every frontier, and a second run reopens the
 * same bank (found in the database's catalog) with the money still all there. In process: the pipeline's total is
 * conserved at every frontier under concurrent transfers.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBank, runTransfers, type BankState } from '../../examples/bank/bank.js';

const main = fileURLToPath(new URL('../../examples/bank/main.ts', import.meta.url));

function runDemo(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['--import', 'tsx', main, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
      resolve({ code: child.exitCode, stdout, stderr });
    });
  });
}

describe('examples: bank (npm run demo)', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-bank-test-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('runs transfers on file:, keeps the total at every frontier, and a second run reopens the same bank', async () => {
    const first = await runDemo('--dir', dir, '--seconds', '2', '--seed', '7');
    expect(first.code, `exit code; stderr:\n${first.stderr}`).to.equal(0);
    expect(first.stdout).to.match(/^opened the bank in .*: 4 branches, 100 accounts, total 100000/m);
    expect(first.stdout, 'a status line').to.match(/commits \d+ \(\d+\/s\) {2}frontier \d+ {2}total 100000 .* invariant OK/);
    const done = /done: (\d+) transactions .* last commit at (\d+), reader caught up at frontier (\d+); total 100000 checked at (\d+) frontiers: invariant OK/.exec(first.stdout);
    expect(done, first.stdout).to.not.equal(null);
    const [, commits, lastCommit, frontier, checked] = done!.map(Number);
    expect(commits).to.be.greaterThan(0);
    expect(frontier).to.be.greaterThan(lastCommit!);
    expect(checked).to.be.greaterThan(0);

    const second = await runDemo('--dir', dir, '--seconds', '1', '--seed', '8');
    expect(second.code, `exit code; stderr:\n${second.stderr}`).to.equal(0);
    expect(second.stdout).to.match(/^reopened the bank in .*total 100000/m);
    const again = /last commit at (\d+).*invariant OK/.exec(second.stdout);
    expect(Number(again![1]), 'the second run carries on after the first').to.be.greaterThan(lastCommit!);
  });

  it('rejects bad arguments with a message naming the flag', async () => {
    const bad = await runDemo('--dir', dir, '--seconds', 'soon');
    expect(bad.code).to.equal(1);
    expect(bad.stderr.trim().split('\n'), 'one line').to.have.length(1);
    expect(bad.stderr).to.match(/--seconds must be a positive number, got "soon" \(see --help\)/);
  });

  it('in process: every state the pipeline emits is consistent, and balances match the generator', async () => {
    const bank = await openBank('mem://', { branches: 3, accountsPerBranch: 5, openingBalance: 100 });
    try {
      const states: BankState[] = [];
      const stats = await runTransfers(bank, { seconds: 1, inFlight: 8, seed: 3, onState: (s) => states.push(s) });
      expect(stats.commits).to.be.greaterThan(10);
      expect(stats.violations).to.equal(0);
      for (const s of states) {
        expect(s.total).to.equal(1500);
        expect(s.perBranch.reduce((a, b) => a + b, 0)).to.equal(s.total);
        expect([...s.balances.values()].reduce((a, b) => a + b, 0)).to.equal(s.total);
        for (const v of s.balances.values()) expect(v, 'no account is overdrawn').to.be.at.least(0);
      }
      for (let i = 1; i < states.length; i++) expect(states[i]!.frontier).to.be.greaterThan(states[i - 1]!.frontier);
    } finally {
      await bank.close();
    }
  });
});
