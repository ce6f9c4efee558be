/**
 * The in-memory backends against the conformance suites, plus MemBlob/MemConsensus
 * specifics: tombstones are per instance, and MemConsensus interleaves concurrent
 * callers at macrotask boundaries.
 */
import { expect } from 'chai';
import { MemBlob } from '../../src/location/mem-blob.js';
import { MemConsensus } from '../../src/location/mem-consensus.js';
import { LocationUsageError } from '../../src/location/errors.js';
import { describeBlobConformance } from './blob-conformance.js';
import { describeConsensusConformance } from './consensus-conformance.js';

describeBlobConformance('MemBlob', async (options) => new MemBlob(options));

describeConsensusConformance('MemConsensus', async () => new MemConsensus());

describe('MemConsensus specifics', function () {
  it('yields a macrotask before each operation', async function () {
    const c = new MemConsensus();
    // An immediate queued before the call must run before the call completes; with
    // only microtask yields the operation would finish first.
    let ran = false;
    setImmediate(() => {
      ran = true;
    });
    await c.head('k');
    expect(ran).to.equal(true);
    await c.close();
  });

  it('rejects use after close', async function () {
    const c = new MemConsensus();
    await c.close();
    try {
      await c.head('k');
      expect.fail('expected an error');
    } catch (err) {
      expect(err).to.be.instanceOf(LocationUsageError);
    }
  });
});
