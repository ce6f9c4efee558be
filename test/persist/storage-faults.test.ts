import { expect } from 'chai';
import type { CaSResult, Consensus, SeqNo, VersionedData } from '../../src/location/consensus.js';
import { DeterminateError, IndeterminateError } from '../../src/location/errors.js';
import { openLocation, type Location } from '../../src/location/location.js';
import { PersistClient, PersistStorageError, newShardId } from '../../src/persist/index.js';
import { STRING_UNIT, expectReject, rows } from '../support/persist.js';

/** Wraps a Consensus so tests can make compare-and-set fail in chosen ways. */
class FaultyConsensus implements Consensus {
  /** 'lose-reply': the write lands but the caller sees an indeterminate error. */
  mode: 'ok' | 'lose-reply' | 'refuse' | 'timeout-before' = 'ok';
  faults = 0;
  constructor(private readonly inner: Consensus) {}
  head(key: string) {
    return this.inner.head(key);
  }
  async compareAndSet(key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult> {
    switch (this.mode) {
      case 'ok':
        return this.inner.compareAndSet(key, expected, next);
      case 'lose-reply': {
        this.mode = 'ok';
        this.faults++;
        await this.inner.compareAndSet(key, expected, next);
        throw new IndeterminateError('connection lost after sending the write');
      }
      case 'timeout-before':
        this.faults++;
        throw new IndeterminateError('timed out before the server answered');
      case 'refuse':
        this.faults++;
        throw new DeterminateError('server refused the connection');
    }
  }
  scan(key: string, from: SeqNo, limit: number) {
    return this.inner.scan(key, from, limit);
  }
  truncate(key: string, seqno: SeqNo) {
    return this.inner.truncate(key, seqno);
  }
  listKeys() {
    return this.inner.listKeys();
  }
  close() {
    return this.inner.close();
  }
}

describe('persist: storage faults', () => {
  let base: Location;
  let consensus: FaultyConsensus;
  let client: PersistClient;
  beforeEach(async () => {
    base = await openLocation('mem://');
    consensus = new FaultyConsensus(base.consensus);
    const location: Location = { ...base, consensus, close: () => base.close() };
    client = await PersistClient.open(location, {
      config: { storageRetry: { attempts: 3, initialMs: 1, multiplier: 1, clampMs: 1 } },
    });
  });
  afterEach(async () => {
    await client.close();
    await base.close();
  });

  it('an append whose reply was lost is recognised by its idempotency token: applied exactly once', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(0, 'a'), 0, 1);
    consensus.mode = 'lose-reply';
    expect(await w.compareAndAppend(rows(1, 'b'), 1, 2)).to.deep.equal({ ok: true });
    expect(consensus.faults).to.equal(1);
    const r = await client.openLeasedReader(id, STRING_UNIT);
    expect(await r.snapshotAndFetch(1)).to.have.length(2);
    expect(await w.fetchRecentUpper()).to.equal(2);
  });

  it('a refused write fails with an error saying it did not happen', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    consensus.mode = 'refuse';
    const err = (await expectReject(w.compareAndAppend(rows(0, 'a'), 0, 1), PersistStorageError, /did not happen/)) as PersistStorageError;
    expect(err.mayHaveHappened).to.equal(false);
    consensus.mode = 'ok';
    expect(await w.fetchRecentUpper()).to.equal(0);
  });

  it('a write that kept timing out fails with an error saying it may have happened', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    consensus.mode = 'timeout-before';
    // The machine retries the CaS, then re-reads state and tries again; give up eventually.
    const p = w.compareAndAppend(rows(0, 'a'), 0, 1);
    setTimeout(() => (consensus.mode = 'refuse'), 50);
    const err = (await expectReject(p, PersistStorageError)) as PersistStorageError;
    expect(err.mayHaveHappened).to.equal(true);
    expect(err.message).to.match(/may have happened/);
  });
});
