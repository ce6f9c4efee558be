/**
 * SocketStateChanges: the wake-up channel of a `file:` location, a Unix socket that
 * the processes on one data directory share with no server for the user to start.
 *
 * How it works:
 * - The first process to open the directory *serves*: it listens on
 *   `<dir>/wake.sock`. Every later one *joins* as a client of it. A hint is one line,
 *   `"<seqno> <key>\n"`; a client sends its own hints to the server, the server hands
 *   every hint it hears (or publishes) to its own watchers and relays it to every
 *   other client. Each process also delivers its own hints to its own watchers at once.
 * - When the serving process exits (closed, crashed, SIGKILLed), its clients see the
 *   connection end, report "look again" to their watchers, and rejoin: the first to
 *   find nobody listening takes over and serves. Hints published while a process is
 *   down are kept (the latest seqno per key) and sent when it is back, so a reader
 *   that stayed up does not miss a write made meanwhile. A socket file left behind by a killed
 *   server refuses connections (ECONNREFUSED); that is how a stale file is told from a
 *   live one.
 * - Taking over is serialised across processes by a lock: a write transaction
 *   (`BEGIN IMMEDIATE`) on a small SQLite file, `<dir>/wake.lock`, whose POSIX lock the
 *   kernel drops if the holder dies. Under the lock a process probes the socket once
 *   more and only then removes a stale file and listens. Without the lock two
 *   processes that both saw the stale file could each remove the other's fresh socket,
 *   leaving one serving a socket nobody can reach.
 * - Paths: Unix socket paths are limited to about 107 bytes (104 on macOS). When
 *   `<dir>/wake.sock` is longer than 100 bytes, the socket lives at
 *   `<os.tmpdir()>/txnwal-<sha256 of the real directory path>.sock` instead (same for
 *   every process on the directory). The lock file always stays in the directory.
 * - Files: the lock file and the socket are 0600 (option `fileMode`, as for the
 *   database), so only the owner can connect, also for a socket under os.tmpdir().
 * - Lifetime: the server, every socket and the retry timer are `unref`'d, so the
 *   channel never keeps a process alive; `close()` ends them all (the server's socket
 *   file is removed by Node when it stops listening). An idle channel does nothing: no
 *   timer runs while it is up.
 * - Faults never throw out of the channel: a failed join leaves it down (`up` false,
 *   readers poll) and it retries with backoff (10 ms doubling to 1 s).
 *
 * Why a socket rather than `fs.watch` on the SQLite `-wal` file: measured by
 * bench/file-wake.ts (writer and reader in two processes, 200 commits 10 ms apart,
 * the reader woken by the candidate reads the head; 2 cores at load 11):
 *
 * | candidate | p50 | p99 | wake-ups per commit | commits never seen |
 * |---|---|---|---|---|
 * | socket | 0.32 ms | 33 ms | 1.00 | 0 |
 * | fs.watch (inotify) | 11 ms | 112 ms | 1.20 | 1 |
 *
 * inotify reports SQLite's write of the WAL frame, which comes *before* the commit is
 * visible (the fsync and the wal-index update follow), so a reader woken by it often
 * reads too early, sees nothing new, and learns of the commit only from the next
 * write's event, about one commit interval later; the last commit of a burst is never
 * seen at all without the fallback poll. The event also names no shard: every waiting
 * shard in every process would read Consensus on every commit to any shard, and
 * checkpoints wake it too. The socket names the shard and the seqno and is sent after
 * the commit returned. (inotify is also missing on network and some container file
 * systems, and the -wal file disappears when the last connection closes.)
 *
 * Example:
 * ```ts
 * const changes = await SocketStateChanges.open('/var/lib/txnwal');
 * const stop = changes.watch('s1', (seqno) => console.log('s1 moved to', seqno));
 * changes.publish('s1', 7);   // heard by every process on /var/lib/txnwal
 * await changes.close();
 * ```
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { promises as fs, realpathSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { SeqNo } from './consensus.js';
import { DEFAULT_DATABASE_FILE_MODE, createFileIfMissing } from './private-file.js';
import { Rejoin } from './rejoin.js';
import { Watchers, formatHint, parseHint, type StateChangeCallback, type StateChanges } from './state-changes.js';

export interface SocketStateChangesOptions {
  /** Mode of the lock file if this open creates it, and of the socket. Default 0o600 (owner only). */
  fileMode?: number;
}

