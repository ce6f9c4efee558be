/**
 * ReadWriteTransaction: read a few keys, decide, write, and have what was read
 * still hold at commit — across collections and across processes — at one of
 * three isolation levels (spec §2.13; seeds 002, 003, 004).
 *
 * How it works:
 * - **Reads** come from the process's shared {@link Arrangement} of each
 *   collection, all at one **read timestamp** (`readTs`), overlaid with the
 *   transaction's own writes. Nothing uncommitted is ever read (no dirty reads),
 *   and every read sees the same instant (no read skew).
 * - **Writes** (`set`, `delete`, `add`) are buffered. Writing a key locks it
 *   ({@link KeyLocks}: per process, wait-die) and validates it, as `getForUpdate`
 *   does for a key it reads: if another transaction committed a change of the key
 *   after `readTs`, it fails with {@link ValidationFailed}, after which
 *   `refreshReadTs()` moves the read timestamp up to read again (seed 004).
 * - **Commit** chooses the commit timestamp last, after every lock is held and
 *   every write buffered. Then, against the txns upper `u` it sees, it waits until
 *   the arrangements are complete below `u`, checks that no key it writes (and,
 *   under `'serializable'` and `'strict-serializable'`, no key or range it read)
 *   changed in `(readTs, u)`, and commits at `ts >= u` only if the txns upper is
 *   still exactly `u` (`commitAt(…, { expectUpper })`). If another process
 *   committed first, the upper moved: it validates again against the commits that
 *   won, up to the new upper, and either commits there or fails with
 *   ValidationFailed. So a commit never lands over a conflicting one, nothing
 *   partial is ever visible (one txn-wal commit), and nothing acknowledged is lost.
 *
 * Isolation levels:
 * - `'snapshot'`: write–write conflicts abort (first committer wins); reads are
 *   not validated, so write skew is allowed.
 * - `'serializable'`: the read set is validated too: nothing read was written
 *   between the read and the commit timestamps, so the transaction is equivalent
 *   to one that ran entirely at its commit time.
 * - `'strict-serializable'`: serializable, and the read timestamp is at least the
 *   oracle's `readTs()`, so real-time order holds also for writes the oracle saw
 *   complete that took another path (group commit, another txns shard user).
 *
 * Every level reads at the latest complete time of the txns shard (one Consensus
 * read at begin), so a transaction always sees what was acknowledged before it
 * began. Commit timestamps come from the host's oracle when it has one
 * (`writeTs()`, told `applyWrite` once landed, so the oracle's readers see the
 * commit), else they are the next free txns time.
 *
 * Locks are per process (say so to users): two processes never wait for each
 * other; they find out at validation, and the later committer fails.
 *
 * Collections in transactions are maps: `set(key, val)` leaves exactly one row
 * `(key, val)` with diff +1; `get` reads such a row. `add(key, val, diff)` writes
 * raw diffs for multiset collections, and `rows(key)` reads them.
 *
 * Worked example (seed 004), one account at 23:
 * ```ts
 * const tx = await ReadWriteTransaction.begin(host, { isolation: 'serializable' });  // readTs 23
 * // … another transaction commits alice at 24 …
 * await tx.getForUpdate(accounts, 'alice');   // ValidationFailed: changed at 24, after 23
 * await tx.refreshReadTs();                    // readTs 25 (the txns upper is 26)
 * const bal = (await tx.getForUpdate(accounts, 'alice')) ?? 0;   // locked and valid
 * await tx.set(accounts, 'alice', bal - 10);
 * await tx.commit();                           // commits at 26
 * ```
 */
import { InvalidUsage } from '../persist/errors.js';
import type { Timestamp } from '../persist/time.js';
import { valueIdentity } from '../operators/row-identity.js';
import type { TimestampOracle } from '../coord/timestamp-oracle.js';
import { commitAtNextTimestamp, nextFreeTxnsTime, oracleTimestamps, type CommitAttempt } from '../coord/timestamp-source.js';
import { ReadOutsideArrangement, type Arrangement } from './arrangement.js';
import type { KeyLocks, LockHolder } from './key-locks.js';
import { TransactionClosed, ValidationFailed, describeKey } from './transaction-errors.js';

