/**
 * DataWriters, the data-shard writers a TxnsHandle holds: which commit writer stays
 * when a shard is registered twice, where spills are uploaded from, that an apply
 * writer is kept between applies, and that everything held expires on close.
 */
import { expect } from 'chai';
import type { PersistClient } from '../../src/persist/client.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { DataWriters } from '../../src/txn/data-writers.js';
import { STRING_UNIT, memClient } from '../support/persist.js';
import { writer } from '../support/txn.js';

const EVOLVED = { key: { ...STRING_UNIT.key, schema: 'string-v2' }, val: STRING_UNIT.val };

describe('txn: DataWriters (the handle data-shard writers)', () => {
  let client: PersistClient;
  let writers: DataWriters<string, null>;
  beforeEach(async () => {
    client = await memClient();
    writers = new DataWriters(client, STRING_UNIT, client.cfg.logger);
  });
  afterEach(() => client.close());

  it('of two commit writers for a shard, the one with the newer schema stays and the other is expired', async () => {
    const id = newShardId();
    const older = await writer(client, id);
    await older.ensureSchema();
    const newer = await client.openWriter(id, EVOLVED);
    await newer.ensureSchema();

    await writers.adoptCommitWriter(newer);
    await writers.adoptCommitWriter(older);
    expect(writers.commitWriter(id)).to.equal(newer);
    expect(older.isExpired).to.equal(true);

    const newest = await client.openWriter(id, EVOLVED);
    await newest.ensureSchema();
    await writers.adoptCommitWriter(newest);
    expect(writers.commitWriter(id)).to.equal(newest, 'an equal schema replaces');
    expect(newer.isExpired).to.equal(true);
  });

  it('insertCommitWriter keeps an existing writer; dropCommitWriter expires and forgets it', async () => {
    const id = newShardId();
    const first = await writer(client, id);
    const second = await writer(client, id);
    await writers.insertCommitWriter(first);
    await writers.insertCommitWriter(second);
    expect(writers.commitWriter(id)).to.equal(first);
    expect(second.isExpired).to.equal(true);
    await writers.dropCommitWriter(id);
    expect(writers.commitWriter(id)).to.equal(undefined);
    expect(first.isExpired).to.equal(true);
    await writers.dropCommitWriter(id); // nothing left: a no-op
  });

  it('uploads with the commit writer when there is one, else with one spill writer per shard', async () => {
    const registered = newShardId();
    const commit = await writer(client, registered);
    await writers.adoptCommitWriter(commit);
    expect(await writers.batchWriter(registered)).to.equal(commit);

    const other = newShardId();
    const spill = await writers.batchWriter(other);
    expect(spill.shardId).to.equal(other);
    expect(await writers.batchWriter(other)).to.equal(spill);
  });

  it('keeps an apply writer between applies, also after one threw, and expires everything on expireAll', async () => {
    const id = newShardId();
    const seen = new Set<unknown>();
    await writers.withApplyWriter(id, async (apply) => void seen.add(apply));
    const boom = new Error('boom');
    const err = await writers
      .withApplyWriter(id, async (apply) => {
        seen.add(apply);
        throw boom;
      })
      .catch((e: unknown) => e);
    expect(err).to.equal(boom);
    let applyWriter: { isExpired: boolean } | undefined;
    await writers.withApplyWriter(id, async (apply) => {
      seen.add(apply);
      applyWriter = apply.writer;
    });
    expect(seen.size).to.equal(1);

    const commit = await writer(client, newShardId());
    await writers.adoptCommitWriter(commit);
    const spill = await writers.batchWriter(newShardId());
    await writers.expireAll();
    expect([commit.isExpired, spill.isExpired, applyWriter!.isExpired]).to.deep.equal([true, true, true]);
  });

  it('two applies of one shard at once never share its apply writer; the first is kept afterwards', async () => {
    const id = newShardId();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let outer: unknown;
    let inner: unknown;
    const first = writers.withApplyWriter(id, async (apply) => {
      outer = apply;
      await held;
    });
    // Wait until the first call holds its writer, then apply again while it does.
    while (outer === undefined) await new Promise((r) => setImmediate(r));
    await writers.withApplyWriter(id, async (apply) => void (inner = apply));
    release();
    await first;
    expect(inner).to.not.equal(outer);
    let after: unknown;
    await writers.withApplyWriter(id, async (apply) => void (after = apply));
    expect(after).to.equal(outer, 'the writer put back last is the one reused');
  });
});
