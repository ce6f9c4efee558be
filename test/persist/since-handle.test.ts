import { expect } from 'chai';
import { CONTROLLER_CRITICAL_SINCE, Opaque, newShardId, type PersistClient } from '../../src/persist/index.js';
import { STRING_UNIT, memClient, rows } from '../support/persist.js';

describe('persist: critical since handles', () => {
  let client: PersistClient;
  beforeEach(async () => {
    client = await memClient();
  });
  afterEach(() => client.close());

  it('registers a new id at the shard since with the default opaque; reopening adopts the stored state', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(0, 'a'), 0, 10);
    const h = await client.openCriticalSince(id, STRING_UNIT, { defaultOpaque: Opaque.u64(0) });
    expect(h.readerId).to.equal(CONTROLLER_CRITICAL_SINCE);
    expect(h.since()).to.equal(0);
    expect(await h.compareAndDowngradeSince(Opaque.u64(0), [Opaque.u64(3), 4])).to.deep.equal({ ok: true, since: 4 });
    // Another controller opening the same id with another default adopts opaque 3 and since 4.
    const h2 = await client.openCriticalSince(id, STRING_UNIT, { defaultOpaque: Opaque.u64(99) });
    expect(Opaque.toU64(h2.opaque())).to.equal(3n);
    expect(h2.since()).to.equal(4);
  });

  it('fences callers whose opaque is stale, and never regresses the since', async () => {
    const id = newShardId();
    await client.openWriter(id, STRING_UNIT);
    const h = await client.openCriticalSince(id, STRING_UNIT, { defaultOpaque: Opaque.u64(0) });
    expect(await h.compareAndDowngradeSince(Opaque.u64(0), [Opaque.u64(0), 5])).to.deep.equal({ ok: true, since: 5 });
    const fenced = await h.compareAndDowngradeSince(Opaque.u64(7), [Opaque.u64(7), 9]);
    expect(fenced.ok).to.equal(false);
    if (!fenced.ok) expect(Opaque.toU64(fenced.opaque)).to.equal(0n);
    expect(await h.compareAndDowngradeSince(Opaque.u64(0), [Opaque.u64(0), 2])).to.deep.equal({ ok: true, since: 5 });
    expect(client.shardMachine(id).state.meta.since).to.equal(5);
  });

  it('holds back the shard since, and leased readers may start at the critical since', async () => {
    const id = newShardId();
    const w = await client.openWriter(id, STRING_UNIT);
    await w.compareAndAppend(rows(0, 'a'), 0, 10);
    const h = await client.openCriticalSince(id, STRING_UNIT);
    const r = await client.openLeasedReader(id, STRING_UNIT);
    await r.downgradeSince(8);
    expect(client.shardMachine(id).state.meta.since, 'held by the critical reader').to.equal(0);
    await h.compareAndDowngradeSince(h.opaque(), [h.opaque(), 6]);
    expect(client.shardMachine(id).state.meta.since).to.equal(6);
    const viaCritical = await client.openLeasedReader(id, STRING_UNIT, { useCriticalSince: true });
    expect(viaCritical.since()).to.equal(6);
  });

  it('maybeCompareAndDowngradeSince is rate-limited', async () => {
    const c = await memClient({ criticalDowngradeIntervalMs: 60_000 });
    try {
      const id = newShardId();
      await c.openWriter(id, STRING_UNIT);
      const h = await c.openCriticalSince(id, STRING_UNIT);
      expect(await h.maybeCompareAndDowngradeSince(h.opaque(), [h.opaque(), 1])).to.deep.equal({ ok: true, since: 1 });
      expect(await h.maybeCompareAndDowngradeSince(h.opaque(), [h.opaque(), 2])).to.equal(undefined);
      expect(h.since()).to.equal(1);
    } finally {
      await c.close();
    }
  });
});

describe('persist: schema registry', () => {
  it('registers schemas idempotently and reports the latest', async () => {
    const client = await memClient();
    try {
      const id = newShardId();
      expect(await client.latestSchema(id)).to.equal(undefined);
      const first = await client.registerSchema(id, STRING_UNIT);
      expect(await client.registerSchema(id, STRING_UNIT)).to.equal(first);
      const evolved = { key: { ...STRING_UNIT.key, schema: 'string-v2' }, val: STRING_UNIT.val };
      const second = await client.registerSchema(id, evolved);
      expect(second).to.not.equal(first);
      expect(await client.latestSchema(id)).to.deep.equal({ id: second, keySchema: 'string-v2', valSchema: 'unit' });
      expect(await client.getSchema(id, first)).to.deep.equal({ keySchema: 'string', valSchema: 'unit' });
      const w = await client.openWriter(id, evolved);
      expect(await w.ensureSchema()).to.equal(second);
    } finally {
      await client.close();
    }
  });
});
