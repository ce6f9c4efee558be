/**
 * The package as users install it: `npm pack` of a clean checkout, installed into a
 * temporary project, type-checked by a strict TypeScript consumer and run from ESM
 * and from CommonJS.
 *
 * The scenario (all in `before`, each `it` checks one outcome):
 *  1. Copy the repository without `dist/`, `node_modules/` or `.git` (a fresh clone),
 *     link its node_modules for the compiler, and `npm pack` it: the tarball can only
 *     contain code if `prepack` built it.
 *  2. Install the tarball into a temporary project: extract it into
 *     `node_modules/txnwal`, and link beside it exactly the packages npm would install
 *     for it, the closure of its `dependencies` (and present `optionalDependencies`),
 *     taken from the repository's node_modules. Plus what the consumer itself brings:
 *     `@types/node`, as any Node TypeScript project has, and the repository's
 *     `typescript` to run.
 *  3. Compile a consumer (`tsc`, `module: NodeNext`, `strict` and more, **no
 *     skipLibCheck**): `esm.mts` and `cjs.cts` import both entry points, `txnwal` and
 *     `txnwal/backend`. Every published declaration they reach is checked, and no
 *     dev-only `@types` package (`@types/pg`, `@types/better-sqlite3`) is installed, so
 *     a declaration that needs one fails here.
 *  4. Link the `txnwal` command as npm would (`node_modules/.bin/txnwal` → the
 *     package.json `bin` target, made executable) and run it: its `#!/usr/bin/env node`
 *     line and the built `dist/cli/` must work from the tarball alone.
 *  5. Run the compiled `esm.mjs` (`file:` location: SQLite, the native module, and the
 *     shipped proto schemas) and `cjs.cjs` (`require('txnwal')`, which Node >= 20.19
 *     serves from the ESM build through require(esm)); each writes and reads one shard
 *     and must exit 0 on its own.
 *
 * Why extract and link instead of `npm install <tarball>`: installing would resolve
 * the dependencies from a registry (the network, or a cache that may not hold them)
 * and rebuild better-sqlite3's native module, which takes minutes; linking the
 * repository's installed copies is offline, takes milliseconds, and still gives the
 * consumer a node_modules with nothing but the package's production closure, which
 * is what decides whether its declarations and imports resolve. What it does not
 * check is npm's own resolution of the version ranges, which `npm ci` in the
 * repository already exercises.
 *
 * Example (what the consumer sees, from the project's root):
 * ```
 * node_modules/txnwal/        the extracted tarball: dist/, proto/, LICENSE, README.md, package.json
 * node_modules/rxjs -> …      one link per package of the production closure
 * node_modules/@types/node -> …
 * esm.mts cjs.cts tsconfig.json  →  tsc  →  out/esm.mjs out/cjs.cjs  →  node out/esm.mjs
 * ```
 */
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { describeChild, runChild, type ChildResult } from '../support/run-child.js';

const repo = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** Dev-only type packages a published declaration must never need. */
const DEV_ONLY_TYPES = ['@types/pg', '@types/better-sqlite3', '@types/mocha', '@types/chai'];
/** Top-level entries of the repository that a fresh clone does not have. */
const NOT_IN_A_CLONE = new Set(['node_modules', 'dist', '.git', '.txnwal-data', 'data', 'tmp']);

interface PackedFile {
  readonly path: string;
}

interface PackageJson {
  readonly bin?: Record<string, string>;
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
  readonly exports?: Record<string, string | Record<string, string>>;
}

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/** The environment for npm, without the npm_* variables of an `npm test` that may be running us. */
function npmEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
}

/**
 * The packages npm would install for `deps`, found as Node finds them (the nearest
 * node_modules upwards from the package that depends on one), starting in
 * `modules`. Returns the names of those at the top level of `modules`, which the
 * consumer links; nested copies come along inside their parents' directories.
 */
