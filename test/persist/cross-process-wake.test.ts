/**
 * Cross-process wake-ups: a reader in this process follows a shard that a writer in
 * a child process (test/persist/wake-writer-child.ts) appends to, on `file:` and on
 * Postgres. The reader's fallback poll is ten minutes, so within the test's timeout
 * only a hint from the location's wake-up channel can deliver a write: each write is
 * sent only once the reader is already waiting for it.
 *
 * Then the channel's failures: the process serving the `file:` socket is SIGKILLed
 * (its socket file stays behind) and another process takes over; the Postgres LISTEN
 * connection is terminated and the server restarted under a live reader. Each time
 * the channel comes back by itself and hints flow again.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { SocketStateChanges } from '../../src/location/socket-state-changes.js';
import type { Listen } from '../../src/persist/listen.js';
import { PersistClient, newShardId } from '../../src/persist/index.js';
import { waitFor } from '../support/async.js';
import { STRING_UNIT } from '../support/persist.js';
import { connectAdmin, freshTestDatabaseUrl, restartTestPostgres, terminateBackends } from '../support/postgres.js';
import { startWriterChild, type WriterChild } from '../support/writer-child.js';

/** A fallback poll that never fires within a test: only hints can wake a reader. */
const TEN_MINUTES = { initialMs: 600_000, multiplier: 1, clampMs: 600_000 };

/**
 * The reader waits (its machine has a pending wait) before the child appends at `ts`,
 * so the append can reach it only through a hint; the listen must then report it.
 */
async function deliveredByHint(
  client: PersistClient,
  shardId: string,
  listen: Listen<string, null>,
  child: WriterChild,
  ts: number,
): Promise<void> {
  const next = listen.next();
  await waitFor(() => client.shardMachine(shardId).waiterCount > 0);
  await child.append(ts);
  const events = await next;
  expect(events.at(-1)).to.deep.equal({ kind: 'progress', upper: ts + 1 });
}

async function readerOn(url: string, shardId: string) {
  const client = await PersistClient.open(url, { config: { listenPoll: TEN_MINUTES } });
  const reader = await client.openLeasedReader(shardId, STRING_UNIT);
  return { client, listen: await reader.listen(0) };
}

describe('cross-process wake-ups', function () {
  this.timeout(60_000);
  let dir: string;
  const children: WriterChild[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-wake-'));
  });

  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.process.kill('SIGKILL');
      await c.exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  async function child(url: string, shardId: string): Promise<WriterChild> {
    const c = await startWriterChild(url, shardId);
    children.push(c);
    return c;
  }

  describe('file:', () => {
    it('a reader sees sparse writes from another process through hints, with its fallback poll at ten minutes', async () => {
      const url = `file:${dir}`;
      const id = newShardId();
      const { client, listen } = await readerOn(url, id);
      try {
        // The reader opened first, so it serves the socket and the child joins it.
        expect((client.location.stateChanges as SocketStateChanges).serving).to.equal(true);
        const writer = await child(url, id);
        expect(writer.serving).to.equal(false);
        for (let ts = 0; ts < 3; ts++) await deliveredByHint(client, id, listen, writer, ts);
      } finally {
        await client.close();
      }
    });

    it('the serving process is SIGKILLed: a survivor takes over its stale socket file and hints flow again', async () => {
      const url = `file:${dir}`;
      const id = newShardId();
      const server = await child(url, id);
      expect(server.serving, 'the first process serves').to.equal(true);
      const { client, listen } = await readerOn(url, id);
      const changes = client.location.stateChanges as SocketStateChanges;
      try {
        expect(changes.serving).to.equal(false);
        const writer = await child(url, id);
        await deliveredByHint(client, id, listen, writer, 0);

        server.process.kill('SIGKILL');
        await server.exited;
        // Someone serves again: this process or the other child. The killed server's
        // socket file was left behind and has been replaced.
        await waitFor(() => changes.up, 10_000);
        expect(existsSync(changes.socketPath)).to.equal(true);
        for (let ts = 1; ts < 3; ts++) await deliveredByHint(client, id, listen, writer, ts);
      } finally {
        await client.close();
      }
    });

    it('a socket file left by a SIGKILLed process with nobody else on the directory is taken over on open', async () => {
      const url = `file:${dir}`;
      const id = newShardId();
      const server = await child(url, id);
      expect(server.serving).to.equal(true);
      server.process.kill('SIGKILL');
      await server.exited;
      const socketPath = path.join(dir, 'wake.sock');
      expect(existsSync(socketPath), 'the stale socket file').to.equal(true);
      const { client, listen } = await readerOn(url, id);
      try {
        expect((client.location.stateChanges as SocketStateChanges).serving).to.equal(true);
        const writer = await child(url, id);
        await deliveredByHint(client, id, listen, writer, 0);
      } finally {
        await client.close();
      }
    });
  });

  describe('Postgres', () => {
    let pgUrl: string;
    before(async function () {
      this.timeout(120_000);
      pgUrl = await freshTestDatabaseUrl();
    });
    const locationUrl = () => {
      const u = new URL(pgUrl);
      u.searchParams.set('blob', `file:${dir}`);
      return u.toString();
    };

    it('a reader sees sparse writes from another process through NOTIFY, with its fallback poll at ten minutes', async () => {
      const url = locationUrl();
      const id = newShardId();
      const { client, listen } = await readerOn(url, id);
      try {
        expect(client.location.stateChanges?.up).to.equal(true);
        const writer = await child(url, id);
        for (let ts = 0; ts < 3; ts++) await deliveredByHint(client, id, listen, writer, ts);
      } finally {
        await client.close();
      }
    });

    it('the LISTEN connection is terminated, then the server restarts, under a live reader: hints flow again each time', async function () {
      const url = locationUrl();
      const id = newShardId();
      const { client, listen } = await readerOn(url, id);
      const changes = client.location.stateChanges!;
      const admin = await connectAdmin(pgUrl);
      try {
        const writer = await child(url, id);
        await deliveredByHint(client, id, listen, writer, 0);

        expect(await terminateBackends(admin, `query ILIKE 'LISTEN%'`)).to.be.greaterThan(0);
        await waitFor(() => !changes.up, 10_000).catch(() => undefined); // it may already be back
        await waitFor(() => changes.up, 10_000);
        await deliveredByHint(client, id, listen, writer, 1);

        await admin.end();
        if (!(await restartTestPostgres())) this.skip();
        await waitFor(() => changes.up, 20_000);
        // The child's pool replaces its dead connections on its own; its first append may be
        // refused while the server comes up, so retrying is the child's storage retry's job.
        await deliveredByHint(client, id, listen, writer, 2);
      } finally {
        await admin.end().catch(() => undefined);
        await client.close();
      }
    });
  });
});
