/**
 * Every example follows the command-line conventions of examples/cli.ts: `--help`
 * prints its usage and exits 0 without touching any data; an unknown option prints
 * one line naming it and exits 1.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const EXAMPLES = ['bank/main.ts', 'dashboard/main.ts', 'persist-demo.ts', 'rx-usage.ts', 'txn-usage.ts'];

function run(example: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = fileURLToPath(new URL(`../../examples/${example}`, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['--import', 'tsx', file, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
      resolve({ code: child.exitCode, stdout, stderr });
    });
  });
}

describe('examples: command-line conventions', function () {
  this.timeout(120_000);
  for (const example of EXAMPLES) {
    it(`${example}: --help prints the usage and exits 0; an unknown option is one line and exit 1`, async () => {
      const [help, bad] = await Promise.all([run(example, '--help'), run(example, '--bogus-option')]);
      expect(help.code, help.stderr).to.equal(0);
      expect(help.stdout).to.match(/^usage: npm run /);
      expect(bad.code, bad.stdout).to.equal(1);
      expect(bad.stderr.trim().split('\n'), bad.stderr).to.have.length(1);
      expect(bad.stderr).to.match(/--bogus-option.*\(see --help\)/);
    });
  }
});
