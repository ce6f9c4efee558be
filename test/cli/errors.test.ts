/**
 * The `txnwal` command's failures, run as the built command: each is ONE line on
 * stderr that says what is wrong and what to do, exit code 1, nothing on stdout and
 * no stack trace; and a failed read leaves the location as it was (a missing
 * directory is not created, a Postgres database gets no table). Also `--help` on
 * every command.
 */
import { cp, mkdir, readdir, readFile, writeFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import pg from 'pg';
import { PersistClient, Codecs, type ShardId } from '../../src/index.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';
import type { ChildResult } from '../support/run-child.js';
import { builtCli, makeBank, runCli, tempDir } from './cli-support.js';

function expectOneLine(r: ChildResult, pattern: RegExp): void {
  const context = `stderr:\n${r.stderr}\nstdout:\n${r.stdout}`;
  expect(r.code, context).to.equal(1);
  expect(r.stdout, context).to.equal('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, context).to.have.length(1);
  expect(lines[0], context).to.match(/^txnwal: /);
  expect(lines[0], context).to.match(pattern);
  expect(r.stderr, 'no stack trace').to.not.match(/\n\s+at /);
}

describe('txnwal: errors and help', function () {
  this.timeout(180_000);
  let dir: string;
  let store: string;
  let url: string;
  let txnsId: ShardId;
  let accountsId: ShardId;
  let since: number;

  before(async () => {
    await builtCli();
    dir = await tempDir('txnwal-cli-errors-');
    store = path.join(dir, 'data');
    url = `file:${store}`;
    const { db } = await makeBank(url);
    txnsId = db.txnsId;
    accountsId = (await db.collections()).find((c) => c.name === 'accounts')!.shardId;
    await db.close();
    // Move the since of accounts to its upper - 1, so earlier times are below it.
    const client = await PersistClient.open(url);
    const writer = await client.openWriter(accountsId, { key: Codecs.bytes, val: Codecs.bytes });
    since = (await writer.fetchRecentUpper()) - 1;
    const reader = await client.openLeasedReader(accountsId, { key: Codecs.bytes, val: Codecs.bytes });
    await reader.downgradeSince(since);
    await reader.expire();
    await client.close();
  });
  after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it('--help on the program and every command prints usage and exits 0', async () => {
    for (const args of [['--help'], ['inspect', '--help'], ['tail', '--help'], ['snapshot', '--help'], ['help', 'snapshot']]) {
      const r = await runCli(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(0);
      expect(r.stdout, args.join(' ')).to.match(/^Usage: txnwal/);
    }
    const top = await runCli(['--help']);
    for (const command of ['inspect', 'tail', 'snapshot']) expect(top.stdout).to.match(new RegExp(`^  ${command} `, 'm'));
    expect((await runCli(['snapshot', '--help'])).stdout).to.include('--as-of <ts>').and.include('--json').and.include('Examples:');
  });

  it('a bad URL: unsupported scheme, an in-memory location, file: without a directory, Postgres without a blob store', async () => {
    expectOneLine(await runCli(['inspect', 'bogus://x']), /unsupported location URL "bogus:\/\/x": expected file:<dir>/);
    expectOneLine(await runCli(['inspect', 'mem://x']), /in-memory location lives inside the process/);
    expectOneLine(await runCli(['inspect', 'file:']), /file: needs a directory/);
    expectOneLine(await runCli(['inspect', 'postgres://u:secret@127.0.0.1:5/db']), /names no blob store; add \?blob=file:<dir>/);
    const r = await runCli(['inspect', 'postgres://u:secret@127.0.0.1:5/db']);
    expect(r.stderr, 'the password is not shown').to.not.include('secret');
  });

  it('a missing directory: one line, and nothing is created', async () => {
    const missing = path.join(dir, 'no', 'such', 'dir');
    for (const args of [['inspect', `file:${missing}`], ['snapshot', `file:${missing}`, 'accounts'], ['tail', `file:${missing}`, 'accounts']]) {
      expectOneLine(await runCli(args), /the store directory .*no\/such\/dir does not exist; check the path/);
    }
    expect(existsSync(path.join(dir, 'no')), 'no directory was created').to.equal(false);
  });

  it('a directory that is not a txnwal store: empty, or holding other files; both left as they were', async () => {
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    expectOneLine(await runCli(['inspect', `file:${empty}`]), /is not a txnwal store: .* has no consensus\.sqlite/);
    expect(await readdir(empty)).to.deep.equal([]);
    const other = path.join(dir, 'other');
    await mkdir(other);
    await writeFile(path.join(other, 'notes.txt'), 'not a store');
    await writeFile(path.join(other, 'consensus.sqlite'), 'not a database either, but named like one');
    await mkdir(path.join(other, 'blob'));
    expectOneLine(await runCli(['inspect', `file:${other}`]), /is not a txnwal store: .*consensus\.sqlite is not a SQLite database/);
    expect((await readdir(other)).sort()).to.deep.equal(['blob', 'consensus.sqlite', 'notes.txt']);
    expect(await readFile(path.join(other, 'consensus.sqlite'), 'utf8')).to.equal('not a database either, but named like one');
    // A SQLite file of another program.
    const foreign = path.join(dir, 'foreign');
    await mkdir(path.join(foreign, 'blob'), { recursive: true });
    const sqlite = new Database(path.join(foreign, 'consensus.sqlite'));
    sqlite.exec('CREATE TABLE t (x)');
    sqlite.close();
    expectOneLine(await runCli(['inspect', `file:${foreign}`]), /is not a txnwal store: .* has no consensus table/);
  });

  it('a corrupt store: a garbled state rollup in Blob, or a garbled version row in Consensus', async () => {
    const garbledBlob = path.join(dir, 'garbled-blob');
    await cp(store, garbledBlob, { recursive: true });
    const rollups = (await readdir(path.join(garbledBlob, 'blob'))).filter((f) => f.startsWith(`${txnsId}\u2215v`));
    expect(rollups.length).to.be.above(0);
    for (const f of rollups) await writeFile(path.join(garbledBlob, 'blob', f), Buffer.from('garbage, not a rollup'));
    expectOneLine(await runCli(['inspect', `file:${garbledBlob}`]), /the store is corrupt: .*restore it from a backup/);

    const garbledRow = path.join(dir, 'garbled-row');
    await cp(store, garbledRow, { recursive: true });
    const sqlite = new Database(path.join(garbledRow, 'consensus.sqlite'));
    sqlite
      .prepare('UPDATE consensus SET data = ? WHERE shard = ? AND sequence_number = (SELECT MAX(sequence_number) FROM consensus WHERE shard = ?)')
      .run(Buffer.from([0xff, 0xfe, 0x01, 0x02, 0x03]), accountsId, accountsId);
    sqlite.close();
    expectOneLine(await runCli(['snapshot', `file:${garbledRow}`, 'accounts']), /the store is corrupt: /);
  });

  it('an unknown collection names the ones there are', async () => {
    for (const args of [['snapshot', url, 'acounts'], ['tail', url, 'accounts', 'acounts'], ['inspect', url, 'acounts']]) {
      expectOneLine(await runCli(args), /no collection "acounts" in file:.* \(it has: accounts, audit\)/);
    }
  });

  it('--as-of below the since, not yet complete, or not a timestamp; an unknown option', async () => {
    expectOneLine(await runCli(['snapshot', url, 'accounts', '--as-of', String(since - 1)]), new RegExp(`below the since of collection "accounts": it is readable as of ${since} or later`));
    expectOneLine(await runCli(['tail', url, 'accounts', '--as-of', String(since - 1)]), /below the since of collection "accounts"/);
    expectOneLine(await runCli(['snapshot', url, 'accounts', '--as-of', String(Number.MAX_SAFE_INTEGER)]), /is not complete yet for collection "accounts": it is complete below \d+/);
    expectOneLine(await runCli(['snapshot', url, 'accounts', '--as-of', 'yesterday']), /--as-of <ts>.*expected a timestamp/);
    expectOneLine(await runCli(['inspect', url, '--bogus']), /unknown option '--bogus' \(see --help\)/);
  });

  it('Postgres: a database without a txnwal table is not a store (and gets none); an unreachable server is one line', async () => {
    const pgUrl = await freshTestDatabaseUrl();
    const blobDir = path.join(dir, 'pg-blob');
    await mkdir(blobDir);
    expectOneLine(await runCli(['inspect', `${pgUrl}?blob=file:${blobDir}`]), /is not a txnwal store: the database has no consensus table/);
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    const { rows } = await client.query<{ t: string | null }>("SELECT to_regclass('consensus')::text AS t");
    await client.end();
    expect(rows[0]!.t, 'no table was created').to.equal(null);
    expectOneLine(await runCli(['inspect', `postgres://u:pw@127.0.0.1:1/db?blob=file:${blobDir}`]), /cannot read postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db.*check that the server is up/);
    expectOneLine(await runCli(['inspect', `${pgUrl}?blob=file:${path.join(dir, 'pg-no-blob')}`]), /the blob directory .* does not exist/);
    expect(existsSync(path.join(dir, 'pg-no-blob'))).to.equal(false);
  });
});
