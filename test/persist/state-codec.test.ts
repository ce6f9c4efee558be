import { expect } from 'chai';
import fc from 'fast-check';
import { Proto, encodeMessage } from '../../src/persist/encoding.js';
import { PersistClient, StoredFormatError, newShardId } from '../../src/persist/index.js';
import {
  Field,
  applyDiff,
  computeDiff,
  decodeDiff,
  decodeRollupState,
  encodeDiff,
  encodeRollupState,
} from '../../src/persist/state-codec.js';
import { initialState, type ShardState, type SpineBatch } from '../../src/persist/state.js';
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

  describe('the field table', () => {
    const batch = (id: number, lower: number, upper: number): SpineBatch => ({
      id,
      batch: { lower, upper, since: 0, parts: [], updateCount: 0 },
    });
    const writer = (token: string) => ({
      lastHeartbeatMs: 1,
      leaseDurationMs: 2,
      mostRecentWriteToken: token,
      mostRecentWriteUpper: 3,
      purpose: 'w',
    });
    const leased = (since: number) => ({ since, seqnoHold: 1, lastHeartbeatMs: 2, leaseDurationMs: 3, purpose: 'r' });
    const critical = (since: number) => ({ since, opaque: { codec: 'u64', bytes: new Uint8Array([since]) }, purpose: 'c' });
    const schema = (k: string) => ({ keySchema: k, valSchema: 'v' });
    const base = initialState(newShardId(), 'string', 'unit', 'host');
    const prev: ShardState = {
      ...base,
      seqno: 4,
      rollups: new Map([[1, 'rollup-1'], [2, 'rollup-2']]),
      leasedReaders: new Map([['ra', leased(1)], ['rb', leased(2)]]),
      criticalReaders: new Map([['ca', critical(1)], ['cb', critical(2)]]),
      writers: new Map([['wa', writer('x')], ['wb', writer('y')]]),
      schemas: new Map([[1, schema('k1')], [2, schema('k2')]]),
      spine: [batch(1, 0, 3), batch(2, 3, 5)],
    };
    // Every field gets an insert, an update and (but META) a delete.
    const next: ShardState = {
      ...prev,
      seqno: 5,
      meta: { ...prev.meta, upper: 9 },
      rollups: new Map([[2, 'rollup-2b'], [5, 'rollup-5']]),
      leasedReaders: new Map([['rb', leased(3)], ['rc', leased(4)]]),
      criticalReaders: new Map([['cb', critical(3)], ['cc', critical(4)]]),
      writers: new Map([['wb', writer('z')], ['wc', writer('q')]]),
      schemas: new Map([[2, schema('k2b')], [3, schema('k3')]]),
      spine: [batch(3, 0, 5), batch(4, 5, 9)],
    };
    const rollupBytes = (s: ShardState) => Buffer.from(encodeRollupState(s));

    it('a diff that inserts, updates and deletes in every field replays to the same state', () => {
      const diff = computeDiff(prev, next);
      const kinds = (field: Field) =>
        diff.diffs
          .filter((f) => f.field === field)
          .map((f) => (f.from && f.to ? 'update' : f.to ? 'insert' : 'delete'))
          .sort();
      expect(kinds(Field.META)).to.deep.equal(['update']);
      for (const field of [Field.ROLLUPS, Field.LEASED_READERS, Field.CRITICAL_READERS, Field.WRITERS, Field.SCHEMAS]) {
        expect(kinds(field), Field[field]).to.deep.equal(['delete', 'insert', 'update']);
      }
      expect(kinds(Field.BATCHES)).to.deep.equal(['delete', 'delete', 'insert', 'insert']);
      const replayed = applyDiff(prev, decodeDiff(encodeDiff(diff), 'test diff'));
      expect(rollupBytes(replayed).equals(rollupBytes(next))).to.equal(true);
      expect(replayed.spine.map((b) => b.id)).to.deep.equal([3, 4]);
      expect(decodeRollupState(encodeRollupState(next), 'test rollup')).to.deep.equal(next);
    });

    it('a diff lists only the fields that changed, and applying it shares every other collection', () => {
      const onlyWriters: ShardState = { ...prev, seqno: 5, writers: new Map([...prev.writers, ['wc', writer('q')]]) };
      const diff = computeDiff(prev, onlyWriters);
      expect(diff.diffs.map((f) => [Field[f.field], f.key])).to.deep.equal([['WRITERS', 'wc']]);
      const replayed = applyDiff(prev, diff);
      expect(replayed.writers).to.not.equal(prev.writers);
      expect(replayed.writers).to.deep.equal(onlyWriters.writers);
      for (const k of ['meta', 'rollups', 'leasedReaders', 'criticalReaders', 'schemas', 'spine'] as const) {
        expect(replayed[k], k).to.equal(prev[k]);
      }
    });

    it('refuses an entry of a field it does not know, and the deletion of META', () => {
      const diff = computeDiff(prev, next);
      const unknown = { ...diff, diffs: [{ field: 42 as Field, key: 'x', to: new Uint8Array() }] };
      expect(() => applyDiff(prev, unknown)).to.throw(StoredFormatError, /unknown state field 42/);
      const metaFrom = diff.diffs.find((f) => f.field === Field.META)!.from!;
      const noMeta = { ...diff, diffs: [{ field: Field.META, key: '', from: metaFrom }] };
      expect(() => applyDiff(prev, noMeta)).to.throw(/shard meta cannot be deleted/);
    });
    it('property: a spine diff lists exactly the batches that changed, and replays to the next spine', () => {
      // A spine of n batches; the next one keeps a prefix and a suffix (the same
      // objects) and replaces the middle with fresh batches, as appends and merges do.
      fc.assert(
        fc.property(fc.nat(12), fc.nat(12), fc.nat(12), fc.nat(4), fc.boolean(), (n, a, b, fresh, sameIds) => {
          const spine = Array.from({ length: n }, (_, i) => batch(i + 1, i * 2, i * 2 + 2));
          const head = Math.min(a, n);
          const tail = Math.min(b, n - head);
          const lower = head === 0 ? 0 : spine[head - 1]!.batch.upper;
          const upper = tail === 0 ? lower + 2 * fresh + 2 : spine[n - tail]!.batch.lower;
          const width = Math.max(1, Math.floor((upper - lower) / Math.max(1, fresh)));
          // Fresh objects, some reusing a replaced batch's id (an update of that entry).
          const middle = Array.from({ length: upper > lower ? fresh : 0 }, (_, i) =>
            batch(sameIds && head + i < n - tail ? head + i + 1 : 100 + i, lower + i * width, i === fresh - 1 ? upper : lower + (i + 1) * width),
          ).filter((x) => x.batch.lower < x.batch.upper);
          const p: ShardState = { ...prev, spine };
          const q: ShardState = { ...prev, seqno: prev.seqno + 1, spine: [...spine.slice(0, head), ...middle, ...spine.slice(n - tail)] };
          const diff = computeDiff(p, q).diffs.filter((f) => f.field === Field.BATCHES);
          const kept = new Set([...spine.slice(0, head), ...spine.slice(n - tail)].map((x) => String(x.id)));
          for (const f of diff) expect(kept.has(f.key), `kept batch ${f.key} is in the diff`).to.equal(false);
          const replayed = applyDiff(p, decodeDiff(encodeDiff(computeDiff(p, q)), 'test diff'));
          expect(replayed.spine.map((x) => [x.id, x.batch.lower, x.batch.upper])).to.deep.equal(q.spine.map((x) => [x.id, x.batch.lower, x.batch.upper]));
        }),
        { numRuns: 300 },
      );
    });
  });
});