/** Longest socket path used inside the data directory (the OS limit is 104–108 bytes). */
const MAX_SOCKET_PATH_BYTES = 100;
/** A client that falls this far behind on relayed hints is dropped (it rejoins and looks again). */
const MAX_BUFFERED_BYTES = 1 << 20;
/** Keys whose hints are kept while down (beyond that, hints for more keys are dropped: readers poll). */
const MAX_UNSENT_KEYS = 10_000;
const RETRY = { initialMs: 10, clampMs: 1000 };

/** The socket path for a data directory (see the module comment). */
export function wakeSocketPath(dir: string): string {
  const inDir = path.join(dir, 'wake.sock');
  if (Buffer.byteLength(inDir) <= MAX_SOCKET_PATH_BYTES) return inDir;
  let real = dir;
  try {
    real = realpathSync(dir);
  } catch {
    // A directory that does not resolve is hashed as given.
  }
  const hash = createHash('sha256').update(real).digest('hex').slice(0, 32);
  return path.join(os.tmpdir(), `txnwal-${hash}.sock`);
}

type Role =
  | { kind: 'down' }
  | { kind: 'client'; socket: net.Socket }
  | { kind: 'server'; server: net.Server; clients: Set<net.Socket> };

/**
 * The wake-up channel of a `file:` location: a Unix socket that the processes on one directory
 * share; the first serves, the others join, and one takes over when it exits.
 *
 * Example:
 * ```ts
 * const changes = await SocketStateChanges.open('/var/lib/txnwal');
 * changes.watch('s1', (seqno) => console.log('s1 moved to', seqno));
 * changes.publish('s1', 2);   // after a committed compare-and-set: every process on the directory hears it
 * await changes.close();
 * ```
 */
export class SocketStateChanges implements StateChanges {
  /**
   * Where the socket lives: `<dir>/wake.sock`, or under the OS temp dir when that path is too long
   * for a socket.
   */
  readonly socketPath: string;
  private readonly watchers = new Watchers();
  private role: Role = { kind: 'down' };
  private closed = false;
  /** The latest seqno per key published while down, sent once the channel is back. */
  private readonly unsent = new Map<string, SeqNo>();
  private readonly rejoin = new Rejoin(() => this.tryJoin(), () => this.rejoined(), RETRY);

  private constructor(
    /** The data directory the channel serves. */
    readonly dir: string,
    private readonly lock: Database.Database | undefined,
    private readonly fileMode: number,
  ) {
    this.socketPath = wakeSocketPath(dir);
  }

  /**
   * Opens the channel on `dir` (which must exist) and makes one attempt to join or
   * serve. Resolves with the channel up if that worked, down (and retrying) if not.
   * Never rejects: without a lock file (say, a read-only directory) it only joins.
   */
  static async open(dir: string, options: SocketStateChangesOptions = {}): Promise<SocketStateChanges> {
    const lockPath = path.join(dir, 'wake.lock');
    const fileMode = options.fileMode ?? DEFAULT_DATABASE_FILE_MODE;
    let lock: Database.Database | undefined;
    try {
      await createFileIfMissing(lockPath, fileMode);
      lock = new Database(lockPath);
      // Never block the event loop on another process's takeover: retry asynchronously.
      lock.pragma('busy_timeout = 0');
    } catch {
      // No lock (a read-only directory, say): this process can join a server but never
      // become one. The channel is a hint; its absence must not fail the location.
      lock?.close();
      lock = undefined;
    }
    const changes = new SocketStateChanges(dir, lock, fileMode);
    await changes.rejoin.now();
    return changes;
  }

  get up(): boolean {
    return this.role.kind !== 'down';
  }

  /** Whether this process serves the socket now (tests, diagnostics). */
  get serving(): boolean {
    return this.role.kind === 'server';
  }

  publish(key: string, seqno: SeqNo): void {
    if (this.closed) return;
    this.watchers.notify(key, seqno);
    // A key with a newline cannot be framed; its readers fall back to polling.
    if (key.includes('\n')) return;
    if (this.role.kind === 'down') {
      // Other processes may be up and waiting: tell them once we are back.
      if (this.unsent.size < MAX_UNSENT_KEYS || this.unsent.has(key)) {
        this.unsent.set(key, Math.max(seqno, this.unsent.get(key) ?? 0));
      }
      return;
    }
    this.sendHint(formatHint(key, seqno) + '\n');
  }

  private sendHint(line: string): void {
    const role = this.role;
    if (role.kind === 'client') role.socket.write(line);
    else if (role.kind === 'server') for (const c of role.clients) this.send(c, line);
  }

