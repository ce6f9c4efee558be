import { expect } from 'chai';
import { Proto, encodeMessage } from '../../src/persist/encoding.js';
import { PersistClient, StoredFormatError, newShardId } from '../../src/persist/index.js';
import { applyDiff, computeDiff, decodeDiff, decodeRollupState, encodeDiff, encodeRollupState } from '../../src/persist/state-codec.js';
import { STRING_UNIT, expectReject, rows } from '../support/persist.js';

describe('persist: stored state', () => {
  it('a fresh client rebuilds exactly the state the writer holds (rollup + diffs)', async () => {
    const name = `mem://codec-${newShardId()}`;
    const a = await PersistClient.open(name, { config: { rollupThreshold: 10 } });
    const b = await PersistClient.open(name);
    try {
      const id = newShardId();
      const w = await a.openWriter(id, STRING_UNIT);
      const r = await a.openLeasedReader(id, STRING_UNIT);
      for (let t = 0; t < 40; t++) {
        await w.compareAndAppend(rows(t, `k${t}`), t, t + 1);
        if (t % 7 === 0) await r.downgradeSince(t);
      }
      await a.flushMaintenance();
      const mine = a.shardMachine(id).state;
      const m = b.shardMachine(id);
      const rebuilt = (await m.refresh())!;
      expect(rebuilt.seqno).to.equal(mine.seqno);
      expect(Buffer.from(encodeRollupState(rebuilt)).equals(Buffer.from(encodeRollupState(mine)))).to.equal(true);
      expect(rebuilt.rollups.size).to.be.greaterThan(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('diffs round-trip through their encoding and refuse to apply to the wrong base', async () => {
    const client = await PersistClient.open('mem://');
    try {
      const id = newShardId();
      const w = await client.openWriter(id, STRING_UNIT);
      const m = client.shardMachine(id);
      const s1 = m.state;
      await w.compareAndAppend(rows(0, 'a'), 0, 1);
      const s2 = m.state;
      const diff = decodeDiff(encodeDiff(computeDiff(s1, s2)), 'test diff');
      const replayed = applyDiff(s1, diff);
      expect(Buffer.from(encodeRollupState(replayed)).equals(Buffer.from(encodeRollupState(s2)))).to.equal(true);
      expect(() => applyDiff(s2, diff)).to.throw(/does not apply/);
      const roundTrip = decodeRollupState(encodeRollupState(s2), 'test rollup');
      expect(roundTrip.meta).to.deep.equal(s2.meta);
    } finally {
      await client.close();
    }
  });

  it('refuses state written by a newer format version, saying to upgrade', async () => {
    const client = await PersistClient.open('mem://');
    try {
      const id = newShardId();
      const future = encodeMessage(Proto.StateDiff, { formatVersion: 99, shardId: id, seqnoFrom: 0, seqnoTo: 1 });
      await client.location.consensus.compareAndSet(id, undefined, { seqno: 1, data: future });
      await expectReject(client.openWriter(id, STRING_UNIT), StoredFormatError, /newer txnwal; upgrade/);
    } finally {
      await client.close();
    }
  });
});
