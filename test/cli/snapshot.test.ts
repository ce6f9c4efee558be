/**
 * `txnwal snapshot`, run as the built command: its JSON lines equal `db.snapshot` at
 * the same time (now and an earlier `--as-of`), on `file:` and Postgres stores; a
 * commit that was never applied is read from the txns shard's pointer; the table is
 * aligned; and the store is unchanged afterwards.
 */
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { expect } from 'chai';
import type { SnapshotRow } from '../../src/cli/commands/snapshot.js';
import { openDatabase } from '../../src/index.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';
import { describeChild } from '../support/run-child.js';
import { builtCli, consensusHeads, leaveUnapplied, makeBank, runCli, tempDir } from './cli-support.js';

type Row = [unknown, unknown, number];

function sortRows(rows: Row[]): Row[] {
  return [...rows].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}

function parseRows(stdout: string): SnapshotRow[] {
  return stdout.trim() === '' ? [] : stdout.trim().split('\n').map((l) => JSON.parse(l) as SnapshotRow);
}

function scenario(kind: string, makeUrl: () => Promise<{ url: string; cleanup: () => Promise<void> }>): void {
  describe(`txnwal snapshot on a ${kind} store`, function () {
    this.timeout(180_000);
    let url: string;
    let cleanup: () => Promise<void>;
    let commits: number[];

    before(async () => {
      await builtCli();
      ({ url, cleanup } = await makeUrl());
      const made = await makeBank(url);
      commits = made.commits;
      await made.db.close();
    });
    after(() => cleanup?.());

    /** The library's rows as of `asOf`, read AFTER the command's (a snapshot's reader moves the since up to its time). */
    async function librarySnapshot(name: string, asOf: number): Promise<Row[]> {
      const db = await openDatabase(url);
      try {
        await db.collection(name);
        return (await db.snapshot([name], asOf)).collections[name] as Row[];
      } finally {
        await db.close();
      }
    }

    async function commandSnapshot(name: string, asOf?: number): Promise<SnapshotRow[]> {
      const r = await runCli(['snapshot', url, name, ...(asOf === undefined ? [] : ['--as-of', String(asOf)]), '--json']);
      expect(r.code, describeChild(`snapshot ${name}`, r)).to.equal(0);
      return parseRows(r.stdout);
    }

    it('--json rows equal db.snapshot, at an earlier --as-of and at the latest time', async () => {
      for (const [name, asOf] of [
        ['accounts', commits[0]!],
        ['accounts', commits[2]!],
        ['audit', commits[2]!],
      ] as const) {
        const before = await consensusHeads(url);
        const rows = await commandSnapshot(name, asOf);
        expect(await consensusHeads(url), 'every Consensus head is unchanged').to.deep.equal(before);
        expect(rows.every((x) => x.asOf === asOf)).to.equal(true);
        expect(sortRows(rows.map((x) => [x.key, x.val, x.diff])), `${name} as of ${asOf}`).to.deep.equal(sortRows(await librarySnapshot(name, asOf)));
      }
      // Without --as-of: the latest complete time, at or after the last commit.
      const rows = await commandSnapshot('accounts');
      expect(rows[0]!.asOf).to.be.at.least(commits[2]!);
      expect(sortRows(rows.map((x) => [x.key, x.val, x.diff]))).to.deep.equal(sortRows(await librarySnapshot('accounts', rows[0]!.asOf)));
    });

    it('prints an aligned table: key, val, diff', async () => {
      const r = await runCli(['snapshot', url, 'accounts']);
      expect(r.code, describeChild('snapshot', r)).to.equal(0);
      expect(r.stderr, 'no progress on a pipe').to.equal('');
      expect(r.stdout.trimEnd().split('\n')).to.deep.equal([
        'key      val   diff',
        '"alice"  null    70',
        '"bob"    null    35',
        '"carol"  null     7',
      ]);
    });

    it('reads a commit whose apply never ran from the txns shard', async () => {
      const made = await openDatabase(url);
      const accounts = (await made.collections()).find((c) => c.name === 'accounts')!;
      const txnsId = made.txnsId;
      await made.close();
      const ts = await leaveUnapplied(url, txnsId, accounts.shardId, [['alice', -70], ['dave', 2]]);
      const inspect = JSON.parse((await runCli(['inspect', url, '--json'])).stdout) as { collections: { name: string; physicalUpper: number }[] };
      expect(inspect.collections.find((c) => c.name === 'accounts')!.physicalUpper, 'not applied').to.be.at.most(ts);
      const before = await consensusHeads(url);
      const r = await runCli(['snapshot', url, 'accounts', '--as-of', String(ts), '--json']);
      expect(r.code, describeChild('snapshot', r)).to.equal(0);
      expect(sortRows(parseRows(r.stdout).map((x) => [x.key, x.val, x.diff]))).to.deep.equal(
        sortRows([['bob', null, 35], ['carol', null, 7], ['dave', null, 2]]),
      );
      // One below the commit: without it.
      const r2 = await runCli(['snapshot', url, 'accounts', '--as-of', String(ts - 1), '--json']);
      expect(r2.code, describeChild('snapshot', r2)).to.equal(0);
      expect(sortRows(parseRows(r2.stdout).map((x) => [x.key, x.val, x.diff]))).to.deep.equal(sortRows([['alice', null, 70], ['bob', null, 35], ['carol', null, 7]]));
      expect(await consensusHeads(url)).to.deep.equal(before);
    });
  });
}

scenario('file:', async () => {
  const dir = await tempDir('txnwal-cli-snapshot-');
  return { url: `file:${path.join(dir, 'data')}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

scenario('Postgres', async () => {
  const dir = await tempDir('txnwal-cli-snapshot-pg-');
  const pgUrl = await freshTestDatabaseUrl();
  return { url: `${pgUrl}?blob=file:${path.join(dir, 'blob')}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
});