  /**
   * Back up: hints may have been missed meanwhile, so every watcher here looks again,
   * and the hints this process published while down go out now.
   */
  private rejoined(): void {
    this.watchers.notifyAll();
    for (const [key, seqno] of this.unsent) this.sendHint(formatHint(key, seqno) + '\n');
    this.unsent.clear();
  }

  watch(key: string, onChange: StateChangeCallback): () => void {
    return this.watchers.watch(key, onChange);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.rejoin.stop();
    const role = this.role;
    this.role = { kind: 'down' };
    this.watchers.close();
    if (role.kind === 'client') role.socket.destroy();
    if (role.kind === 'server') {
      for (const c of role.clients) c.destroy();
      await new Promise<void>((resolve) => role.server.close(() => resolve()));
    }
    if (this.lock?.open) this.lock.close();
  }

  // ---- joining and serving ----

  private async tryJoin(): Promise<boolean> {
    if (this.closed) return false;
    const socket = await connect(this.socketPath);
    if (socket) return this.becomeClient(socket);
    // Nobody serves (no file, or a stale one): take over, under the lock.
    if (!this.lock) return false;
    try {
      this.lock.exec('BEGIN IMMEDIATE');
    } catch {
      return false; // another process is taking over right now; join it on the retry
    }
    try {
      const again = await connect(this.socketPath);
      if (again) return this.becomeClient(again);
      if (this.closed) return false;
      await fs.rm(this.socketPath, { force: true });
      return await this.becomeServer();
    } finally {
      this.lock.exec('ROLLBACK');
    }
  }

  private becomeClient(socket: net.Socket): boolean {
    if (this.closed) {
      socket.destroy();
      return false;
    }
    socket.unref();
    this.role = { kind: 'client', socket };
    readLines(socket, (line) => this.heard(line));
    socket.on('error', () => undefined);
    socket.on('close', () => this.lost(socket));
    return true;
  }

  private becomeServer(): Promise<boolean> {
    const clients = new Set<net.Socket>();
    const server = net.createServer((c) => {
      c.unref();
      clients.add(c);
      c.on('error', () => undefined);
      c.on('close', () => clients.delete(c));
      readLines(c, (line) => {
        // Only well-formed hints travel on; anything else is ignored, not relayed.
        if (!this.heard(line)) return;
        for (const other of clients) if (other !== c) this.send(other, line + '\n');
      });
    });
    return new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(this.socketPath, () => {
        server.unref();
        server.removeAllListeners('error');
        server.on('error', () => this.lost(server));
        // Connecting needs write permission on the socket: owner only, whatever the umask.
        fs.chmod(this.socketPath, this.fileMode).then(
          () => {
            this.role = { kind: 'server', server, clients };
            resolve(true);
          },
          () => {
            server.close();
            resolve(false);
          },
        );
      });
    });
  }

  /** The server or the connection to it failed: report down, look again, rejoin. */
  private lost(what: net.Socket | net.Server): void {
    const role = this.role;
    const current = role.kind === 'client' ? role.socket : role.kind === 'server' ? role.server : undefined;
    if (current !== what || this.closed) return;
    if (role.kind === 'server') {
      for (const c of role.clients) c.destroy();
      role.server.close();
    }
    this.role = { kind: 'down' };
    this.watchers.notifyAll();
    void this.rejoin.now();
  }

  /** Hands a hint from the socket to the watchers; false if it was not a hint. */
  private heard(line: string): boolean {
    const hint = parseHint(line);
    if (hint && !this.closed) this.watchers.notify(hint.key, hint.seqno);
    return hint !== undefined;
  }

  private send(client: net.Socket, line: string): void {
    if (client.writableLength > MAX_BUFFERED_BYTES) client.destroy();
    else client.write(line);
  }
}

/** A connected socket, or undefined if nobody accepts on `socketPath`. */
function connect(socketPath: string): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      // Until the caller installs its own: an 'error' without a listener would be thrown.
      socket.on('error', () => undefined);
      resolve(socket);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(undefined);
    });
  });
}

/** Longest line a peer may send: a hint is a seqno and a key; anything longer is a broken peer. */
const MAX_LINE_CHARS = 64 * 1024;

/** Calls `onLine` for each complete `\n`-terminated line from `socket`; cuts off a peer whose line never ends. */
function readLines(socket: net.Socket, onLine: (line: string) => void): void {
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    if (pending.length > MAX_LINE_CHARS && !pending.includes('\n')) {
      socket.destroy();
      return;
    }
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
}