/**
 * How much of what a read-write transaction read must still hold at its commit: `'snapshot'`
 * (write–write conflicts only), `'serializable'` (reads too; the default), `'strict-serializable'`
 * (serializable, reading at least at the oracle's read time).
 *
 * Example:
 * ```ts
 * await db.transact(fn, { isolation: 'snapshot' });
 * ```
 */
export type IsolationLevel = 'snapshot' | 'serializable' | 'strict-serializable';

export const ISOLATION_LEVELS: readonly IsolationLevel[] = ['snapshot', 'serializable', 'strict-serializable'];

/**
 * A collection as transactions see it: a name and the process's shared arrangement of it.
 *
 * Example:
 * ```ts
 * const accounts: TransactionCollection<string, number> = host.collection(accountsId);
 * await tx.get(accounts, 'alice');
 * ```
 */
export interface TransactionCollection<K, V> {
  /** The name in locks and error messages. */
  readonly name: string;
  /** The arrangement, following the collection; readable at every pinned read timestamp. */
  arrangement(): Promise<Arrangement<K, V>>;
}

/**
 * What a transaction's methods take as a collection: the host's own, or what its
 * `resolve` accepts (a database takes a collection's name or its Collection handle).
 *
 * Example:
 * ```ts
 * await tx.get('accounts', 'alice');        // by name (a database's transactions)
 * await tx.get(accountsHandle, 'alice');    // by Collection handle
 * ```
 */
export type TransactionCollectionRef<K, V> =
  | TransactionCollection<K, V>
  | {
      /** The collection's name. */
      readonly name: string;
      /** How its stored keys and values decode (a Collection handle's codecs). */
      readonly codecs: {
        /** The key codec. */
        key: {
          /** Decodes a stored key. */
          decode(b: Uint8Array): K;
        };
        /** The value codec. */
        val: {
          /** Decodes a stored value. */
          decode(b: Uint8Array): V;
        };
      };
    }
  | string;

/**
 * What one collection's rows at commit look like: `[key, val, diff]`.
 *
 * Example:
 * ```ts
 * for (const [collection, rows] of commitRows) console.log(collection.name, rows.length);
 * ```
 */
export type CommitRows = Map<TransactionCollection<unknown, unknown>, [unknown, unknown, number][]>;

/**
 * What a transaction needs of its database (the front door implements it).
 *
 * Implement it to run read-write transactions over something other than a TxnsHandle; {@link
 * TxnsTransactionHost} is the built-in one.
 *
 * Example:
 * ```ts
 * const host: TransactionHost = new TxnsTransactionHost(txns, { oracle });
 * const tx = await ReadWriteTransaction.begin(host);
 * ```
 */
export interface TransactionHost {
  /** The process's key locks. */
  readonly locks: KeyLocks;
  /** The timestamp oracle; needed for `'strict-serializable'`. */
  readonly oracle?: TimestampOracle | undefined;
  /** The txns upper as Consensus has it now: every commit below it has landed, in any process. */
  recentUpper(): Promise<Timestamp>;
  /** The latest txns upper this process knows without asking Consensus (may be behind; never ahead). */
  knownUpper(): Timestamp;
  /** Makes every commit below `upper` readable in the data shards (applies what another process left unapplied). */
  applyBelow(upper: Timestamp): Promise<void>;
  /** Commits `rows` atomically at `ts`, only if the txns upper is exactly `expectUpper`; once landed, applies them. */
  commitExact(rows: CommitRows, ts: Timestamp, expectUpper: Timestamp): Promise<CommitAttempt<{ ok: true }>>;
  /** Makes every time up to `ts` complete: commits nothing at `ts` unless the txns upper is already past it. */
  sealThrough(ts: Timestamp): Promise<void>;
  /** Keeps the arrangements readable at `ts` until the returned function is called. */
  pinReadTs(ts: Timestamp): () => void;
  /** The host's collection for a reference (a name, a handle); without it, only the host's own collections are accepted. */
  resolve?(ref: TransactionCollectionRef<unknown, unknown>): TransactionCollection<unknown, unknown>;
}

