/**
 * S3Blob when the store misbehaves: the server dies in the middle of a write, answers
 * too slowly, or fails one request in ten. Each scenario checks the promise of the
 * location layer: a failure says whether the operation may have happened, a
 * determinate one really did not, a value is never torn, and bounded retries ride over
 * transient faults. The store is an s3rver child process of the test's own, with the
 * proxy of test/support/s3-proxy.ts in front where a fault must hit one request.
 */
import { expect } from 'chai';
import { DeterminateError, IndeterminateError, type ExternalError } from '../../src/location/errors.js';
import { S3Blob } from '../../src/location/s3-blob.js';
import { expectBytes, patternBytes, utf8 } from '../support/bytes.js';
import { startS3Proxy, type S3Proxy } from '../support/s3-proxy.js';
import { startS3Server, type TestS3Server } from '../support/s3.js';

async function failure(p: Promise<unknown>): Promise<ExternalError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.satisfy((e: unknown) => e instanceof DeterminateError || e instanceof IndeterminateError, String(err));
    return err as ExternalError;
  }
  return expect.fail('expected the operation to fail');
}

describe('S3Blob under store faults', function () {
  this.timeout(60_000);
  let server: TestS3Server;
  let proxy: S3Proxy;
  const opened: S3Blob[] = [];

  async function open(prefix: string, options: Parameters<typeof S3Blob.open>[1] = {}, via = proxy.endpoint): Promise<S3Blob> {
    const blob = await S3Blob.open(server.url(prefix, via), options);
    opened.push(blob);
    return blob;
  }

  beforeEach(async () => {
    server = await startS3Server();
    proxy = await startS3Proxy(server.port);
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((b) => b.close()));
    await proxy.close();
    await server.close();
  });

  describe('the server stopped mid-write', () => {
    it('the write fails as "may have happened"; after a restart the key holds nothing or the whole value', async () => {
      const blob = await open('crash', { maxAttempts: 2, multipartThresholdBytes: 64 << 20 });
      await blob.set('before', utf8('kept'));
      const value = patternBytes(32 << 20, 3);
      const writing = failure(blob.set('big', value));
      await proxy.whenForwardedBytes(proxy.forwardedBytes + (1 << 20));
      await server.kill();
      const err = await writing;
      expect(err, err.message).to.be.instanceOf(IndeterminateError);
      expect(err.message).to.include('"big"').and.to.include('may have taken effect');

      await server.start();
      const after = await blob.get('big');
      if (after !== undefined) expectBytes(after, value);
      expectBytes(await blob.get('before'), utf8('kept'));
      // What persist does next, retry the write, leaves the whole value.
      await blob.set('big', value);
      expectBytes(await blob.get('big'), value);
    });

    it('a multipart upload cut off before completion is determinate and leaves no object', async () => {
      const blob = await open('crash-mp', { maxAttempts: 2, multipartThresholdBytes: 1 << 20, partSizeBytes: 5 << 20, partConcurrency: 1 });
      const writing = failure(blob.set('big', patternBytes(20 << 20, 4)));
      await proxy.whenForwardedBytes(6 << 20); // into the second part
      await server.kill();
      const err = await writing;
      expect(err, err.message).to.be.instanceOf(DeterminateError);
      expect(err.message).to.include('before completion');
      await server.start();
      expect(await blob.get('big')).to.equal(undefined);
    });

    it('with the server down, writes that never connect are determinate and reads are too', async () => {
      const blob = await open('down', { maxAttempts: 2 }, server.endpoint);
      await server.kill();
      // The read goes first: it may find open()'s kept-alive connection before the process
      // has noticed the server closed it, and a write sent on such a connection may have
      // arrived (indeterminate, rightly). After the read the pool holds no connection, so
      // the write's attempts never connect.
      expect(await failure(blob.get('k'))).to.be.instanceOf(DeterminateError);
      expect(await failure(blob.set('k', utf8('v')))).to.be.instanceOf(DeterminateError);
      expect(await failure(blob.listKeysAndMetadata('', () => undefined))).to.be.instanceOf(DeterminateError);
      await server.start();
      expect(await blob.get('k')).to.equal(undefined);
    });
  });

  describe('slow responses past the timeout', () => {
    it('reads fail determinately, writes as "may have happened", each after maxAttempts tries; then the store recovers', async () => {
      const blob = await open('slow', { requestTimeoutMs: 300, maxAttempts: 2 });
      await blob.set('k', utf8('v1'));
      proxy.rule = () => 'hold';
      const read = await failure(blob.get('k'));
      expect(read, read.message).to.be.instanceOf(DeterminateError);
      expect(read.message).to.match(/timed out/);
      expect(proxy.counts.hold).to.equal(2);
      const write = await failure(blob.set('k', utf8('v2')));
      expect(write, write.message).to.be.instanceOf(IndeterminateError);
      expect(proxy.counts.hold).to.equal(4);
      proxy.rule = () => 'forward';
      expectBytes(await blob.get('k'), utf8('v1'));
    });
  });

  describe('a 500 on one request in ten', () => {
    it('bounded retries ride over it: every operation succeeds and every value reads back', async () => {
      proxy.rule = (_req, n) => (n % 10 === 0 ? 'fail' : 'forward');
      const blob = await open('flaky');
      const values = Array.from({ length: 30 }, (_, i) => patternBytes(100 + i, i + 1));
      for (const [i, v] of values.entries()) await blob.set(`s/k${i}`, v);
      for (const [i, v] of values.entries()) expectBytes(await blob.get(`s/k${i}`), v);
      const listed = new Map<string, number>();
      await blob.listKeysAndMetadata('s/', (k, n) => listed.set(k, n));
      expect(listed.size).to.equal(30);
      for (let i = 0; i < 10; i++) expect(await blob.delete(`s/k${i}`)).to.equal(100 + i);
      expect(proxy.counts.fail, 'faults were injected').to.be.at.least(7);
    });

    it('without retries each failure says what happened: reads determinate, writes may have happened', async () => {
      proxy.rule = (_req, n) => (n % 10 === 0 ? 'fail' : 'forward');
      const blob = await open('flaky-1', { maxAttempts: 1 });
      const outcomes = { ok: 0, readDeterminate: 0, writeIndeterminate: 0 };
      for (let i = 0; i < 40; i++) {
        try {
          await blob.set(`k${i}`, utf8(`v${i}`));
          outcomes.ok += 1;
        } catch (err) {
          expect(err).to.be.instanceOf(IndeterminateError);
          outcomes.writeIndeterminate += 1;
        }
      }
      for (let i = 0; i < 40; i++) {
        try {
          await blob.get(`k${i}`);
          outcomes.ok += 1;
        } catch (err) {
          expect(err).to.be.instanceOf(DeterminateError);
          outcomes.readDeterminate += 1;
        }
      }
      expect(outcomes.readDeterminate + outcomes.writeIndeterminate).to.equal(proxy.counts.fail);
      expect(outcomes.readDeterminate).to.be.greaterThan(0);
      expect(outcomes.writeIndeterminate).to.be.greaterThan(0);
    });

    it('a write applied but answered with a 500, then refused on retry, is still "may have happened" (and did happen)', async () => {
      // The last attempt alone (a 403) would say "nothing happened": the attempt log
      // remembers that the first one reached the store.
      const blob = await open('applied', { maxAttempts: 2 });
      let attempts = 0;
      proxy.rule = () => (++attempts === 1 ? 'forward-then-fail' : 'deny');
      const err = await failure(blob.set('k', utf8('stored')));
      expect(err, err.message).to.be.instanceOf(IndeterminateError);
      proxy.rule = () => 'forward';
      expectBytes(await blob.get('k'), utf8('stored'));
    });

    it('a write refused outright (403) is determinate', async () => {
      const blob = await open('denied', { maxAttempts: 2 });
      proxy.rule = () => 'deny';
      const err = await failure(blob.set('k', utf8('v')));
      expect(err, err.message).to.be.instanceOf(DeterminateError);
      expect(err.message).to.include('AccessDenied');
      proxy.rule = () => 'forward';
      expect(await blob.get('k')).to.equal(undefined);
    });
  });
});
