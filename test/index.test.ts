/**
 * The public surface: the package root exports a curated list (at most 60 runtime
 * values, printed here), every name the README imports from 'txnwal' is among them,
 * and the second entry point `txnwal/backend` resolves through the package's own
 * `exports` from the built `dist/`, as an installed package would.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import * as root from '../src/index.js';
import * as backend from '../src/backend.js';

const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const ROOT_BUDGET = 60;

describe('the public API', () => {
  it(`the package root exports at most ${ROOT_BUDGET} runtime values`, () => {
    const names = Object.keys(root).sort();
    console.log(`      root exports ${names.length} runtime values; txnwal/backend ${Object.keys(backend).length}`);
    expect(names.length).to.be.at.most(ROOT_BUDGET);
    for (const leaked of ['describeError', 'openPool', 'createTableRacing', 'plainBytes', 'TxnsCacheState', 'encodeTs', 'wrapIdBatch', 'commitNotifier', 'WriteLocks']) {
      expect(names, `${leaked} is an internal helper`).to.not.include(leaked);
    }
  });

  it('importing the root loads neither pg, the AWS SDK nor ix: a process pays for them only when it uses them', async function () {
    this.timeout(60_000);
    // ix is required (CommonJS) on the first toAsyncIterable call, so the require cache
    // shows it from then on; that it is absent before proves no static import loaded
    // its CommonJS build, and the source check below rules out a static ESM import.
    const script = `
      const { createRequire } = await import('node:module');
      const root = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)});
      const { of } = await import('rxjs');
      const loaded = () => Object.keys(createRequire(import.meta.url).cache);
      const has = (part) => loaded().some((k) => k.includes(part));
      const before = { pg: has('/node_modules/pg/'), aws: has('/@aws-sdk/'), ix: has('/node_modules/ix/') };
      const loc = await root.openLocation('mem://');
      await loc.close();
      const seen = [];
      for await (const x of root.toAsyncIterable(of(1, 2))) seen.push(x);
      console.log(JSON.stringify({ before, ixAfterUse: has('/node_modules/ix/'), seen }));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo });
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).to.deep.equal({
      before: { pg: false, aws: false, ix: false },
      ixAfterUse: true,
      seen: [1, 2],
    });
    const staticImports: string[] = [];
    for (const file of await listTs(path.join(repo, 'src'))) {
      const text = await readFile(file, 'utf8');
      if (/^import (?!type )[^;]*from '(ix|pg|@aws-sdk\/client-s3)(\/[^']*)?';/m.test(text)) staticImports.push(path.relative(repo, file));
    }
    expect(staticImports, 'value imports of lazily loaded packages').to.deep.equal([]);
  });

  it("every value the README imports from 'txnwal' is exported by the root", async () => {
    const readme = await readFile(path.join(repo, 'README.md'), 'utf8');
    const imported = new Set<string>();
    for (const m of readme.matchAll(/import \{([^}]+)\} from '(txnwal|\.\/src\/index\.js)'/g)) {
      for (const part of m[1]!.split(',')) {
        const name = part.trim();
        if (name && !name.startsWith('type ')) imported.add(name);
      }
    }
    expect(imported.size, 'the README imports something').to.be.greaterThan(5);
    for (const name of imported) expect(Object.keys(root), `README imports ${name}`).to.include(name);
  });

  it("'txnwal/backend' resolves through package.json exports to the built dist/", async function () {
    this.timeout(180_000);
    await promisify(execFile)('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repo });
    // A package can import itself by name through its own `exports`.
    const specifier = 'txnwal/backend';
    const built = (await import(specifier)) as Record<string, unknown>;
    expect(Object.keys(built).sort()).to.deep.equal(Object.keys(backend).sort());
    expect(built.MemConsensus).to.be.a('function');
    const rootSpecifier = 'txnwal';
    const builtRoot = (await import(rootSpecifier)) as Record<string, unknown>;
    expect(Object.keys(builtRoot).sort()).to.deep.equal(Object.keys(root).sort());
    // @internal members are stripped from the published declarations.
    const txnDecl = await readFile(path.join(repo, 'dist', 'txn', 'txn.d.ts'), 'utf8');
    expect(txnDecl).to.not.match(/@internal/);
  });
});

/** Every .ts file under `dir`. */
async function listTs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listTs(full)));
    else if (entry.name.endsWith('.ts')) out.push(full);
  }
  return out;
}
