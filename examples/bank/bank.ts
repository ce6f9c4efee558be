/**
 * The bank: accounts spread over several data shards, money moved by atomic
 * transactions, balances maintained incrementally by a reactive pipeline.
 *
 * Model. Each account is a row `(account, null)` in the data shard of its branch;
 * its balance is the row's diff (a Z-set weight), so depositing 10 is the update
 * `['alice', null, ts, +10]` and a transfer of 7 from alice (branch 0) to bob
 * (branch 2) is ONE transaction with two writes:
 * `[[branch0, 'alice', null, -7], [branch2, 'bob', null, +7]]`.
 *
 * Invariant the pipeline checks at every frontier: the total over all branches is
 * the money deposited at opening, because every transfer is committed atomically
 * across shards and the reader sees all branches at one logical time
 * (`dataSubscribe` per branch for logical progress, `mergeFrontiers` to read them
 * at the least common frontier).
 *
 * Layout on a `file:` location: `<dir>/bank.json` names the txns shard and the
 * branch shards, so a second run reopens the same bank and carries on.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Observable, Subject, filter, map, scan, type Subscription } from 'rxjs';
import {
  Codecs,
  PersistClient,
  TxnsHandle,
  dataSubscribe$,
  isShardId,
  mergeFrontiers,
  newShardId,
  txnSink,
  type ShardEvent,
  type ShardId,
  type SinkTxn,
  type TxnAck,
} from '../../src/index.js';

export const ACCOUNT_CODECS = { key: Codecs.string, val: Codecs.unit };
type Txn = SinkTxn<string, null>;

export interface BankOptions {
  branches?: number;
  accountsPerBranch?: number;
  openingBalance?: number;
}

export interface Bank {
  client: PersistClient;
  txns: TxnsHandle<string, null>;
  branches: ShardId[];
  /** account → index of its branch. */
  accounts: Map<string, number>;
  /** What the total must always be. */
  expectedTotal: number;
  /** True when an existing bank was reopened. */
  reopened: boolean;
  close(): Promise<void>;
}

interface SavedBank {
  txnsId: ShardId;
  branches: ShardId[];
  accountsPerBranch: number;
  openingBalance: number;
}

function accountName(branch: number, i: number): string {
  return `b${branch}-acct${String(i).padStart(3, '0')}`;
}

/**
 * Opens the bank on `location` (`file:<dir>` reopens the one saved there), creating
 * the branches, registering them with the txns shard and depositing the opening
 * balances in one transaction when it is new.
 */
export async function openBank(location: string, opts: BankOptions = {}): Promise<Bank> {
  const client = await PersistClient.open(location);
  const savePath = location.startsWith('file:') ? path.join(path.resolve(location.slice('file:'.length)), 'bank.json') : undefined;
  let saved: SavedBank | undefined;
  if (savePath && existsSync(savePath)) {
    saved = JSON.parse(await readFile(savePath, 'utf8')) as SavedBank;
    if (!isShardId(saved.txnsId) || !saved.branches.every(isShardId)) {
      throw new Error(`${savePath} does not describe a bank; delete it to start a new one`);
    }
  }
  const reopened = saved !== undefined;
  const layout: SavedBank = saved ?? {
    txnsId: newShardId(),
    branches: Array.from({ length: opts.branches ?? 4 }, () => newShardId()),
    accountsPerBranch: opts.accountsPerBranch ?? 25,
    openingBalance: opts.openingBalance ?? 1000,
  };
  const txns = await TxnsHandle.open(client, { txnsId: layout.txnsId, codecs: ACCOUNT_CODECS });
  const accounts = new Map<string, number>();
  layout.branches.forEach((_, b) => {
    for (let i = 0; i < layout.accountsPerBranch; i++) accounts.set(accountName(b, i), b);
  });

  // Registering is idempotent, so a reopened bank does it too: it hands this
  // handle a writer for each branch.
  const writers = await Promise.all(layout.branches.map((id) => client.openWriter(id, ACCOUNT_CODECS)));
  for (let ts = txns.readCache().progressExclusive; ; ) {
    const res = await txns.register(ts, writers);
    if (res.ok) break;
    ts = res.current;
  }
  if (!reopened) {
    const deposits: Txn = [...accounts].map(([name, b]) => [layout.branches[b]!, name, null, layout.openingBalance] as const);
    await new Promise<void>((resolve, reject) =>
      new Observable<Txn>((s) => {
        s.next(deposits);
        s.complete();
      })
        .pipe(txnSink(txns))
        .subscribe({ error: reject, complete: resolve }),
    );
    if (savePath) await writeFile(savePath, JSON.stringify(layout, null, 2));
  }
  return {
    client,
    txns,
    branches: layout.branches,
    accounts,
    expectedTotal: accounts.size * layout.openingBalance,
    reopened,
    close: async () => {
      await txns.close();
      await client.close();
    },
  };
}

/** The latest time the bank can be read as of (everything committed so far). */
export function latestReadTs(bank: Bank): number {
  return Math.max(0, bank.txns.readCache().progressExclusive - 1);
}

/** The bank as the pipeline sees it at one frontier. */
export interface BankState {
  /** Everything committed below this is included. */
  frontier: number;
  total: number;
  perBranch: number[];
  balances: ReadonlyMap<string, number>;
  /** How many transfers' worth of updates were folded in so far. */
  updatesSeen: number;
}

/**
 * Balances and totals, maintained incrementally from every branch's
 * `dataSubscribe$` read at one common frontier; one state per frontier.
 */
