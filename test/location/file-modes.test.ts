/**
 * Data files are private to their owner (issue 10): a `file:` location creates its
 * directories 0700 and its blob files and SQLite databases (with their -wal/-shm)
 * 0600, whatever the umask, unless the dirMode/fileMode options say otherwise.
 */
import { expect } from 'chai';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openTimestampOracle } from '../../src/coord/open-oracle.js';
import { openLocation } from '../../src/location/location.js';
import { utf8 } from '../support/bytes.js';

async function modeOf(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}

/** Every file in `dir` (not recursive) with its mode, as `name: 0oNNN`. */
async function modes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await readdir(dir)) out[name] = (await modeOf(path.join(dir, name))).toString(8);
  return out;
}

describe('location: owner-only data files', function () {
  let root: string;
  let umask: number;
  beforeEach(async function () {
    root = await mkdtemp(path.join(os.tmpdir(), 'txnwal-modes-'));
    // The usual umask: without our own modes, files would come out 0644 and directories 0755.
    umask = process.umask(0o022);
  });
  afterEach(async function () {
    process.umask(umask);
    await rm(root, { recursive: true, force: true });
  });

  it('file:<dir> creates 0700 directories, 0600 blob files and a 0600 SQLite database with its -wal and -shm', async function () {
    const dir = path.join(root, 'parent', 'data');
    const loc = await openLocation(`file:${dir}`);
    try {
      await loc.blob.set('s1/p1', utf8('x'));
      await loc.consensus.compareAndSet('k', undefined, { seqno: 1, data: utf8('v') });
      expect(await modeOf(path.join(root, 'parent')), 'a missing parent').to.equal(0o700);
      expect(await modeOf(dir)).to.equal(0o700);
      expect(await modeOf(path.join(dir, 'blob'))).to.equal(0o700);
      expect(await modes(path.join(dir, 'blob'))).to.deep.equal({ 's1∕p1': '600' });
      // WAL mode keeps -wal and -shm beside the database while it is open.
      expect(await modes(dir)).to.deep.equal({
        blob: '700',
        'consensus.sqlite': '600',
        'consensus.sqlite-wal': '600',
        'consensus.sqlite-shm': '600',
        // The wake-up channel's takeover lock and socket (socket-state-changes.ts).
        'wake.lock': '600',
        'wake.sock': '600',
      });
    } finally {
      await loc.close();
    }
  });

  it('the modes are exact even under a umask that would take away the owner bits', async function () {
    process.umask(0o277);
    const dir = path.join(root, 'data');
    const loc = await openLocation(`file:${dir}`);
    try {
      await loc.blob.set('k', utf8('x'));
      await loc.consensus.compareAndSet('k', undefined, { seqno: 1, data: utf8('v') });
      expect(await modeOf(dir)).to.equal(0o700);
      expect(await modeOf(path.join(dir, 'blob', 'k'))).to.equal(0o600);
      expect(await modeOf(path.join(dir, 'consensus.sqlite'))).to.equal(0o600);
    } finally {
      await loc.close();
    }
  });

  it('dirMode and fileMode override the defaults', async function () {
    const dir = path.join(root, 'shared');
    const loc = await openLocation(`file:${dir}`, { dirMode: 0o750, fileMode: 0o640 });
    try {
      await loc.blob.set('k', utf8('x'));
      expect(await modeOf(dir)).to.equal(0o750);
      expect(await modeOf(path.join(dir, 'blob'))).to.equal(0o750);
      expect(await modeOf(path.join(dir, 'blob', 'k'))).to.equal(0o640);
      expect(await modeOf(path.join(dir, 'consensus.sqlite'))).to.equal(0o640);
    } finally {
      await loc.close();
    }
  });

  it('the file: timestamp oracle is a 0600 database in a 0700 directory', async function () {
    const dir = path.join(root, 'oracle');
    const oracle = await openTimestampOracle(`file:${dir}`, { now: () => 0 });
    try {
      await oracle.writeTs();
      expect(await modeOf(dir)).to.equal(0o700);
      expect(await modes(dir)).to.deep.equal({ 'oracle.sqlite': '600', 'oracle.sqlite-wal': '600', 'oracle.sqlite-shm': '600' });
    } finally {
      await oracle.close();
    }
  });
});
