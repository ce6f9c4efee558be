import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const example = fileURLToPath(new URL('../../examples/txn-usage.ts', import.meta.url));

/** Runs the example in a child process; resolves with its exit code and output (never rejects on a non-zero exit). */
function runExample(...args: string[]): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['--import', 'tsx', example, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
      resolve({ code: child.exitCode, signal: child.signalCode, stdout, stderr });
    });
  });
}

describe('examples: txn-usage', function () {
  this.timeout(90_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-example-test-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('runs to completion on a file: location and prints what it read at 4', async () => {
    const { code, signal, stdout, stderr } = await runExample(dir);
    expect(signal, stderr).to.equal(null);
    expect(code, `exit code; stderr:\n${stderr}`).to.equal(0);
    const lines = stdout.split('\n');
    expect(lines).to.include('d1 at 4: [["1",4,-1]]');
    expect(lines).to.include('d0 at 4: [["0",4,1],["2",4,1]]');
    expect(stdout).to.include('{"ok":false,"current":4}');
    // The location it was given holds the data (SQLite consensus + file blob).
    expect(await readdir(dir)).to.include.members(['blob', 'consensus.sqlite']);
  });

  it('also runs on a fresh temp dir of its own when given no directory', async () => {
    const { code, stdout, stderr } = await runExample();
    expect(code, `exit code; stderr:\n${stderr}`).to.equal(0);
    expect(stdout.split('\n')).to.include('d1 at 4: [["1",4,-1]]');
  });
});
