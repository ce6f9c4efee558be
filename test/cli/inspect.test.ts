/**
 * `txnwal inspect`, run as the built command against `file:` and Postgres stores made
 * by the library, its JSON checked against the library's own view: the catalog
 * (`db.collections()`), each shard's upper (a writer's `fetchRecentUpper`), the txns
 * upper, and the unapplied work a `TxnsCache` sees after a commit that was never
 * applied. It changes nothing: every Consensus head is the same afterwards.
 */
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { expect } from 'chai';
import type { CollectionDetail, InspectReport } from '../../src/cli/commands/inspect.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';
import { describeChild } from '../support/run-child.js';
import { builtCli, consensusHeads, leaveUnapplied, libraryView, makeBank, runCli, tempDir, type LibraryView } from './cli-support.js';

function scenario(kind: string, makeUrl: () => Promise<{ url: string; cleanup: () => Promise<void> }>): void {
  describe(`txnwal inspect on a ${kind} store`, function () {
    this.timeout(180_000);
    let url: string;
    let cleanup: () => Promise<void>;
    let lib: LibraryView;
    let pendingTs: number;

    before(async () => {
      await builtCli();
      ({ url, cleanup } = await makeUrl());
      const { db } = await makeBank(url);
      const collections = await db.collections();
      const txnsId = db.txnsId;
      await db.close();
      const accounts = collections.find((c) => c.name === 'accounts')!;
      pendingTs = await leaveUnapplied(url, txnsId, accounts.shardId, [['dave', 3]]);
      lib = await libraryView(url, collections, txnsId);
    });
    after(() => cleanup?.());

    it('lists the catalog with physical and logical uppers, sinces, and the unapplied commit, as the library sees them', async () => {
      const before = await consensusHeads(url);
      const r = await runCli(['inspect', url, '--json']);
      expect(r.code, describeChild('inspect', r)).to.equal(0);
      expect(await consensusHeads(url), 'every Consensus head is unchanged').to.deep.equal(before);
      const report = JSON.parse(r.stdout) as InspectReport;
      expect(report.catalog).to.equal(true);
      expect(report.collections.map((c) => ({ name: c.name, shardId: c.shardId, keyCodec: c.keyCodec, valCodec: c.valCodec }))).to.deep.equal(lib.collections);
      for (const c of report.collections) {
        expect(c.physicalUpper, `${c.name}: physical upper`).to.equal(lib.uppers.get(c.shardId));
        expect(c.logicalUpper, `${c.name}: logical upper is the txns upper`).to.equal(lib.txnsUpper);
        expect(c.registered).to.equal(true);
        expect(c.since).to.be.at.most(c.physicalUpper!);
      }
      expect(report.txns!.shardId).to.equal(lib.txnsId);
      expect(report.txns!.upper).to.equal(lib.txnsUpper);
      // The library's unapplied batches, and the one we left is among them, not applied.
      expect(report.unapplied.pending.map((p) => ({ ts: p.ts, dataId: p.shardId }))).to.deep.equal(lib.unapplied);
      expect(report.unapplied.batches).to.equal(lib.unapplied.length);
      expect(report.unapplied.oldestTs).to.equal(Math.min(...lib.unapplied.map((u) => u.ts)));
      const mine = report.unapplied.pending.find((p) => p.ts === pendingTs)!;
      expect(mine).to.include({ collection: 'accounts', applied: false, updates: 1 });
      expect(mine.bytes).to.be.above(0);
      const accounts = report.collections.find((c) => c.name === 'accounts')!;
      expect(accounts.physicalUpper, 'the commit was not applied: the data upper is not past it').to.be.at.most(pendingTs);
      expect(accounts.unapplied.oldestTs).to.be.at.most(pendingTs);
      expect(accounts.parts).to.be.above(0);
      expect(accounts.partBytes).to.be.above(0);
      expect(report.txns!.criticalReaders.length, 'the txns shard has its critical since handle').to.be.at.least(1);
    });

    it('prints a table on a terminal-less stdout too: one row per collection', async () => {
      const r = await runCli(['inspect', url]);
      expect(r.code, describeChild('inspect', r)).to.equal(0);
      expect(r.stdout).to.match(/^collection\s+shard\s+upper\s+logical\s+since/m);
      expect(r.stdout).to.match(/^accounts\s+s[0-9a-f-]{36}\s+\d+\s+\d+/m);
      expect(r.stdout).to.match(/^audit\s+s[0-9a-f-]{36}/m);
      expect(r.stdout).to.include('not applied');
    });

    it('inspect <name>: batches, parts, rollups and state versions of one collection', async () => {
      const before = await consensusHeads(url);
      const r = await runCli(['inspect', url, 'accounts', '--json']);
      expect(r.code, describeChild('inspect accounts', r)).to.equal(0);
      expect(await consensusHeads(url)).to.deep.equal(before);
      const d = JSON.parse(r.stdout) as CollectionDetail;
      const accounts = lib.collections.find((c) => c.name === 'accounts')!;
      expect(d.collection.shardId).to.equal(accounts.shardId);
      expect(d.state.seqno).to.equal(before[accounts.shardId]);
      expect(d.state.liveVersions).to.equal(d.state.seqno - d.state.earliestSeqno + 1);
      expect(d.state.stateBytes).to.be.above(0);
      expect(d.rollups.length).to.be.at.least(1);
      expect(d.rollups.every((x) => x.bytes !== null && x.bytes > 0), 'every rollup is in Blob').to.equal(true);
      // The spine is contiguous from its first lower to the physical upper.
      for (let i = 1; i < d.batches.length; i++) expect(d.batches[i]!.lower).to.equal(d.batches[i - 1]!.upper);
      expect(d.batches.at(-1)!.upper).to.equal(lib.uppers.get(accounts.shardId));
      expect(d.batches.reduce((n, b) => n + b.parts.length, 0)).to.equal(d.collection.parts);
      expect(d.pending.map((p) => p.ts)).to.include(pendingTs);
      const text = await runCli(['inspect', url, 'accounts']);
      expect(text.code).to.equal(0);
      expect(text.stdout).to.match(/^batch\s+lower\s+upper\s+since/m);
      expect(text.stdout).to.match(/^rollup seqno/m);
    });
  });
}

scenario('file:', async () => {
  const dir = await tempDir('txnwal-cli-inspect-');
  return { url: `file:${path.join(dir, 'data')}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

scenario('Postgres', async () => {
  const dir = await tempDir('txnwal-cli-inspect-pg-');
  const pgUrl = await freshTestDatabaseUrl();
  return { url: `${pgUrl}?blob=file:${path.join(dir, 'blob')}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
});
