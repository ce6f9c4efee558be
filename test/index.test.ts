/**
 * The public surface: the package root exports a curated list (at most 60 runtime
 * values, printed here), every name the README imports from 'txnwal' is among them,
 * and the second entry point `txnwal/backend` resolves through the package's own
 * `exports` from the built `dist/`, as an installed package would.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
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

  it('importing the root loads neither pg nor the AWS SDK: a file: or mem:// process never pays for them', async function () {
    this.timeout(60_000);
    const script = `
      const { createRequire } = await import('node:module');
      const root = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)});
      const loaded = () => Object.keys(createRequire(import.meta.url).cache);
      const before = { pg: loaded().some((k) => k.includes('/node_modules/pg/')), aws: loaded().some((k) => k.includes('/@aws-sdk/')) };
      const loc = await root.openLocation('mem://');
      await loc.close();
      console.log(JSON.stringify(before));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo });
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).to.deep.equal({ pg: false, aws: false });
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
