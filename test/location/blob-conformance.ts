/**
 * The Blob conformance suite: the contract of `src/location/blob.ts`, run against
 * every backend.
 *
 * `describeBlobConformance(name, factory)` defines a mocha `describe` block with the
 * contract cases twice, once for a plain store and once for a tombstone-mode store.
 * `factory({ tombstone })` must return a fresh, empty Blob per call; the suite closes
 * it after each test.
 *
 * Example:
 * ```ts
 * describeBlobConformance('MemBlob', async (o) => new MemBlob(o));
 * ```
 */
import { expect } from 'chai';
import type { Blob } from '../../src/location/blob.js';
import { DeterminateError } from '../../src/location/errors.js';
import { expectBytes, patternBytes, utf8 } from '../support/bytes.js';

export type BlobFactory = (options: { tombstone: boolean }) => Promise<Blob>;

async function listAll(blob: Blob, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  await blob.listKeysAndMetadata(prefix, (key, size) => {
    expect(out.has(key), `key ${key} listed twice`).to.equal(false);
    out.set(key, size);
  });
  return out;
}

async function expectRejects<E extends Error>(p: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(type);
    return err as E;
  }
  return expect.fail(`expected a ${type.name}`);
}

export function describeBlobConformance(name: string, factory: BlobFactory): void {
  for (const tombstone of [false, true]) {
    describe(`${name} blob conformance (tombstone: ${tombstone})`, function () {
      let blob: Blob;

      beforeEach(async function () {
        blob = await factory({ tombstone });
      });

      afterEach(async function () {
        await blob.close();
      });

      it('get of a missing key is undefined', async function () {
        expect(await blob.get('missing')).to.equal(undefined);
      });

      it('set then get round-trips, including empty and 1 MiB values', async function () {
        const small = utf8('hello');
        const empty = new Uint8Array(0);
        const big = patternBytes(1 << 20, 7);
        await blob.set('small', small);
        await blob.set('empty', empty);
        await blob.set('big', big);
        expectBytes(await blob.get('small'), small);
        expectBytes(await blob.get('empty'), empty);
        expectBytes(await blob.get('big'), big);
      });

      it('round-trips all 256 byte values and a Buffer view into a larger array', async function () {
        const all = Uint8Array.from({ length: 256 }, (_, i) => i);
        await blob.set('all', all);
        expectBytes(await blob.get('all'), all);
        const backing = patternBytes(64, 3);
        const view = backing.subarray(10, 20);
        await blob.set('view', view);
        expectBytes(await blob.get('view'), backing.slice(10, 20));
      });

      it('stores a copy: mutating the array after set changes nothing', async function () {
        const value = utf8('abc');
        await blob.set('k', value);
        value[0] = 0;
        expectBytes(await blob.get('k'), utf8('abc'));
      });

      it('set overwrites', async function () {
        await blob.set('k', utf8('one'));
        await blob.set('k', utf8('second value'));
        expectBytes(await blob.get('k'), utf8('second value'));
      });

      it('delete returns the size, then undefined; missing keys give undefined', async function () {
        expect(await blob.delete('missing')).to.equal(undefined);
        await blob.set('k', utf8('12345'));
        expect(await blob.delete('k')).to.equal(5);
        expect(await blob.get('k')).to.equal(undefined);
        expect(await blob.delete('k')).to.equal(undefined);
      });

      it('delete of an empty value returns 0', async function () {
        await blob.set('empty', new Uint8Array(0));
        expect(await blob.delete('empty')).to.equal(0);
        expect(await blob.delete('empty')).to.equal(undefined);
      });

      it('lists live keys by prefix with their sizes, keys containing "/"', async function () {
        await blob.set('s1/p1', utf8('a'));
        await blob.set('s1/p2', utf8('bb'));
        await blob.set('s1/sub/p3', new Uint8Array(0));
        await blob.set('s2/p1', utf8('cccc'));
        await blob.set('s10/p1', utf8('d'));
        await blob.set('gone/p1', utf8('e'));
        await blob.delete('gone/p1');

        expect(Object.fromEntries(await listAll(blob, 's1/'))).to.deep.equal({
          's1/p1': 1,
          's1/p2': 2,
          's1/sub/p3': 0,
        });
        expect([...(await listAll(blob, 's1')).keys()].sort()).to.deep.equal([
          's1/p1',
          's1/p2',
          's1/sub/p3',
          's10/p1',
        ]);
        expect([...(await listAll(blob, '')).keys()].sort()).to.deep.equal([
          's1/p1',
          's1/p2',
          's1/sub/p3',
          's10/p1',
          's2/p1',
        ]);
        expect((await listAll(blob, 'nothing/')).size).to.equal(0);
      });

      it('restore of a live key succeeds and leaves it unchanged', async function () {
        await blob.set('k', utf8('live'));
        await blob.restore('k');
        expectBytes(await blob.get('k'), utf8('live'));
      });

      it('restore of a key that never existed throws DeterminateError', async function () {
        await expectRejects(blob.restore('never'), DeterminateError);
        expect(await blob.get('never')).to.equal(undefined);
      });

      it('concurrent sets of one key leave one whole value', async function () {
        const values = Array.from({ length: 8 }, (_, i) => patternBytes(4096 + i, i + 1));
        await Promise.all(values.map((v) => blob.set('k', v)));
        const got = await blob.get('k');
        const match = values.find((v) => v.byteLength === got?.byteLength);
        expect(match, 'final value is one of those written').to.not.equal(undefined);
        expectBytes(got, match as Uint8Array);
      });

      if (!tombstone) {
        it('restore of a deleted key throws DeterminateError', async function () {
          await blob.set('k', utf8('v'));
          await blob.delete('k');
          await expectRejects(blob.restore('k'), DeterminateError);
          expect(await blob.get('k')).to.equal(undefined);
        });
      } else {
        it('delete then restore brings the key back with the same bytes', async function () {
          const value = patternBytes(1000, 9);
          await blob.set('s1/k', value);
          expect(await blob.delete('s1/k')).to.equal(1000);
          expect(await blob.get('s1/k')).to.equal(undefined);
          expect((await listAll(blob, 's1/')).size).to.equal(0);
          expect(await blob.delete('s1/k')).to.equal(undefined);
          await blob.restore('s1/k');
          expectBytes(await blob.get('s1/k'), value);
          expect(Object.fromEntries(await listAll(blob, 's1/'))).to.deep.equal({ 's1/k': 1000 });
          // Restoring again is a no-op on a live key.
          await blob.restore('s1/k');
          expectBytes(await blob.get('s1/k'), value);
        });

        it('restore does not clobber a value set after the delete', async function () {
          await blob.set('k', utf8('old'));
          await blob.delete('k');
          await blob.set('k', utf8('new'));
          await blob.restore('k');
          expectBytes(await blob.get('k'), utf8('new'));
        });

        it('restore brings back the most recently deleted value', async function () {
          await blob.set('k', utf8('first'));
          await blob.delete('k');
          await blob.set('k', utf8('second'));
          await blob.delete('k');
          await blob.restore('k');
          expectBytes(await blob.get('k'), utf8('second'));
        });
      }
    });
  }
}
