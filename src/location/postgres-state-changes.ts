/**
 * PostgresStateChanges: the wake-up channel of a Postgres location, LISTEN/NOTIFY on
 * one dedicated connection per location.
 *
 * How it works:
 * - The hint is sent by the compare-and-set itself: PostgresConsensus's CaS statement
 *   ends in `pg_notify('txnwal_state_changes', '<seqno> <key>')`
 *   ({@link STATE_CHANGES_CHANNEL}). NOTIFY is transactional, so the hint goes out
 *   exactly when the new version commits, never for a CaS that did not, and costs no
 *   extra round trip (bench/fresh.ts measures what it costs the write path).
 *   `publish` therefore only tells this process's watchers; the server tells everyone
 *   else (this process too: the echo is a harmless duplicate).
 * - This channel holds one connection outside the consensus pool that has run
 *   `LISTEN txnwal_state_changes`; each notification is handed to the watchers of its
 *   key. Notifications are per database, so locations on different databases of one
 *   server do not hear each other.
 * - Faults: when the connection drops (pg_terminate_backend, a server restart, a
 *   network fault) or cannot be opened, the channel is down: watchers are told to look
 *   again, readers poll, and it reconnects with backoff (50 ms doubling to 2 s). Once
 *   it is back, watchers are told to look again (notifications sent meanwhile are
 *   lost). A connection error never escapes: every pg client here has an 'error'
 *   listener for its whole life (see postgres-pool.ts for why that matters).
 * - Lifetime: the connection's socket and the retry timer are `unref`'d; `close()`
 *   ends the connection. An idle channel costs nothing but TCP keep-alives.
 * - The URL (and its password) stays in a private field; nothing here prints it.
 *
 * Example:
 * ```ts
 * const changes = await PostgresStateChanges.open('postgres://u@db/txnwal');
 * changes.watch('s1', (seqno) => console.log('s1 moved to', seqno));
 * // another process: a committed compareAndSet on 's1' → the callback runs with its seqno
 * await changes.close();
 * ```
 */
import type pg from 'pg';
import { pgModule } from './lazy-modules.js';
import type { SeqNo } from './consensus.js';
import { Rejoin } from './rejoin.js';
import { Watchers, parseHint, type StateChangeCallback, type StateChanges } from './state-changes.js';

/** The NOTIFY channel PostgresConsensus announces committed versions on. */
export const STATE_CHANGES_CHANNEL = 'txnwal_state_changes';

export interface PostgresStateChangesOptions {
  /** How long to wait for the connection before counting an attempt failed. Default 5000. */
  connectTimeoutMs?: number;
}

const RETRY = { initialMs: 50, clampMs: 2000 };

/** The socket under a pg client (pg has no public handle for it), to unref it. */
function socketOf(client: pg.Client): { unref?(): void; ref?(): void } | undefined {
  return (client as unknown as { connection?: { stream?: { unref?(): void; ref?(): void } } }).connection?.stream;
}

/**
 * The wake-up channel of a Postgres location: LISTEN on one dedicated connection, reconnecting with
 * backoff while the server is away.
 *
 * Example:
 * ```ts
 * const changes = await PostgresStateChanges.open('postgres://u@db/txnwal');
 * const stop = changes.watch('s1', (seqno) => console.log('s1 moved to', seqno));
 * stop();
 * await changes.close();
 * ```
 */
export class PostgresStateChanges implements StateChanges {
  readonly #url: string;
  readonly #connectTimeoutMs: number;
  readonly #watchers = new Watchers();
  #client: pg.Client | undefined;
  #closed = false;
  // Notifications sent while down are lost: once listening again, every watcher looks again.
  readonly #rejoin = new Rejoin(() => this.#attempt(), () => this.#watchers.notifyAll(), RETRY);

  private constructor(url: string, options: PostgresStateChangesOptions) {
    this.#url = url;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  }

  /** Opens the channel and makes one attempt to LISTEN; resolves either way (down and retrying if it failed). */
  static async open(url: string, options: PostgresStateChangesOptions = {}): Promise<PostgresStateChanges> {
    const changes = new PostgresStateChanges(url, options);
    await changes.#rejoin.now();
    return changes;
  }

  get up(): boolean {
    return this.#client !== undefined;
  }

  publish(key: string, seqno: SeqNo): void {
    if (!this.#closed) this.#watchers.notify(key, seqno);
  }

  watch(key: string, onChange: StateChangeCallback): () => void {
    return this.#watchers.watch(key, onChange);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#rejoin.stop();
    this.#watchers.close();
    const client = this.#client;
    this.#client = undefined;
    // Held again while it ends: an unref'd socket lets the process run out of work
    // before the end arrives, and a top-level `await close()` would never finish.
    if (client) socketOf(client)?.ref?.();
    await client?.end().catch(() => undefined);
  }

  toString(): string {
    return 'PostgresStateChanges';
  }

  async #attempt(): Promise<boolean> {
    if (this.#closed) return false;
    const client = new (pgModule().Client)({
      connectionString: this.#url,
      connectionTimeoutMillis: this.#connectTimeoutMs,
      keepAlive: true,
    });
    // For the client's whole life, before connect(): see the module comment.
    client.on('error', () => this.#lost(client));
    client.on('end', () => this.#lost(client));
    client.on('notification', (msg) => {
      if (msg.channel !== STATE_CHANGES_CHANNEL || this.#client !== client) return;
      const hint = parseHint(msg.payload ?? '');
      if (hint) this.#watchers.notify(hint.key, hint.seqno);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${STATE_CHANGES_CHANNEL}`);
    } catch {
      await client.end().catch(() => undefined);
      return false;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return false;
    }
    socketOf(client)?.unref?.();
    this.#client = client;
    return true;
  }

  /** The listening connection failed: report down, look again, reconnect. */
  #lost(client: pg.Client): void {
    if (this.#client !== client || this.#closed) return;
    this.#client = undefined;
    void client.end().catch(() => undefined);
    this.#watchers.notifyAll();
    void this.#rejoin.now();
  }
}
