/**
 * The API reference builds clean: `typedoc` over the public entry points (`txnwal`,
 * `txnwal/backend`, configured in typedoc.json) exits 0 with no warning, so every
 * public export and member has a doc comment, every top-level export an example
 * (test/docs/typedoc-require-examples.mjs), every `{@link}` resolves and every type
 * a public signature names is itself public.
 *
 * The second scenario shows the check bites: the same configuration over a small
 * fixture with an undocumented export and an example-less one fails, naming both.
 *
 * typedoc runs as a child process, as `npm run docs` runs it, writing to a temp
 * directory so the test never touches docs/api. It type-checks the whole program,
 * so it takes 10–30 s on a loaded machine: hence the long timeout.
 */
import { expect } from 'chai';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeChild, runChild, type ChildResult } from '../support/run-child.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TYPEDOC_BIN = path.join(path.dirname(createRequire(import.meta.url).resolve('typedoc/package.json')), 'bin', 'typedoc');
const TIMEOUT_MS = 180_000;

/** Runs typedoc in `cwd` with `args`; colors off so the output can be matched. */
function typedoc(cwd: string, args: string[]): Promise<ChildResult> {
  return runChild(process.execPath, [TYPEDOC_BIN, ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    timeoutMs: TIMEOUT_MS,
  });
}

/** The warning and error lines of a typedoc run. */
function problems(r: ChildResult): string[] {
  return `${r.stdout}\n${r.stderr}`.split('\n').filter((line) => /\[(warning|error)\]/.test(line));
}

describe('API reference (typedoc)', function () {
  this.timeout(2 * TIMEOUT_MS);
  let tmp: string;

  beforeEach(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'txnwal-docs-'));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('builds for txnwal and txnwal/backend with no warnings: every public export documented, with an example', async () => {
    const out = path.join(tmp, 'api');
    const r = await typedoc(ROOT, ['--out', out]);
    expect(r.code, describeChild('typedoc', r)).to.equal(0);
    expect(problems(r), describeChild('typedoc', r)).to.deep.equal([]);
    // Both entry points are in the reference, under their package names.
    const index = await readFile(path.join(out, 'index.html'), 'utf8');
    expect(index).to.include('txnwal/backend');
    expect((await stat(path.join(out, 'functions', 'txnwal.openDatabase.html'))).isFile()).to.equal(true);
    expect((await stat(path.join(out, 'classes', 'txnwal_backend.MemConsensus.html'))).isFile()).to.equal(true);
  });

  it('fails, naming the export, when one has no doc comment or no example', async () => {
    // The project's configuration, over a fixture: the same rules, two broken exports.
    await writeFile(path.join(tmp, 'package.json'), JSON.stringify({ name: 'docs-fixture', type: 'module' }));
    await writeFile(
      path.join(tmp, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', types: [] }, files: ['fixture.ts'] }),
    );
    await writeFile(
      path.join(tmp, 'fixture.ts'),
      [
        '/**',
        ' * A documented export, with an example.',
        ' *',
        ' * ```ts',
        ' * documented();',
        ' * ```',
        ' */',
        'export function documented(): void {}',
        '',
        'export function undocumented(): void {}',
        '',
        '/** Documented, but with no example. */',
        'export const withoutExample = 1;',
        '',
      ].join('\n'),
    );
    await writeFile(
      path.join(tmp, 'typedoc.json'),
      JSON.stringify({
        extends: [path.join(ROOT, 'typedoc.json')],
        entryPoints: ['fixture.ts'],
        tsconfig: 'tsconfig.json',
        out: 'api',
        intentionallyNotExported: [],
        intentionallyNotDocumented: [],
      }),
    );
    const r = await typedoc(tmp, []);
    expect(r.code, describeChild('typedoc over the fixture', r)).to.not.equal(0);
    const found = problems(r).join('\n');
    expect(found, describeChild('typedoc over the fixture', r)).to.match(/undocumented .*does not have any documentation/);
    expect(found).to.match(/withoutExample .*has a doc comment without an example/);
    expect(found).to.not.match(/\bdocumented \(/);
  });
});