export function bankState$(bank: Bank, asOf: number): Observable<BankState> {
  const branchOf = bank.accounts;
  const streams = bank.branches.map((id) => dataSubscribe$(bank.client, bank.txns.txnsId, id, { codecs: ACCOUNT_CODECS, asOf }));
  const initial = {
    frontier: asOf,
    total: 0,
    perBranch: bank.branches.map(() => 0),
    balances: new Map<string, number>(),
    updatesSeen: 0,
    atFrontier: false,
  };
  return mergeFrontiers(streams).pipe(
    scan((s, ev: ShardEvent<string, null>) => {
      if (ev.kind === 'updates') {
        for (const [account, , , diff] of ev.updates) {
          const b = branchOf.get(account);
          if (b === undefined) throw new Error(`unknown account ${account} in the bank's shards`);
          s.balances.set(account, (s.balances.get(account) ?? 0) + diff);
          s.perBranch[b]! += diff;
          s.total += diff;
          s.updatesSeen++;
        }
        s.atFrontier = false;
      } else {
        s.frontier = ev.upper;
        s.atFrontier = true;
      }
      return s;
    }, initial),
    // Only a progress event closes a consistent state; each emitted state gets its
    // own copies, so a consumer holding one never sees later transfers in it.
    filter((s) => s.atFrontier),
    map(({ atFrontier: _, ...s }): BankState => ({ ...s, perBranch: [...s.perBranch], balances: new Map(s.balances) })),
  );
}

/** A seeded generator of transfers that never overdraws an account. */
export class TransferGenerator {
  private seed: number;
  private readonly names: string[];

  constructor(
    private readonly bank: Bank,
    private readonly balances: Map<string, number>,
    seed = 1,
  ) {
    this.seed = seed >>> 0 || 1;
    this.names = [...bank.accounts.keys()];
  }

  /** 1 to 3 transfers, as one transaction. */
  next(): Txn {
    const writes: [ShardId, string, null, number][] = [];
    const n = 1 + this.rand(3);
    for (let i = 0; i < n; i++) {
      const from = this.names[this.rand(this.names.length)]!;
      const to = this.names[this.rand(this.names.length)]!;
      const have = this.balances.get(from) ?? 0;
      if (from === to || have <= 0) continue;
      const amount = 1 + this.rand(Math.min(have, 50));
      this.balances.set(from, have - amount);
      this.balances.set(to, (this.balances.get(to) ?? 0) + amount);
      writes.push([this.bank.branches[this.bank.accounts.get(from)!]!, from, null, -amount]);
      writes.push([this.bank.branches[this.bank.accounts.get(to)!]!, to, null, amount]);
    }
    return writes;
  }

  private rand(n: number): number {
    // xorshift32: deterministic per seed, so a run can be replayed.
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed % n;
  }
}

export interface RunStats {
  commits: number;
  lastCommitTs: number;
  frontier: number;
  total: number;
  statesChecked: number;
  violations: number;
}

/**
 * Runs transfers for `seconds` with `inFlight` transactions outstanding at a time,
 * while the pipeline checks the total at every frontier. `onState` sees every
 * state (for status lines); resolves once the reader has caught up with the last
 * commit.
 */
export async function runTransfers(
  bank: Bank,
  opts: {
    seconds: number;
    inFlight?: number;
    seed?: number;
    /** Stops the transfers early (the reader still catches up before the promise resolves). */
    signal?: AbortSignal;
    onState?: (s: BankState, stats: RunStats) => void;
  },
): Promise<RunStats> {
  const stats: RunStats = { commits: 0, lastCommitTs: -1, frontier: 0, total: 0, statesChecked: 0, violations: 0 };
  const asOf = latestReadTs(bank);
  let generator: TransferGenerator | undefined;
  let firstState: (() => void) | undefined;
  const ready = new Promise<void>((r) => (firstState = r));
  let caughtUp: (() => void) | undefined;
  const done = new Promise<void>((r) => (caughtUp = r));
  let stopping = false;
  let readerError: unknown;

  const reader: Subscription = bankState$(bank, asOf).subscribe({
    next: (s) => {
      stats.frontier = s.frontier;
      stats.total = s.total;
      stats.statesChecked++;
      if (s.total !== bank.expectedTotal) stats.violations++;
      if (!generator) {
        // The generator starts from the balances as of the first consistent state.
        generator = new TransferGenerator(bank, new Map(s.balances), opts.seed);
        firstState!();
      }
      opts.onState?.(s, stats);
      if (stopping && s.frontier > stats.lastCommitTs) caughtUp!();
    },
    error: (err) => {
      readerError = err;
      firstState!();
      caughtUp!();
    },
  });
  await ready;
  if (readerError) throw readerError;

  // A closed loop: each ack lets one more transaction in, so at most `inFlight` wait.
  const requests = new Subject<Txn>();
  const sinkDone = new Promise<void>((resolve, reject) => {
    requests.pipe(txnSink(bank.txns)).subscribe({
      next: (ack: TxnAck) => {
        stats.commits++;
        stats.lastCommitTs = ack.commitTs;
        if (!stopping) requests.next(generator!.next());
      },
      error: reject,
      complete: resolve,
    });
  });
  for (let i = 0; i < (opts.inFlight ?? 4); i++) requests.next(generator!.next());
  await new Promise<void>((resolve) => {
    const timer = setTimeout(finish, opts.seconds * 1000);
    function finish(): void {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', finish);
      resolve();
    }
    if (opts.signal?.aborted) finish();
    else opts.signal?.addEventListener('abort', finish, { once: true });
  });
  stopping = true;
  requests.complete();
  await sinkDone;
  if (stats.frontier > stats.lastCommitTs) caughtUp!();
  await done;
  reader.unsubscribe();
  if (readerError) throw readerError;
  return stats;
}

