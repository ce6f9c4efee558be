/**
 * StateChanges: the wake-up channel of a location ("key X has a new state"), a hint
 * that lets a reader in another process look at Consensus now instead of at its
 * next poll.
 *
 * Contract, shared by every backend:
 * - A hint never carries state and is never needed for correctness. Watchers must
 *   treat every callback as "go and read Consensus": a hint may be lost, duplicated,
 *   late, reordered, or name a seqno the reader already has. Whoever relies on the
 *   channel therefore keeps a bounded fallback poll (persist: `listenPoll`).
 * - `publish(key, seqno)` says that `key` reached `seqno`. It never throws and never
 *   waits: a channel that is down drops the hint. Watchers in this process hear it at
 *   once (synchronously); other processes hear it when the backend carries it.
 * - `watch(key, onChange)` calls `onChange(seqno)` for hints about `key`, and
 *   `onChange(undefined)` ("anything may have changed, look") whenever the channel
 *   goes down or comes back up, because hints can have been lost meanwhile. It
 *   returns the function that stops the watch (idempotent).
 * - `up` is true while hints from other processes can reach this one; while it is
 *   false, readers should poll at their fast interval.
 * - `close()` releases every socket, connection and timer; later publishes are
 *   dropped and later watches never fire. Idempotent.
 * - Timers and sockets of a channel never keep the process alive on their own.
 *
 * Backends: `mem://` is {@link LocalStateChanges} (one process, always up);
 * `file:` is a Unix socket shared by the processes on the directory
 * (socket-state-changes.ts); Postgres is LISTEN/NOTIFY (postgres-state-changes.ts).
 *
 * Example:
 * ```ts
 * const stop = location.stateChanges.watch(shardId, (seqno) => wakeReaders());
 * location.stateChanges.publish(shardId, 42);   // after a committed compare-and-set
 * stop();
 * ```
 */
import type { SeqNo } from './consensus.js';

/**
 * What a watcher is called with: the seqno a key reached, or `undefined` for "anything may have
 * changed, look".
 *
 * Example:
 * ```ts
 * const onChange: StateChangeCallback = (seqno) => void reader.wake(seqno);
 * ```
 */
export type StateChangeCallback = (seqno: SeqNo | undefined) => void;

/**
 * The wake-up channel of a location: hints that a key has a new state, never needed for correctness.
 *
 * Contract: a hint carries no state and may be lost, duplicated, late or reordered, so
 * a watcher treats every callback as "go and read Consensus" and keeps a bounded
 * fallback poll. `publish` never throws or waits; watchers in this process hear it at
 * once. `watch` also reports `undefined` whenever the channel goes down or up. Timers
 * and sockets never keep the process alive. Backends: {@link LocalStateChanges}
 * (`mem://`), {@link SocketStateChanges} (`file:`), {@link PostgresStateChanges}.
 *
 * Example:
 * ```ts
 * const stop = location.stateChanges?.watch(shardId, () => void pollNow());
 * location.stateChanges?.publish(shardId, 42);
 * stop?.();
 * ```
 */
export interface StateChanges {
  /** Says that `key` reached `seqno`; never throws, never waits (a channel that is down drops it). */
  publish(key: string, seqno: SeqNo): void;
  /**
   * Calls `onChange` for hints about `key` (and with `undefined` when the channel goes down or up);
   * returns the stop function.
   */
  watch(key: string, onChange: StateChangeCallback): () => void;
  /** Whether hints from other processes can reach this one right now. */
  readonly up: boolean;
  /** Releases sockets, connections and timers; later publishes are dropped. Idempotent. */
  close(): Promise<void>;
}

/**
 * The in-process half every backend shares: watchers by key, fan-out of hints, and
 * the "look again" broadcast on status changes. A watcher that throws is not allowed
 * to stop the others (its error is reported through `queueMicrotask`, as an
 * EventEmitter listener's would be, rather than swallowed).
 */
export class Watchers {
  private readonly byKey = new Map<string, Set<StateChangeCallback>>();
  private closed = false;

  watch(key: string, onChange: StateChangeCallback): () => void {
    if (this.closed) return () => undefined;
    let set = this.byKey.get(key);
    if (!set) this.byKey.set(key, (set = new Set()));
    // A wrapper, so the same callback watched twice is two watches.
    const entry: StateChangeCallback = (seqno) => onChange(seqno);
    set.add(entry);
    return () => {
      const current = this.byKey.get(key);
      if (!current?.delete(entry)) return;
      if (current.size === 0) this.byKey.delete(key);
    };
  }

  /** Hands a hint about `key` to its watchers. */
  notify(key: string, seqno: SeqNo | undefined): void {
    const set = this.byKey.get(key);
    if (set) for (const cb of [...set]) this.call(cb, seqno);
  }

  /** Tells every watcher to look again (the channel went down or came back). */
  notifyAll(): void {
    for (const set of [...this.byKey.values()]) for (const cb of [...set]) this.call(cb, undefined);
  }

  get size(): number {
    let n = 0;
    for (const set of this.byKey.values()) n += set.size;
    return n;
  }

  close(): void {
    this.closed = true;
    this.byKey.clear();
  }

  private call(cb: StateChangeCallback, seqno: SeqNo | undefined): void {
    try {
      cb(seqno);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}

/**
 * A channel that reaches only this process: the `mem://` backend (whose stores live
 * in one process anyway), always up.
 *
 *
 * Example:
 * ```ts
 * const changes = new LocalStateChanges();
 * changes.watch('s1', (seqno) => console.log(seqno));
 * changes.publish('s1', 3);   // logs 3 at once
 * ```
 */
export class LocalStateChanges implements StateChanges {
  private readonly watchers = new Watchers();
  private closed = false;

  get up(): boolean {
    return !this.closed;
  }

  publish(key: string, seqno: SeqNo): void {
    if (!this.closed) this.watchers.notify(key, seqno);
  }

  watch(key: string, onChange: StateChangeCallback): () => void {
    return this.watchers.watch(key, onChange);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchers.close();
  }
}

/** Parses `"<seqno> <key>"`, the wire form of a hint on every cross-process channel; undefined if malformed. */
export function parseHint(line: string): { key: string; seqno: SeqNo } | undefined {
  const space = line.indexOf(' ');
  if (space <= 0) return undefined;
  const seqno = Number(line.slice(0, space));
  if (!Number.isSafeInteger(seqno) || seqno < 0) return undefined;
  return { key: line.slice(space + 1), seqno };
}

/** The wire form of a hint (see {@link parseHint}): the seqno first, so the key may hold any character but a newline. */
export function formatHint(key: string, seqno: SeqNo): string {
  return `${seqno} ${key}`;
}