/**
 * Options of `db.transaction()` and `ReadWriteTransaction.begin`.
 *
 * Example:
 * ```ts
 * const tx = await db.transaction({ isolation: 'strict-serializable' });
 * ```
 */
export interface TransactionOptions {
  /** Default `'serializable'`. */
  isolation?: IsolationLevel;
  /** @internal Keeps a retried transaction's lock age (wait-die), so it eventually wins. */
  lockAge?: number;
}

/** What the transaction will write to one key, on top of its rows at the read timestamp. */
interface KeyWrite<K, V> {
  key: K;
  /** `set` replaces every row of the key; `delete` removes them; `keep` leaves them. */
  base: { kind: 'keep' } | { kind: 'delete' } | { kind: 'set'; val: V };
  /** Raw diffs added after the base (by `add`). */
  adds: [V, number][];
}

interface CollectionState {
  collection: TransactionCollection<unknown, unknown>;
  writes: Map<string, KeyWrite<unknown, unknown>>;
  /** Keys read (by get / rows / getForUpdate), by identity. */
  reads: Map<string, unknown>;
  /** Key ranges scanned. */
  ranges: { from?: unknown; to?: unknown }[];
}

/**
 * Read a few keys, decide, write, and have what was read still hold at commit, across collections
 * and processes, at one of three isolation levels. Begin one with `db.transaction()` (or run one to
 * a commit with `db.transact`).
 *
 * Reads come from one read timestamp plus the transaction's own writes; writing a key
 * (or `getForUpdate`) locks it in this process and validates it; `commit()` picks the
 * commit timestamp last and validates against every commit before it, in any process.
 *
 * Example:
 * ```ts
 * const tx = await db.transaction({ isolation: 'serializable' });
 * const balance = (await tx.getForUpdate('accounts', 'alice')) ?? 0;
 * await tx.set('accounts', 'alice', balance + 10);
 * const { commitTs } = await tx.commit();
 * ```
 */
export class ReadWriteTransaction {
  private state: 'open' | 'committed' | 'aborted' = 'open';
  private readonly collections = new Map<TransactionCollection<unknown, unknown>, CollectionState>();
  private unpin: () => void;
  private readonly holder: LockHolder;
  /** A lock was taken (and validated against a fresh txns upper) already. */
  private lockedOnce = false;

  private constructor(
    private readonly host: TransactionHost,
    /** The transaction's isolation level. */
    readonly isolation: IsolationLevel,
    private currentReadTs: Timestamp,
    lockAge: number | undefined,
  ) {
    this.unpin = host.pinReadTs(currentReadTs);
    this.holder = host.locks.holder(lockAge);
  }

  /** Begins a transaction at a read timestamp: the oracle's for strict serializable, else the latest complete time. */
  static async begin(host: TransactionHost, opts: TransactionOptions = {}): Promise<ReadWriteTransaction> {
    const isolation = opts.isolation ?? 'serializable';
    if (!ISOLATION_LEVELS.includes(isolation)) {
      throw new InvalidUsage(`unknown isolation level ${JSON.stringify(isolation)}; use one of ${ISOLATION_LEVELS.map((l) => `'${l}'`).join(', ')}`);
    }
    if (isolation === 'strict-serializable' && !host.oracle) {
      throw new InvalidUsage("'strict-serializable' needs a timestamp oracle; open the database with one, or use 'serializable'");
    }
    return new ReadWriteTransaction(host, isolation, await readTsFor(host, isolation), opts.lockAge);
  }

  /** Every read sees the collections as of this time (plus this transaction's own writes). */
  get readTs(): Timestamp {
    return this.currentReadTs;
  }

