/**
 * FileBlob against the Blob conformance suite, plus its on-disk specifics: atomic
 * writes leave no temp files, "/" is stored as "∕", helper files are skipped by
 * listing, strangers make listing throw, and data survives re-opening the directory.
 */
import { expect } from 'chai';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DeterminateError, IndeterminateError, LocationUsageError } from '../../src/location/errors.js';
import { FileBlob } from '../../src/location/file-blob.js';
import { expectBytes, utf8 } from '../support/bytes.js';
import { describeBlobConformance } from './blob-conformance.js';

let root: string;
let dirs = 0;

function freshDir(): string {
  return path.join(root, `d${dirs++}`);
}

describe('FileBlob', function () {
  before(async function () {
    root = await mkdtemp(path.join(os.tmpdir(), 'txnwal-file-blob-'));
  });

  after(async function () {
    await rm(root, { recursive: true, force: true });
  });

  describeBlobConformance('FileBlob', (options) => FileBlob.open(freshDir(), options));

  describe('FileBlob specifics', function () {
    let dir: string;
    let blob: FileBlob;

    beforeEach(async function () {
      dir = freshDir();
      blob = await FileBlob.open(dir);
    });

    afterEach(async function () {
      await blob.close();
    });

    async function keysUnder(prefix: string): Promise<string[]> {
      const keys: string[] = [];
      await blob.listKeysAndMetadata(prefix, (k) => keys.push(k));
      return keys.sort();
    }

    it('leaves no .tmp file after set and names files with "∕"', async function () {
      await blob.set('s1/p1', utf8('x'));
      await blob.set('s1/p1', utf8('y'));
      expect(await readdir(dir)).to.deep.equal(['s1\u2215p1']);
    });

    it('skips stray .tmp and .bak files when listing', async function () {
      await blob.set('s1/p1', utf8('x'));
      await writeFile(path.join(dir, 's1\u2215p2.0123456789ab.tmp'), 'partial');
      await writeFile(path.join(dir, 's1\u2215p3.bak'), 'tombstone');
      expect(await keysUnder('s1/')).to.deep.equal(['s1/p1']);
      expect(await blob.get('s1/p2')).to.equal(undefined);
    });

    it('listing throws on an unexpected file or directory', async function () {
      await blob.set('k', utf8('x'));
      await writeFile(path.join(dir, '.DS_Store'), '');
      await expectDeterminate(keysUnder(''));
      await rm(path.join(dir, '.DS_Store'));
      await mkdir(path.join(dir, 'subdir'));
      await expectDeterminate(keysUnder(''));
    });

    it('rejects keys that cannot be stored unambiguously', async function () {
      for (const bad of ['', '.hidden', 'a\u2215b', 'x.tmp', 'x.bak', 'nul\0', 'k'.repeat(300)]) {
        try {
          await blob.set(bad, utf8('x'));
          expect.fail(`set ${JSON.stringify(bad)} should throw`);
        } catch (err) {
          expect(err).to.be.instanceOf(LocationUsageError);
        }
      }
      expect(await readdir(dir)).to.deep.equal([]);
    });

    it('data survives re-opening the directory', async function () {
      await blob.set('s1/p1', utf8('durable'));
      await blob.close();
      blob = await FileBlob.open(dir);
      expectBytes(await blob.get('s1/p1'), utf8('durable'));
      expect(await keysUnder('')).to.deep.equal(['s1/p1']);
    });

    it('tombstone mode renames to .bak and restore links it back', async function () {
      const tomb = await FileBlob.open(dir, { tombstone: true });
      await tomb.set('s1/p1', utf8('abc'));
      expect(await tomb.delete('s1/p1')).to.equal(3);
      expect(await readdir(dir)).to.deep.equal(['s1\u2215p1.bak']);
      await tomb.restore('s1/p1');
      expect(await readdir(dir)).to.deep.equal(['s1\u2215p1']);
      expectBytes(await tomb.get('s1/p1'), utf8('abc'));
      await tomb.close();
    });

    it('maps fs errors on get to DeterminateError naming key and path', async function () {
      await mkdir(path.join(dir, 'adir'));
      try {
        await blob.get('adir');
        expect.fail('expected an error');
      } catch (err) {
        expect(err).to.be.instanceOf(DeterminateError);
        expect((err as Error).message).to.include('"adir"').and.include(path.join(dir, 'adir'));
        expect((err as Error).cause).to.have.property('code', 'EISDIR');
      }
    });

    it('maps a failed set to IndeterminateError and cleans up its temp file', async function () {
      // A directory where the key's file should be: the final rename fails.
      await mkdir(path.join(dir, 'k'));
      try {
        await blob.set('k', utf8('x'));
        expect.fail('expected an error');
      } catch (err) {
        expect(err).to.be.instanceOf(IndeterminateError);
        expect((err as Error).message).to.include('set "k"').and.include(path.join(dir, 'k'));
      }
      expect(await readdir(dir)).to.deep.equal(['k']);
    });

    it('open fails determinately when the path is a file', async function () {
      const file = path.join(root, `file${dirs++}`);
      await writeFile(file, '');
      await expectDeterminate(FileBlob.open(file));
    });
  });
});

async function expectDeterminate(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(DeterminateError);
    return;
  }
  expect.fail('expected a DeterminateError');
}
