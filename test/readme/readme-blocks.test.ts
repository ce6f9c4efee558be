/**
 * Every ```ts block in README.md runs as written, so the README cannot rot.
 *
 * How a block runs: the block's text, unchanged, becomes `block-<n>/block.ts` under a
 * fresh temp root and runs with `node --import tsx block.ts` in a child process of
 * its own, with that directory as its cwd (so `file:./data` lands in the temp dir).
 * It must exit 0 on its own within BLOCK_TIMEOUT_MS: a block that leaves a reader,
 * timer or connection open hangs and fails, as it would for a user.
 *
 * How blocks import: as a user writes, `from 'txnwal'` and `from 'txnwal/backend'`
 * (never `./src/index.js`, which works only from the repository root). The temp
 * root's tsconfig.json maps those two specifiers to src/index.ts and src/backend.ts
 * (`paths`, which tsx honours), so blocks run against the source like the rest of the
 * suite, with no build; its node_modules is a link to the repository's, for `rxjs`
 * and the like. That the built package exports the same names is test/index.test.ts's
 * job, and that it installs and runs is test/package/packed-tarball.test.ts's.
 *
 * Markers: an HTML comment on the line just before a block's fence (GitHub does not
 * render it; a reader copying the block sees none of it):
 * - `<!-- readme-test: postgres -->`: the block needs a Postgres server; the test
 *   passes one (test/support/postgres.ts: `TXNWAL_TEST_PG_URL`, or an embedded
 *   server, a fresh database per block) as `TXNWAL_TEST_PG_URL`, where the block
 *   reads it. Unmarked blocks run without that variable.
 * - `<!-- readme-test: not runnable: <reason> -->`: type-checked but not run; the
 *   reason is required and printed.
 * Any other `readme-test` comment fails the test, so a typo cannot quietly skip a block
 * (the parsing rules: markdown-blocks.ts).
 *
 * Besides running, all blocks are type-checked together as strict `NodeNext` modules
 * (one tsc run over the temp root), so a README example that only works because tsx
 * ignores types fails too.
 *
 * Example (a README block and what the test makes of it):
 * ```
 * ## Using persist          →  it('block 1 (README.md:52, "Using persist") runs as written and exits on its own')
 * ```ts                         block-1/block.ts: the block's lines, verbatim
 * import { PersistClient } from 'txnwal';
 * …
 * ```
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { freshTestDatabaseUrl } from '../support/postgres.js';
import { extractTsBlocks } from './markdown-blocks.js';
import { describeChild, runChild } from '../support/run-child.js';

const repo = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** How long one block may run: a few seconds idle, but the suite must pass with both cores saturated. */
const BLOCK_TIMEOUT_MS = 45_000;

const readme = await readFile(path.join(repo, 'README.md'), 'utf8');
const blocks = extractTsBlocks(readme);

describe('README.md: every TypeScript block runs as written', function () {
  this.timeout(BLOCK_TIMEOUT_MS + 15_000);
  let root: string;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'txnwal-readme-'));
    await writeFile(path.join(root, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
    await writeFile(
      path.join(root, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          lib: ['ES2022'],
          types: ['node'],
          strict: true,
          noEmit: true,
          // The published declarations are test/package/packed-tarball.test.ts's subject; here only the blocks are.
          skipLibCheck: true,
          paths: { txnwal: [path.join(repo, 'src/index.ts')], 'txnwal/backend': [path.join(repo, 'src/backend.ts')] },
        },
        include: ['block-*/block.ts'],
      }),
    );
    await symlink(path.join(repo, 'node_modules'), path.join(root, 'node_modules'), 'dir');
    for (const block of blocks) {
      await mkdir(path.join(root, `block-${block.index}`));
      await writeFile(path.join(root, `block-${block.index}`, 'block.ts'), block.code);
    }
  });
  after(() => (root ? rm(root, { recursive: true, force: true }) : undefined));

  it('has blocks, each importing the package by name', () => {
    expect(blocks.length, 'README.md has ```ts blocks').to.be.greaterThan(3);
    for (const block of blocks) {
      expect(block.code, `block ${block.index} (README.md:${block.line}) imports from the source tree; write from 'txnwal'`).to.not.match(
        /from '\.{1,2}\/src\//,
      );
    }
  });

  for (const block of blocks) {
    const name = `block ${block.index} (README.md:${block.line}, "${block.section}")`;
    // Not run (the type check below still covers it); the marker's reason is the record.
    if (block.marker.kind === 'not-runnable') continue;
    const needsPostgres = block.marker.kind === 'postgres';
    it(`${name} runs as written and exits on its own${needsPostgres ? ' (given TXNWAL_TEST_PG_URL)' : ''}`, async () => {
      const env: NodeJS.ProcessEnv = { ...process.env };
      delete env.TXNWAL_TEST_PG_URL;
      if (needsPostgres) env.TXNWAL_TEST_PG_URL = await freshTestDatabaseUrl();
      const dir = path.join(root, `block-${block.index}`);
      const r = await runChild(process.execPath, ['--import', 'tsx', 'block.ts'], { cwd: dir, env, timeoutMs: BLOCK_TIMEOUT_MS });
      expect(r.code, describeChild(`${name}`, r)).to.equal(0);
    });
  }

  it('every block type-checks as a strict NodeNext module', async function () {
    this.timeout(120_000);
    for (const b of blocks) {
      if (b.marker.kind === 'not-runnable') console.log(`      block ${b.index} (README.md:${b.line}) is type-checked only: ${b.marker.reason}`);
    }
    const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await runChild(process.execPath, [tsc, '-p', root], { cwd: root, timeoutMs: 110_000 });
    // Name each failing file by its README block.
    const located = r.stdout.replace(/block-(\d+)\/block\.ts\((\d+),(\d+)\)/g, (_all, n: string, l: string) => {
      const block = blocks[Number(n) - 1]!;
      return `README.md:${block.line + Number(l)} (block ${n})`;
    });
    expect(r.code, `tsc over the README blocks:\n${located}${r.stderr}`).to.equal(0);
  });
});