  /** @internal The lock age, kept when `db.transact` runs the transaction again. */
  get lockAge(): number {
    return this.holder.age;
  }

  /** Whether the transaction is still open. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /**
   * The value of `key`: the one row `(key, val)` with diff +1, or `undefined` if the
   * key has no rows. A key with other rows (a multiset) is an error; read it with `rows`.
   */
  async get<K, V>(ref: TransactionCollectionRef<K, V>, key: K): Promise<V | undefined> {
    const collection = this.collectionOf(ref);
    return singleValue(collection, key, await this.rows(collection, key));
  }

  /** Every `[val, diff]` row of `key` at the read timestamp, with this transaction's writes. */
  async rows<K, V>(ref: TransactionCollectionRef<K, V>, key: K): Promise<[V, number][]> {
    this.checkOpen('read');
    const collection = this.collectionOf(ref);
    const state = this.stateOf(collection);
    const id = valueIdentity(key);
    state.reads.set(id, key);
    const arr = await this.readable(collection);
    return withWrites(arr.get(key, this.currentReadTs), state.writes.get(id) as KeyWrite<K, V> | undefined);
  }

  /** Every row with `from <= key < to`, in key order, at the read timestamp, with this transaction's writes. */
  async scan<K, V>(ref: TransactionCollectionRef<K, V>, range: { from?: K; to?: K } = {}): Promise<[K, V, number][]> {
    this.checkOpen('scan');
    const collection = this.collectionOf(ref);
    const state = this.stateOf(collection);
    state.ranges.push(range);
    const arr = await this.readable(collection);
    const out = new Map<string, [K, [V, number][]]>();
    for (const [k, v, d] of arr.scan(range, this.currentReadTs)) {
      const id = valueIdentity(k);
      let e = out.get(id);
      if (!e) out.set(id, (e = [k, []]));
      e[1].push([v, d]);
    }
    for (const [id, w] of state.writes) {
      const k = w.key as K;
      if (!out.has(id) && inRange(arr, k, range)) out.set(id, [k, []]);
    }
    const keyed = [...out.entries()].map(([id, [k, rows]]) => [k, withWrites(rows, state.writes.get(id) as KeyWrite<K, V> | undefined)] as const);
    const rows: [K, V, number][] = [];
    for (const [k, rs] of keyed) for (const [v, d] of rs) rows.push([k, v, d]);
    return sortByKey(arr, rows);
  }

  /**
   * Locks `key` and checks that nobody changed it after the read timestamp; then
   * reads it as `get` does. Fails with {@link ValidationFailed} (the key stays
   * locked; `refreshReadTs()` and read again) or {@link LockConflict} (abort and retry).
   */
  async getForUpdate<K, V>(ref: TransactionCollectionRef<K, V>, key: K): Promise<V | undefined> {
    const collection = this.collectionOf(ref);
    await this.lockAndValidate(collection, key);
    return this.get(collection, key);
  }

  /** Writes `key = val`: afterwards the key has exactly the row `(key, val)` with diff +1. Locks and validates the key. */
  async set<K, V>(ref: TransactionCollectionRef<K, V>, key: K, val: V): Promise<void> {
    const collection = this.collectionOf(ref);
    await this.lockAndValidate(collection, key);
    const w = this.writeOf(collection, key);
    w.base = { kind: 'set', val };
    w.adds = [];
  }

  /** Removes every row of `key`. Locks and validates the key. */
  async delete<K, V>(ref: TransactionCollectionRef<K, V>, key: K): Promise<void> {
    const collection = this.collectionOf(ref);
    await this.lockAndValidate(collection, key);
    const w = this.writeOf(collection, key);
    w.base = { kind: 'delete' };
    w.adds = [];
  }

  /** Adds `diff` to the row `(key, val)` (multiset collections). Locks and validates the key. */
  async add<K, V>(ref: TransactionCollectionRef<K, V>, key: K, val: V, diff: number): Promise<void> {
    if (!Number.isSafeInteger(diff)) throw new InvalidUsage(`add(): diff must be a safe integer, got ${String(diff)}`);
    const collection = this.collectionOf(ref);
    await this.lockAndValidate(collection, key);
    if (diff !== 0) this.writeOf(collection, key).adds.push([val, diff]);
  }