async function productionClosure(modules: string, deps: Iterable<string>): Promise<string[]> {
  const top = new Set<string>();
  const seen = new Set<string>();
  const visit = async (fromDir: string, name: string, optional: boolean): Promise<void> => {
    for (let dir = fromDir; ; dir = path.dirname(dir)) {
      if (path.basename(dir) === 'node_modules') continue;
      const candidate = path.join(dir, 'node_modules', name);
      if (existsSync(path.join(candidate, 'package.json'))) {
        if (seen.has(candidate)) return;
        seen.add(candidate);
        if (path.dirname(candidate) === modules || path.dirname(path.dirname(candidate)) === modules) top.add(name);
        const pkg = await readJson<PackageJson>(path.join(candidate, 'package.json'));
        for (const d of Object.keys(pkg.dependencies ?? {})) await visit(candidate, d, false);
        for (const d of Object.keys(pkg.optionalDependencies ?? {})) await visit(candidate, d, true);
        return;
      }
      if (dir === path.dirname(modules)) {
        // An optional dependency for another platform is simply absent; a required one must be there.
        if (!optional) throw new Error(`${name}, a dependency, is not installed in ${modules}: run npm ci`);
        return;
      }
    }
  };
  for (const d of deps) await visit(path.dirname(modules), d, false);
  return [...top].sort();
}

async function linkInto(modules: string, name: string, target: string): Promise<void> {
  const link = path.join(modules, name);
  await mkdir(path.dirname(link), { recursive: true });
  await symlink(target, link, 'dir');
}

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

// The consumer: the same workload from both module systems, in the package's own words.
const TSCONFIG = {
  compilerOptions: {
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    target: 'ES2022',
    lib: ['ES2022'],
    types: ['node'],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    noImplicitOverride: true,
    skipLibCheck: false,
    outDir: 'out',
  },
  files: ['esm.mts', 'cjs.cts'],
};

const ESM_CONSUMER = `
import { Codecs, PersistClient, newShardId, type ShardCodecs } from 'txnwal';
import { MemConsensus } from 'txnwal/backend';

const codecs: ShardCodecs<string, null> = { key: Codecs.string, val: Codecs.unit };
// A file: location: SQLite consensus (the native module) and blob files, in the cwd.
const client = await PersistClient.open('file:./data');
const id = newShardId();
const writer = await client.openWriter(id, codecs);
const appended = await writer.compareAndAppend([['esm', null, 0, 1]], 0, 1);
const reader = await client.openLeasedReader(id, codecs);
const rows = await reader.snapshotAndFetch(0);
await reader.expire();
await client.close();
console.log(JSON.stringify({ appended, rows, backend: typeof MemConsensus }));
`;

const CJS_CONSUMER = `
import { Codecs, InvalidUsage, PersistClient, newShardId } from 'txnwal';
import { UpdateBeyondUpper } from 'txnwal/backend';

async function main(): Promise<void> {
  const codecs = { key: Codecs.string, val: Codecs.unit };
  const client = await PersistClient.open('mem://');
  const id = newShardId();
  const writer = await client.openWriter(id, codecs);
  const appended = await writer.compareAndAppend([['cjs', null, 0, 1]], 0, 1);
  // Both entry points are one module instance: the backend's error class is the root's InvalidUsage.
  const misuse = await writer.compareAndAppend([['late', null, 5, 1]], 1, 2).then(
    () => 'accepted',
    (err: unknown) => (err instanceof UpdateBeyondUpper && err instanceof InvalidUsage ? 'UpdateBeyondUpper is an InvalidUsage' : String(err)),
  );
  const reader = await client.openLeasedReader(id, codecs);
  const rows = await reader.snapshotAndFetch(0);
  await reader.expire();
  await client.close();
  console.log(JSON.stringify({ appended, rows, misuse, moduleSystem: typeof require }));
}
main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
`;

