/**
 * Set-up for group commit tests: a client (optionally on a gated location), a txns
 * handle, a LogicalClock with a controllable clock, a GroupCommitter and registered
 * collections, plus small helpers to hold a collection's lock and read collections back.
 */
import type { CaSResult, Consensus, SeqNo, VersionedData } from '../../src/location/consensus.js';
import { DeterminateError } from '../../src/location/errors.js';
import { openLocation, type Location } from '../../src/location/location.js';
import { LogicalClock } from '../../src/coord/logical-clock.js';
import { GroupCommitter, type GroupCommitOptions } from '../../src/coord/group-commit.js';
import type { ReadThenWriteResult } from '../../src/coord/read-then-write.js';
import type { WritesByCollection } from '../../src/coord/collection-writes.js';
import { PersistClient } from '../../src/persist/client.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import { sleep } from '../../src/persist/wait.js';
import type { TxnsHandle } from '../../src/txn/txns-handle.js';
import { CommitLog, openTxns, outputRows, writer, type Row } from '../support/txn.js';

/** A wall clock tests move by hand. */
export class FakeClock {
  constructor(public ms: number) {}
  readonly now = (): number => this.ms;
}

/**
 * A Consensus whose compare-and-set on chosen keys (shard ids) can be held back
 * (`gate`) or refused (`refuse`). Reads are never affected.
 */
export class ControlledConsensus implements Consensus {
  private readonly gates = new Map<string, { opened: Promise<void>; open: () => void }>();
  readonly refused = new Set<string>();
  constructor(private readonly inner: Consensus) {}

  /** Holds every CaS on `key` until the returned function is called. */
  gate(key: string): () => void {
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    this.gates.set(key, { opened, open });
    return () => {
      this.gates.delete(key);
      open();
    };
  }

  head(key: string) {
    return this.inner.head(key);
  }
  async compareAndSet(key: string, expected: SeqNo | undefined, next: VersionedData): Promise<CaSResult> {
    const gate = this.gates.get(key);
    if (gate) await gate.opened;
    if (this.refused.has(key)) throw new DeterminateError(`test refuses compare-and-set on ${key}`);
    return this.inner.compareAndSet(key, expected, next);
  }
  scan(key: string, from: SeqNo, limit: number) {
    return this.inner.scan(key, from, limit);
  }
  truncate(key: string, seqno: SeqNo) {
    return this.inner.truncate(key, seqno);
  }
  listKeys() {
    return this.inner.listKeys();
  }
  close() {
    return this.inner.close();
  }
}

export interface Env {
  client: PersistClient;
  txns: TxnsHandle<string, null>;
  oracle: LogicalClock;
  gc: GroupCommitter<string, null>;
  ids: ShardId[];
  /** The timestamp the collections were registered at. */
  registerTs: number;
  log: CommitLog;
  consensus: ControlledConsensus;
  /** The underlying location, without the test's consensus controls. */
  location: Location;
  close(): Promise<void>;
}

export interface EnvOptions {
  collections?: number;
  committer?: GroupCommitOptions;
  /** The clock both the oracle and the committer follow (default: the real wall clock). */
  now?: () => number;
  /** The oracle's first timestamp is above this. */
  initialTs?: number;
  /** Register the collections before opening the committer (needed in read-only mode). */
  registerFirst?: boolean;
}

const FAST_CONFIG = {
  listenPoll: { initialMs: 1, multiplier: 2, clampMs: 10 },
  storageRetry: { attempts: 2, initialMs: 1, multiplier: 1, clampMs: 1 },
};

export async function setup(opts: EnvOptions = {}): Promise<Env> {
  const location: Location = await openLocation('mem://');
  const consensus = new ControlledConsensus(location.consensus);
  const client = await PersistClient.open({ ...location, consensus, close: () => location.close() }, { config: FAST_CONFIG });
  const txns = await openTxns(client);
  const oracle = new LogicalClock({ now: opts.now, initialTs: opts.initialTs });
  const ids = Array.from({ length: opts.collections ?? 2 }, () => newShardId());
  const writers = await Promise.all(ids.map((id) => writer(client, id)));
  let registerTs: number | undefined;
  if (opts.registerFirst) {
    registerTs = (await oracle.writeTs()).timestamp;
    const res = await txns.register(registerTs, writers);
    if (!res.ok) throw new Error(`register at ${registerTs}: taken, current ${res.current}`);
    await oracle.applyWrite(registerTs);
  }
  const gc = await GroupCommitter.open(txns, oracle, { now: opts.now, ...opts.committer });
  registerTs ??= (await gc.register(writers)).registerTs;
  const log = new CommitLog(client, txns.txnsId);
  return {
    client,
    txns,
    oracle,
    gc,
    ids,
    registerTs,
    log,
    consensus,
    location,
    async close() {
      await gc.close();
      await txns.close();
      await oracle.close();
      await client.close();
      await location.close();
    },
  };
}

/**
 * Starts a read-then-write on `id` that holds its lock until `release()` is called and
 * then writes `writes` (nothing if omitted); resolves once it has had time to take the lock.
 */
export async function holdLock(
  env: Env,
  id: ShardId,
  writes?: WritesByCollection<string, null>,
): Promise<{ release(): void; result: Promise<ReadThenWriteResult> }> {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const result = env.gc.readThenWrite([id], async () => {
    await gate;
    return writes;
  });
  await sleep(20);
  return { release, result };
}

/** Rows of one key each: `[key, null, diff]`. */
export function rowsOf(...keys: string[]): [string, null, number][] {
  return keys.map((k) => [k, null, 1]);
}

/**
 * Checks every update the log holds for each collection appears exactly so, at its
 * time, up to `until`. Reading moves a shard's since along (a subscription's reader
 * downgrades it as it goes), so read each collection this way once per test.
 */
export async function assertLogged(env: Env, until: number): Promise<void> {
  for (const id of env.ids) await env.log.assertSubscribe(id, env.registerTs, until);
}

/**
 * The physical upper of a data shard, read from consensus by a separate client (so
 * neither a cache nor an operation stuck in this env's client is in the way).
 */
export async function physicalUpper(env: Env, id: ShardId): Promise<number> {
  const client = await PersistClient.open(env.location);
  try {
    const w = await writer(client, id);
    return await w.fetchRecentUpper();
  } finally {
    await client.close();
  }
}

/** Rows of `id` from `env.registerTs` up to `until`, read through a txn-aware subscription (times kept). */
export async function readRows(env: Env, id: ShardId, until: number): Promise<Row[]> {
  const sub = await env.log.subscribe(id, env.registerTs, until);
  try {
    return outputRows(sub).filter(([, t]) => t < until);
  } finally {
    await sub.close();
  }
}