  /**
   * Moves the read timestamp up (to `ts`, or to the latest complete time — the
   * oracle's read timestamp under strict serializable), keeping locks and writes.
   * Read again afterwards: earlier reads were at the old time and are forgotten
   * for validation.
   */
  async refreshReadTs(ts?: Timestamp): Promise<Timestamp> {
    this.checkOpen('refresh the read timestamp of');
    const next = ts ?? (await readTsFor(this.host, this.isolation));
    if (!Number.isSafeInteger(next) || next < this.currentReadTs) {
      throw new InvalidUsage(`refreshReadTs(${String(next)}): the read timestamp only moves up, and is ${this.currentReadTs}`);
    }
    const unpinOld = this.unpin;
    this.unpin = this.host.pinReadTs(next);
    unpinOld();
    this.currentReadTs = next;
    for (const s of this.collections.values()) {
      s.reads.clear();
      s.ranges = [];
    }
    return next;
  }

  /**
   * Commits every write atomically and returns the commit timestamp (see the
   * module docs). A transaction that wrote nothing commits at its read timestamp
   * and writes nothing. On ValidationFailed nothing was written and the
   * transaction is aborted; on a storage error the error says whether it may have
   * landed.
   */
  async commit(): Promise<{ commitTs: Timestamp }> {
    this.checkOpen('commit');
    try {
      const writing = [...this.collections.values()].filter((s) => s.writes.size > 0);
      if (writing.length === 0) {
        this.finish('committed');
        return { commitTs: this.currentReadTs };
      }
      // With an oracle every commit takes its timestamp and tells it (so the oracle's
      // readers see the commit); without one, the next free txns time.
      const source = this.host.oracle ? oracleTimestamps(this.host.oracle) : nextFreeTxnsTime(this.host.knownUpper());
      const { ts } = await commitAtNextTimestamp(source, (ts) => this.commitAttempt(ts));
      this.finish('committed');
      return { commitTs: ts };
    } catch (err) {
      this.finish('aborted');
      throw err;
    }
  }

  /** Drops every write and releases the locks. Idempotent; a no-op after commit. */
  abort(): void {
    if (this.state === 'open') this.finish('aborted');
  }

  // ---- internals ----

  private collectionOf<K, V>(ref: TransactionCollectionRef<K, V>): TransactionCollection<K, V> {
    if (typeof ref === 'object' && ref !== null && typeof (ref as TransactionCollection<K, V>).arrangement === 'function') return ref as TransactionCollection<K, V>;
    if (this.host.resolve) return this.host.resolve(ref as TransactionCollectionRef<unknown, unknown>) as TransactionCollection<K, V>;
    throw new InvalidUsage(`not a collection of this transaction's host: ${describeKey(ref)}`);
  }

  private async commitAttempt(ts: Timestamp): Promise<CommitAttempt<{ ok: true }>> {
    const involved = [...this.collections.values()].filter((s) => s.writes.size > 0 || (this.validatesReads && (s.reads.size > 0 || s.ranges.length > 0)));
    let upper = await this.host.recentUpper();
    if (ts < upper) return { ok: false, current: upper };
    // Complete every arrangement below the upper; one that knows a later upper moves the bar.
    await this.host.applyBelow(upper);
    const arrangements = new Map<CollectionState, Arrangement<unknown, unknown>>();
    for (const s of involved) {
      const arr = await s.collection.arrangement();
      await arr.waitForFrontier(upper - 1);
      arrangements.set(s, arr);
      upper = Math.max(upper, arr.frontier);
    }
    if (ts < upper) return { ok: false, current: upper };
    for (const arr of arrangements.values()) await arr.waitForFrontier(upper - 1);

    const rows: CommitRows = new Map();
    for (const [s, arr] of arrangements) {
      this.validate(s, arr, upper);
      const out: [unknown, unknown, number][] = [];
      for (const w of s.writes.values()) out.push(...rowsToWrite(arr.get(w.key, this.currentReadTs), w));
      if (out.length > 0) rows.set(s.collection, out);
    }
    return this.host.commitExact(rows, ts, upper);
  }