describe('the packed package, installed in a fresh project', function () {
  // One pack (a full build) and one type check: about 30 s idle, well under 90 s loaded.
  this.timeout(90_000);
  let work: string;
  let packed: readonly string[];
  let consumer: string;
  let installed: string;
  let typecheck: ChildResult;

  before(async function () {
    const started = Date.now();
    work = await mkdtemp(path.join(os.tmpdir(), 'txnwal-pack-'));

    // 1. A clean checkout, packed: only prepack can put dist/ into the tarball.
    const checkout = path.join(work, 'checkout');
    await cp(repo, checkout, { recursive: true, filter: (src) => !NOT_IN_A_CLONE.has(path.relative(repo, src)) });
    await symlink(await realpath(path.join(repo, 'node_modules')), path.join(checkout, 'node_modules'), 'dir');
    const pack = await runChild('npm', ['pack', '--json', '--offline', '--pack-destination', work], { cwd: checkout, env: npmEnv(), timeoutMs: 75_000 });
    expect(pack.code, describeChild('npm pack', pack)).to.equal(0);
    const [report] = JSON.parse(pack.stdout) as [{ filename: string; files: PackedFile[] }];
    packed = report.files.map((f) => f.path).sort();
    const packedAt = Date.now();

    // 2. The tarball extracted as node_modules/txnwal, its production closure linked beside it.
    consumer = path.join(work, 'consumer');
    const modules = path.join(consumer, 'node_modules');
    installed = path.join(modules, 'txnwal');
    await mkdir(installed, { recursive: true });
    const untar = await runChild('tar', ['-xzf', path.join(work, report.filename), '-C', installed, '--strip-components=1'], { timeoutMs: 30_000 });
    expect(untar.code, describeChild('tar', untar)).to.equal(0);
    const repoModules = await realpath(path.join(repo, 'node_modules'));
    const pkg = await readJson<PackageJson>(path.join(installed, 'package.json'));
    const closure = await productionClosure(repoModules, [...Object.keys(pkg.dependencies ?? {})]);
    for (const name of new Set([...closure, '@types/node'])) await linkInto(modules, name, path.join(repoModules, name));

    // 3. The consumer, compiled (the result is checked below; the run tests use its output).
    await writeFile(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await writeFile(path.join(consumer, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
    await writeFile(path.join(consumer, 'esm.mts'), ESM_CONSUMER);
    await writeFile(path.join(consumer, 'cjs.cts'), CJS_CONSUMER);
    const tsc = path.join(repoModules, 'typescript', 'bin', 'tsc');
    const installedAt = Date.now();
    typecheck = await runChild(process.execPath, [tsc, '-p', consumer], { cwd: consumer, timeoutMs: 75_000 });
    const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
    console.log(
      `      npm pack (with the build) ${seconds(packedAt - started)}, install ${seconds(installedAt - packedAt)}, ` +
        `consumer tsc ${seconds(Date.now() - installedAt)}; ${packed.length} files, ${closure.length} linked dependencies`,
    );
  });
  after(() => (work ? rm(work, { recursive: true, force: true }) : undefined));

  it('npm pack builds dist/ first (prepack) and ships code, declarations, proto schemas, LICENSE and README', () => {
    for (const file of ['package.json', 'LICENSE', 'README.md', 'proto/persist.proto', 'proto/txn.proto', 'dist/index.js', 'dist/index.d.ts', 'dist/backend.js', 'dist/backend.d.ts', 'dist/cli/main.js']) {
      expect(packed, `the tarball has ${file}`).to.include(file);
    }
  });

  it('ships no source maps, no sources, no tests: nothing that points at files it does not ship', async () => {
    const outside = packed.filter((f) => !/^(dist\/.*\.(js|d\.ts)|proto\/.*\.proto|package\.json|README\.md|LICENSE)$/.test(f));
    expect(outside, 'files other than dist/*.js, dist/*.d.ts, proto/*.proto, package.json, README.md, LICENSE').to.deep.equal([]);
    for (const file of (await filesUnder(path.join(installed, 'dist'))).filter((f) => f.endsWith('.js') || f.endsWith('.d.ts'))) {
      const text = await readFile(path.join(installed, 'dist', file), 'utf8');
      expect(text, `dist/${file} names a source map`).to.not.include('sourceMappingURL');
    }
    expect(await readFile(path.join(installed, 'LICENSE'), 'utf8')).to.match(/^\s*Apache License\s+Version 2\.0, January 2004/);
  });

  it("every target of package.json's exports is in the tarball, with types first and an import and a default condition", async () => {
    const pkg = await readJson<PackageJson>(path.join(installed, 'package.json'));
    for (const entry of ['.', './backend']) {
      const conditions = pkg.exports?.[entry];
      expect(conditions, `exports["${entry}"]`).to.be.an('object');
      const c = conditions as Record<string, string>;
      // TypeScript takes the first condition that matches, so "types" must lead.
      expect(Object.keys(c)[0], `exports["${entry}"] lists "types" first`).to.equal('types');
      expect(c, `exports["${entry}"]`).to.include.keys('types', 'import', 'default');
      for (const target of Object.values(c)) expect(packed, `exports["${entry}"] → ${target}`).to.include(target.replace(/^\.\//, ''));
    }
  });

  it('a strict NodeNext consumer type-checks against both entry points without skipLibCheck or dev-only @types', () => {
    for (const types of DEV_ONLY_TYPES) expect(existsSync(path.join(consumer, 'node_modules', types)), `${types} is not installed`).to.equal(false);
    expect(typecheck.code, describeChild('tsc over the consumer (errors in node_modules/txnwal are the published declarations)', typecheck)).to.equal(0);
  });

  it('installs the txnwal command: package.json bin, a #!/usr/bin/env node line, and --help runs through the link npm makes', async () => {
    const pkg = await readJson<PackageJson>(path.join(installed, 'package.json'));
    expect(pkg.bin).to.deep.equal({ txnwal: './dist/cli/main.js' });
    const target = path.join(installed, 'dist', 'cli', 'main.js');
    expect((await readFile(target, 'utf8')).split('\n')[0]).to.equal('#!/usr/bin/env node');
    // What npm does on install: a link in node_modules/.bin, the target made executable.
    const bin = path.join(consumer, 'node_modules', '.bin');
    await mkdir(bin, { recursive: true });
    await symlink(path.relative(bin, target), path.join(bin, 'txnwal'));
    await chmod(target, 0o755);
    const env = { ...npmEnv(), PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` };
    const help = await runChild(path.join(bin, 'txnwal'), ['--help'], { cwd: consumer, env, timeoutMs: 30_000 });
    expect(help.code, describeChild('txnwal --help', help)).to.equal(0);
    expect(help.stdout).to.match(/^Usage: txnwal/);
    for (const command of ['inspect', 'tail', 'snapshot']) expect(help.stdout).to.match(new RegExp(`^  ${command} `, 'm'));
    const missing = await runChild(path.join(bin, 'txnwal'), ['inspect', 'file:./no-such-store'], { cwd: consumer, env, timeoutMs: 30_000 });
    expect(missing.code, describeChild('txnwal inspect of a missing store', missing)).to.equal(1);
    expect(missing.stderr.trimEnd().split('\n')).to.have.length(1);
    expect(existsSync(path.join(consumer, 'no-such-store')), 'the command created nothing').to.equal(false);
  });

  it('runs from ESM: a file: location, one shard written and read back, and the process exits on its own', async () => {
    const r = await runChild(process.execPath, [path.join(consumer, 'out', 'esm.mjs')], { cwd: consumer, timeoutMs: 30_000 });
    expect(r.code, describeChild('the ESM consumer', r)).to.equal(0);
    expect(JSON.parse(r.stdout.trim())).to.deep.equal({ appended: { ok: true }, rows: [['esm', null, 0, 1]], backend: 'function' });
    expect(await readdir(path.join(consumer, 'data'))).to.include.members(['blob', 'consensus.sqlite']);
  });

  it("runs from CommonJS: require('txnwal') and require('txnwal/backend') load the ESM build as one module instance", async () => {
    const r = await runChild(process.execPath, [path.join(consumer, 'out', 'cjs.cjs')], { cwd: consumer, timeoutMs: 30_000 });
    expect(r.code, describeChild('the CommonJS consumer', r)).to.equal(0);
    expect(await readFile(path.join(consumer, 'out', 'cjs.cjs'), 'utf8'), 'tsc compiled the .cts to require() calls').to.include('require("txnwal")');
    expect(JSON.parse(r.stdout.trim())).to.deep.equal({
      appended: { ok: true },
      rows: [['cjs', null, 0, 1]],
      misuse: 'UpdateBeyondUpper is an InvalidUsage',
      moduleSystem: 'function',
    });
  });
});
