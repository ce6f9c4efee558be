/**
 * Postgres wake-ups: a committed compare-and-set announces itself with NOTIFY
 * ('<seqno> <key>'), a mismatched one does not, and `notify: false` leaves it out;
 * PostgresStateChanges hands each announcement to the watchers of its key.
 */
import { expect } from 'chai';
import { PostgresConsensus } from '../../src/location/postgres-consensus.js';
import { PostgresStateChanges } from '../../src/location/postgres-state-changes.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';

const data = new Uint8Array([1, 2, 3]);

describe('PostgresStateChanges (LISTEN/NOTIFY)', function () {
  this.timeout(120_000);
  let url: string;
  before(async () => {
    url = await freshTestDatabaseUrl();
  });

  it('hears exactly the committed compare-and-sets of a key, with their seqnos, in commit order', async () => {
    const changes = await PostgresStateChanges.open(url);
    const consensus = await PostgresConsensus.open(url);
    const quiet = await PostgresConsensus.open(url, { notify: false });
    try {
      expect(changes.up).to.equal(true);
      const heard: Array<number | undefined> = [];
      let got!: () => void;
      const done = new Promise<void>((r) => (got = r));
      changes.watch('k', (s) => {
        heard.push(s);
        if (s === 4) got();
      });
      changes.watch('other', () => expect.fail('a hint for another key'));
      expect(await consensus.compareAndSet('k', undefined, { seqno: 1, data })).to.equal('committed');
      expect(await consensus.compareAndSet('k', undefined, { seqno: 1, data })).to.equal('mismatch');
      expect(await quiet.compareAndSet('k', 1, { seqno: 2, data })).to.equal('committed');
      expect(await consensus.compareAndSet('k', 1, { seqno: 3, data })).to.equal('mismatch');
      expect(await consensus.compareAndSet('k', 2, { seqno: 3, data })).to.equal('committed');
      expect(await consensus.compareAndSet('k', 3, { seqno: 4, data })).to.equal('committed');
      await done;
      // seqno 2 was written without NOTIFY; the mismatches announced nothing.
      expect(heard).to.deep.equal([1, 3, 4]);
    } finally {
      await Promise.all([changes.close(), consensus.close(), quiet.close()]);
    }
  });

  it('a server it cannot reach leaves it down, not failed; close() still settles', async () => {
    const u = new URL(url);
    u.port = '1'; // nothing listens there
    const changes = await PostgresStateChanges.open(u.toString(), { connectTimeoutMs: 500 });
    expect(changes.up).to.equal(false);
    await changes.close();
  });
});