  /** Throws ValidationFailed if a key written (or, for serializable levels, read) changed in (readTs, upper). */
  private validate(s: CollectionState, arr: Arrangement<unknown, unknown>, upper: Timestamp): void {
    const name = s.collection.name;
    for (const w of s.writes.values()) {
      const t = arr.lastChange(w.key, this.currentReadTs, upper);
      if (t !== undefined) throw new ValidationFailed(name, w.key, t, this.currentReadTs, 'write');
    }
    if (!this.validatesReads) return;
    for (const key of s.reads.values()) {
      const t = arr.lastChange(key, this.currentReadTs, upper);
      if (t !== undefined) throw new ValidationFailed(name, key, t, this.currentReadTs, 'read');
    }
    for (const range of s.ranges) {
      // Every key that has rows or history in the range, including ones inserted after readTs (phantoms).
      for (const key of arr.keysIn(range)) {
        const t = arr.lastChange(key, this.currentReadTs, upper);
        if (t !== undefined) throw new ValidationFailed(name, key, t, this.currentReadTs, 'read');
      }
    }
  }

  private get validatesReads(): boolean {
    return this.isolation !== 'snapshot';
  }

  private async lockAndValidate<K, V>(collection: TransactionCollection<K, V>, key: K): Promise<void> {
    this.checkOpen('write or lock a key of');
    const c = collection as TransactionCollection<unknown, unknown>;
    this.stateOf(c);
    const waited = await this.host.locks.acquire(this.holder, collection.name, key);
    const arr = await this.readable(collection);
    // At the transaction's first lock, and after waiting for one, validate against
    // every commit that has landed so far (one Consensus read), not only what the
    // arrangement has seen: a conflict found now saves the work until commit. Other
    // locks validate against the arrangement as it is; commit checks everything anyway.
    if (waited || !this.lockedOnce) {
      this.lockedOnce = true;
      const upper = await this.host.recentUpper();
      await this.host.applyBelow(upper);
      await arr.waitForFrontier(upper - 1);
    }
    const t = arr.lastChange(key, this.currentReadTs, arr.frontier);
    if (t !== undefined) throw new ValidationFailed(collection.name, key, t, this.currentReadTs, 'write');
  }

  /**
   * The collection's arrangement, once the read timestamp is readable in it. An
   * arrangement that starts above the read timestamp (its shard compacted past it
   * before the process first read the collection) moves the read timestamp up if
   * nothing was read or written yet; otherwise the transaction cannot read it at
   * one time with the rest: ReadOutsideArrangement, which `transact` retries.
   */
  private async readable<K, V>(collection: TransactionCollection<K, V>): Promise<Arrangement<K, V>> {
    const arr = await collection.arrangement();
    if (this.currentReadTs < arr.since) {
      if (!this.untouched()) throw new ReadOutsideArrangement(this.currentReadTs, arr.since, arr.frontier);
      await this.refreshReadTs(arr.since);
    }
    // A process that committed at or below the read timestamp may have died before
    // applying it: apply it, or the read would wait for it forever.
    if (arr.frontier <= this.currentReadTs) await this.host.applyBelow(this.currentReadTs + 1);
    await arr.waitForFrontier(this.currentReadTs);
    return arr;
  }

  /** Nothing read or written yet (locks may be held). */
  private untouched(): boolean {
    for (const s of this.collections.values()) if (s.writes.size > 0 || s.reads.size > 0 || s.ranges.length > 0) return false;
    return true;
  }

