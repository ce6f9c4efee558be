/**
 * The wake-up channels of the location layer: the in-process one (`mem://`), the
 * Unix socket shared by the processes on a `file:` directory, and the contract they
 * share (hints to the key's watchers only, "look again" on status changes, close
 * releases everything and nothing keeps a process alive).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { openLocation } from '../../src/location/location.js';
import { SocketStateChanges, wakeSocketPath } from '../../src/location/socket-state-changes.js';
import { LocalStateChanges, type StateChanges } from '../../src/location/state-changes.js';
import { waitFor } from '../support/async.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';

const run = promisify(execFile);
const leaveChild = fileURLToPath(new URL('./open-and-leave-child.ts', import.meta.url));

/** Resolves with the next hint `changes` hears for `key`. */
function nextHint(changes: StateChanges, key: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const stop = changes.watch(key, (seqno) => {
      stop();
      resolve(seqno);
    });
  });
}

describe('location wake-up channels (StateChanges)', function () {
  this.timeout(60_000);

  describe('in-process (mem://)', () => {
    it('hands a hint to the watchers of its key only, at once, until they stop watching', async () => {
      const changes = new LocalStateChanges();
      const heard: string[] = [];
      const stopA = changes.watch('a', (s) => heard.push(`a${s}`));
      changes.watch('b', (s) => heard.push(`b${s}`));
      changes.publish('a', 1);
      expect(heard).to.deep.equal(['a1']);
      stopA();
      stopA();
      changes.publish('a', 2);
      changes.publish('b', 3);
      expect(heard).to.deep.equal(['a1', 'b3']);
      expect(changes.up).to.equal(true);
      await changes.close();
      changes.publish('b', 4);
      expect(heard).to.deep.equal(['a1', 'b3']);
      expect(changes.up).to.equal(false);
    });

    it('every open of one mem://<name> shares one channel', async () => {
      const a = await openLocation('mem://state-changes-shared');
      const b = await openLocation('mem://state-changes-shared');
      const hint = nextHint(b.stateChanges!, 's');
      a.stateChanges!.publish('s', 9);
      expect(await hint).to.equal(9);
    });
  });

  describe('file: Unix socket', () => {
    let dir: string;
    const open: SocketStateChanges[] = [];
    beforeEach(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-sc-'));
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
      await rm(dir, { recursive: true, force: true });
    });
    const channel = async (d = dir) => {
      const c = await SocketStateChanges.open(d);
      open.push(c);
      return c;
    };

    it('the first opener serves, later ones join, and hints travel between all of them', async () => {
      const [server, c1, c2] = [await channel(), await channel(), await channel()];
      expect([server.serving, c1.serving, c2.serving]).to.deep.equal([true, false, false]);
      expect([server.up, c1.up, c2.up]).to.deep.equal([true, true, true]);
      // client → server and the other client (relayed), not back to the sender's socket
      let [atServer, atC2] = [nextHint(server, 'k'), nextHint(c2, 'k')];
      c1.publish('k', 5);
      expect([await atServer, await atC2]).to.deep.equal([5, 5]);
      // server → every client
      const [atC1, atC2b] = [nextHint(c1, 'k'), nextHint(c2, 'k')];
      server.publish('k', 6);
      expect([await atC1, await atC2b]).to.deep.equal([6, 6]);
      // a publisher's own watchers hear its hint at once
      const own: Array<number | undefined> = [];
      c2.watch('own', (s) => own.push(s));
      c2.publish('own', 7);
      expect(own).to.deep.equal([7]);
      [atServer, atC2] = [nextHint(server, 'other'), nextHint(c2, 'k')];
      c1.publish('other', 1);
      expect(await atServer).to.equal(1);
    });

    it('when the server closes, clients are told to look again and one of them takes over', async () => {
      const server = await channel();
      const [c1, c2] = [await channel(), await channel()];
      const lookAgain = nextHint(c1, 'k');
      await server.close();
      expect(await lookAgain, '"look again" carries no seqno').to.equal(undefined);
      await waitFor(() => c1.up && c2.up && (c1.serving || c2.serving));
      expect(c1.serving && c2.serving, 'exactly one serves').to.equal(false);
      const heard = nextHint(c1, 'k');
      c2.publish('k', 8);
      expect(await heard).to.equal(8);
    });

    it('a directory whose socket path would be too long uses a socket under the temp directory', async () => {
      const deep = path.join(dir, 'a'.repeat(60), 'b'.repeat(60));
      await import('node:fs/promises').then((fs) => fs.mkdir(deep, { recursive: true }));
      const socketPath = wakeSocketPath(deep);
      expect(socketPath.startsWith(os.tmpdir())).to.equal(true);
      expect(Buffer.byteLength(socketPath)).to.be.lessThan(104);
      const [a, b] = [await channel(deep), await channel(deep)];
      expect([a.serving, b.serving]).to.deep.equal([true, false]);
      const heard = nextHint(a, 'k');
      b.publish('k', 3);
      expect(await heard).to.equal(3);
      expect((await stat(path.join(deep, 'wake.lock'))).mode & 0o777).to.equal(0o600);
    });

    it('without a usable lock file it stays down (readers poll) but the location still opens and hints reach this process', async () => {
      // A directory where the lock file should be: SQLite cannot open it as a database.
      await import('node:fs/promises').then((fs) => fs.mkdir(path.join(dir, 'wake.lock')));
      const location = await openLocation(`file:${dir}`);
      try {
        const changes = location.stateChanges as SocketStateChanges;
        expect([changes.up, changes.serving]).to.deep.equal([false, false]);
        const heard = nextHint(changes, 'k');
        changes.publish('k', 2);
        expect(await heard).to.equal(2);
      } finally {
        await location.close();
      }
    });

    it('hints published while down go out once it is back: the latest seqno of each key', async () => {
      // No lock file: the channel can join but never serve, so it stays down until a
      // server (here a bare one speaking the line protocol) appears on its path.
      await import('node:fs/promises').then((fs) => fs.mkdir(path.join(dir, 'wake.lock')));
      const c = await channel();
      expect(c.up).to.equal(false);
      c.publish('k', 4);
      c.publish('k', 5);
      c.publish('j', 1);
      const received: string[] = [];
      const server = net.createServer((sock) => {
        readline.createInterface({ input: sock }).on('line', (line) => received.push(line));
      });
      await new Promise<void>((resolve) => server.listen(c.socketPath, resolve));
      try {
        await waitFor(() => received.length >= 2, 10_000);
        expect(c.up).to.equal(true);
        expect(received).to.deep.equal(['5 k', '1 j']);
      } finally {
        await c.close();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('close() releases everything: later publishes and watches do nothing, and the socket file is gone', async () => {
      const c = await channel();
      const path_ = c.socketPath;
      await c.close();
      await c.close();
      expect(c.up).to.equal(false);
      c.publish('k', 1);
      c.watch('k', () => expect.fail('a closed channel must not call watchers'));
      await stat(path_).then(
        () => expect.fail('the socket file should be removed'),
        (err: NodeJS.ErrnoException) => expect(err.code).to.equal('ENOENT'),
      );
    });
  });

  describe('no channel keeps a process alive', () => {
    for (const backend of ['file', 'postgres'] as const) {
      it(`a process that leaves a ${backend} location open exits by itself`, async function () {
        this.timeout(120_000);
        const dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-sc-exit-'));
        try {
          let url = `file:${dir}`;
          if (backend === 'postgres') {
            const u = new URL(await freshTestDatabaseUrl());
            u.searchParams.set('blob', `file:${dir}`);
            url = u.toString();
          }
          // The channel is up, yet the child exits: execFile resolves only on exit.
          const { stdout } = await run(process.execPath, ['--import', 'tsx', leaveChild, url], { timeout: 30_000 });
          expect(stdout.trim()).to.equal('up=true');
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  });
});
