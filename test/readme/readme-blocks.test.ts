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
 * Any other `readme-test` comment fails the test, so a typo cannot quietly skip a block.
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
import { describeChild, runChild } from '../support/run-child.js';

const repo = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** How long one block may run: a few seconds idle, but the suite must pass with both cores saturated. */
const BLOCK_TIMEOUT_MS = 45_000;

type Marker = { kind: 'run' } | { kind: 'postgres' } | { kind: 'not-runnable'; reason: string };

interface Block {
  /** 1-based, in README order. */
  readonly index: number;
  /** The README line of the opening fence. */
  readonly line: number;
  /** The nearest heading above the block. */
  readonly section: string;
  readonly code: string;
  readonly marker: Marker;
}

const MARKER = /^<!--\s*readme-test:\s*(.*?)\s*-->\s*$/;

function parseMarker(text: string, line: number): Marker {
  if (text === 'postgres') return { kind: 'postgres' };
  const notRunnable = /^not runnable:\s*(\S.*)$/.exec(text);
  if (notRunnable) return { kind: 'not-runnable', reason: notRunnable[1]! };
  throw new Error(
    `README.md:${line}: unknown marker "readme-test: ${text}"; the README-blocks test knows "postgres" and "not runnable: <reason>"`,
  );
}

/** The ```ts blocks of a markdown text, with their markers; throws on a marker that is misspelt or not before a block. */
export function extractTsBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  let section = '(top)';
  let pending: { marker: Marker; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    const heading = /^#{1,6}\s+(.*)$/.exec(text);
    if (heading) section = heading[1]!.trim();
    const marker = MARKER.exec(text.trim());
    if (marker) {
      pending = { marker: parseMarker(marker[1]!, i + 1), line: i + 1 };
      continue;
    }
    const fence = /^(`{3,})\s*(\S*)/.exec(text);
    if (!fence) {
      if (pending && text.trim() !== '') throw new Error(`README.md:${pending.line}: a readme-test marker must be directly above a \`\`\`ts fence`);
      continue;
    }
    // Any fenced block: find its end, so fences inside it are not taken for blocks.
    const open = i;
    let close = open + 1;
    const closing = new RegExp(`^\`{${fence[1]!.length},}\\s*$`);
    while (close < lines.length && !closing.test(lines[close]!)) close++;
    const lang = fence[2]!.toLowerCase();
    if (lang === 'ts' || lang === 'typescript') {
      blocks.push({
        index: blocks.length + 1,
        line: open + 1,
        section,
        code: lines.slice(open + 1, close).join('\n') + '\n',
        marker: pending?.marker ?? { kind: 'run' },
      });
    } else if (pending) {
      throw new Error(`README.md:${pending.line}: a readme-test marker must be directly above a \`\`\`ts fence, not \`\`\`${lang}`);
    }
    pending = undefined;
    i = close;
  }
  return blocks;
}

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
  after(() => rm(root, { recursive: true, force: true }));

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
    if (block.marker.kind === 'not-runnable') {
      const reason = block.marker.reason;
      it(`${name} is marked not runnable: ${reason}`, () => {
        // Nothing to run; it is still type-checked below. The marker's reason is the record.
        expect(reason.length).to.be.greaterThan(10);
      });
      continue;
    }
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

describe('README.md block extraction', () => {
  it('takes ```ts blocks with their line and section, skips other languages, and reads markers', () => {
    const md = [
      '# Title', // 1
      '```sh', // 2
      '```ts not a block: inside sh', // 3
      '```', // 4
      '## Part', // 5
      '<!-- readme-test: postgres -->', // 6
      '```ts', // 7
      'const a = 1;', // 8
      '```', // 9
      '<!-- readme-test: not runnable: needs an S3 bucket -->', // 10
      '```typescript', // 11
      'const b = 2;', // 12
      '```', // 13
      '```ts', // 14
      '```', // 15
    ].join('\n');
    const got = extractTsBlocks(md).map(({ index, line, section, code, marker }) => ({ index, line, section, code, marker }));
    expect(got).to.deep.equal([
      { index: 1, line: 7, section: 'Part', code: 'const a = 1;\n', marker: { kind: 'postgres' } },
      { index: 2, line: 11, section: 'Part', code: 'const b = 2;\n', marker: { kind: 'not-runnable', reason: 'needs an S3 bucket' } },
      { index: 3, line: 14, section: 'Part', code: '\n', marker: { kind: 'run' } },
    ]);
  });

  it('refuses a misspelt marker, a marker without a reason, and a marker that is not above a ts block', () => {
    expect(() => extractTsBlocks('<!-- readme-test: postgress -->\n```ts\n```')).to.throw(/README.md:1: unknown marker "readme-test: postgress"/);
    expect(() => extractTsBlocks('<!-- readme-test: not runnable: -->\n```ts\n```')).to.throw(/unknown marker/);
    expect(() => extractTsBlocks('<!-- readme-test: postgres -->\ntext\n```ts\n```')).to.throw(/directly above a ```ts fence/);
    expect(() => extractTsBlocks('<!-- readme-test: postgres -->\n```sh\n```')).to.throw(/not ```sh/);
  });
});