  private stateOf<K, V>(collection: TransactionCollection<K, V>): CollectionState {
    const c = collection as TransactionCollection<unknown, unknown>;
    let s = this.collections.get(c);
    if (!s) this.collections.set(c, (s = { collection: c, writes: new Map(), reads: new Map(), ranges: [] }));
    return s;
  }

  private writeOf<K, V>(collection: TransactionCollection<K, V>, key: K): KeyWrite<unknown, unknown> {
    const s = this.stateOf(collection);
    const id = valueIdentity(key);
    let w = s.writes.get(id);
    if (!w) s.writes.set(id, (w = { key, base: { kind: 'keep' }, adds: [] }));
    return w;
  }

  private checkOpen(op: string): void {
    if (this.state !== 'open') throw new TransactionClosed(`${op} the transaction`, this.state);
  }

  private finish(how: 'committed' | 'aborted'): void {
    this.state = how;
    this.host.locks.release(this.holder);
    this.unpin();
  }
}

/**
 * The latest complete time: every commit that has landed, in any process (one
 * Consensus read, so a transaction always reads what was acknowledged before it
 * began, at every level). Under strict serializable also at least the oracle's
 * read timestamp, so it reads every write the oracle saw complete, whichever
 * path it took.
 */
async function readTsFor(host: TransactionHost, isolation: IsolationLevel): Promise<Timestamp> {
  const complete = Math.max(0, (await host.recentUpper()) - 1);
  if (isolation !== 'strict-serializable') return complete;
  const oracleTs = await host.oracle!.readTs();
  // The oracle may be ahead of the txns shard (its clock moved, or writes elsewhere
  // completed): seal the times up to it, so reads there do not wait for a commit.
  if (oracleTs > complete) await host.sealThrough(oracleTs);
  return Math.max(complete, oracleTs);
}

/** The rows of a key after this transaction's writes to it. */
function withWrites<V>(rows: [V, number][], w: KeyWrite<unknown, V> | undefined): [V, number][] {
  if (!w) return rows;
  const base: [V, number][] = w.base.kind === 'keep' ? rows : w.base.kind === 'delete' ? [] : [[w.base.val, 1]];
  if (w.adds.length === 0) return base;
  const sums = new Map<string, [V, number]>();
  for (const [v, d] of [...base, ...w.adds]) {
    const id = valueIdentity(v);
    const s = sums.get(id);
    if (s) s[1] += d;
    else sums.set(id, [v, d]);
  }
  return [...sums.values()].filter(([, d]) => d !== 0);
}

/** The updates that turn `current` (the key's rows at the read time) into what the transaction wrote. */
function rowsToWrite(current: [unknown, number][], w: KeyWrite<unknown, unknown>): [unknown, unknown, number][] {
  const out: [unknown, unknown, number][] = [];
  if (w.base.kind !== 'keep') {
    for (const [v, d] of current) out.push([w.key, v, -d]);
    if (w.base.kind === 'set') out.push([w.key, w.base.val, 1]);
  }
  for (const [v, d] of w.adds) out.push([w.key, v, d]);
  return out;
}

function singleValue<K, V>(collection: TransactionCollection<K, V>, key: K, rows: [V, number][]): V | undefined {
  if (rows.length === 0) return undefined;
  if (rows.length === 1 && rows[0]![1] === 1) return rows[0]![0];
  throw new InvalidUsage(
    `get(): key ${describeKey(key)} of collection ${JSON.stringify(collection.name)} has ${rows.length} rows ` +
      `(${rows.map(([, d]) => `diff ${d}`).join(', ')}), not one value; read multiset collections with rows()`,
  );
}

function inRange<K>(arr: Arrangement<K, unknown>, key: K, range: { from?: K; to?: K }): boolean {
  return (range.from === undefined || arr.compareKeys(key, range.from) >= 0) && (range.to === undefined || arr.compareKeys(key, range.to) < 0);
}

function sortByKey<K, V>(arr: Arrangement<K, unknown>, rows: [K, V, number][]): [K, V, number][] {
  return rows.sort((a, b) => arr.compareKeys(a[0], b[0]));
}
