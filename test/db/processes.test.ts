/**
 * The front door across real processes: two processes creating one new database and
 * one collection at the same moment end up with one txns shard and one collection;
 * and a process that closes its database exits on its own, with a subscription and
 * writes still open when it called close().
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm } from 'node:fs/promises';
import { expect } from 'chai';
import { Codecs } from '../../src/index.js';
import { openDatabase } from '../../src/db/index.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'db-child.ts');

interface Child {
  /** Resolves with the first JSON line for which `match` holds. */
  line(match: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  send(text: string): void;
  /** Resolves with the exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function start(...args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let buffered = '';
  let stderr = '';
  proc.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      buffered = buffered.slice(nl + 1);
    }
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    proc.on('exit', (code, signal) => {
      resolve({ code, signal, stderr });
      for (const w of waiters.splice(0)) w();
    }),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  return {
    async line(match) {
      for (;;) {
        const found = lines.find(match);
        if (found) return found;
        if (gone) throw new Error(`the child exited without the expected line; stderr:\n${stderr}`);
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    send: (text) => proc.stdin.write(text),
    exited,
  };
}

describe('db: across processes', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-db-proc-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('two processes creating the same new database and collection at once race to one of each', async () => {
    const url = `file:${dir}`;
    const children = [start('race', url, 'accounts'), start('race', url, 'accounts')];
    await Promise.all(children.map((c) => c.line((l) => l.event === 'ready')));
    for (const c of children) c.send('go\n'); // released together
    const done = await Promise.all(children.map((c) => c.line((l) => l.event === 'done')));
    for (const c of children) expect((await c.exited).code).to.equal(0);
    expect(done[0]!.txnsId, 'one txns shard').to.equal(done[1]!.txnsId);
    expect(done[0]!.shardId, 'one collection').to.equal(done[1]!.shardId);

    const db = await openDatabase(url);
    try {
      expect(db.txnsId).to.equal(done[0]!.txnsId);
      expect((await db.collections()).map((c) => c.name)).to.deep.equal(['accounts']);
      await db.collection('accounts', { key: Codecs.string, val: Codecs.unit });
      const snap = await db.snapshot('accounts');
      expect(snap.collections.accounts!.map((r) => r[0]).sort(), "both processes' writes are in the one collection").to.have.length(2);
    } finally {
      await db.close();
    }
  });

  it('close() leaves nothing behind: the process exits by itself, every accepted write acknowledged', async () => {
    const c = start('linger', `file:${dir}`);
    const closed = await c.line((l) => l.event === 'closed');
    expect(closed.acked).to.equal(20);
    const { code, signal, stderr } = await c.exited;
    expect({ code, signal }, stderr).to.deep.equal({ code: 0, signal: null });
    const db = await openDatabase(`file:${dir}`);
    try {
      await db.collection('items');
      expect((await db.snapshot('items')).collections.items).to.have.length(21);
    } finally {
      await db.close();
    }
  });
});
