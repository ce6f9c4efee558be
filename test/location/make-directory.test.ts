/**
 * makeDirectory: `mkdir -p` that settles. Node 20's recursive fs.mkdir never settles
 * when a parent exists but refuses new entries with ENOENT, as /proc does, so opening
 * `file:/proc/x` used to hang forever.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DeterminateError } from '../../src/location/errors.js';
import { makeDirectory } from '../../src/location/make-directory.js';
import { PersistClient } from '../../src/persist/client.js';
import { expectReject } from '../support/persist.js';

describe('location: makeDirectory', function () {
  let root: string;
  beforeEach(async function () {
    root = await mkdtemp(path.join(os.tmpdir(), 'txnwal-mkdir-'));
  });
  afterEach(async function () {
    await rm(root, { recursive: true, force: true });
  });

  it('creates missing parents, accepts an existing directory, refuses a file in the way', async function () {
    const dir = path.join(root, 'a', 'b', 'c');
    await makeDirectory(dir, 0o700);
    expect((await stat(dir)).isDirectory()).to.equal(true);
    await makeDirectory(dir, 0o700);
    await writeFile(path.join(root, 'file'), 'x');
    const err = await expectReject(makeDirectory(path.join(root, 'file'), 0o700), Error);
    expect((err as NodeJS.ErrnoException).code).to.equal('EEXIST');
  });

  it('PersistClient.open("file:/proc/…") rejects with a clear error instead of hanging', async function () {
    if (!existsSync('/proc/self')) this.skip();
    const dir = `/proc/txnwal-${path.basename(root)}`;
    await expectReject(makeDirectory(`${dir}/blob`, 0o700), Error, /ENOENT/);
    await expectReject(PersistClient.open(`file:${dir}`), DeterminateError, /cannot open blob directory .*ENOENT/);
  });
});
