/**
 * The bank: accounts spread over several collections (branches), money moved by
 * atomic transactions, balances maintained incrementally by a reactive pipeline.
 * Built on the front door (`openDatabase`): collections by name, `db.write`,
 * `db.subscribe$`.
 *
 * Model. Each account is a row `(account, null)` in the collection of its branch
 * (`branch0`, `branch1`, …); its balance is the row's diff (a Z-set weight), so
 * depositing 10 is the row `['alice', null, +10]` and a transfer of 7 from alice
 * (branch 0) to bob (branch 2) is ONE write to two collections:
 * `{ branch0: [['alice', null, -7]], branch2: [['bob', null, +7]] }`.
 *
 * Invariant the pipeline checks at every frontier: the total over all branches is
 * the money deposited at opening, because every transfer is committed atomically
 * across collections and `db.subscribe$([...branches])` shows them all at one
 * logical time (each row tagged with its branch).
 *
 * Layout: everything is in the database's own catalog. The `bank` collection holds
 * one row, the bank's shape (`{ branches, accountsPerBranch, openingBalance }`),
 * written in the same transaction as the opening deposits, so a bank is either
 * fully opened or not at all, and a second run finds it and carries on.
 */
import { Observable, filter, map, scan, type Subscription } from 'rxjs';
import { Codecs, openDatabase, type CollectionEvent, type CollectionWrites, type Database, type IsolationLevel } from '../../src/index.js';

export const ACCOUNT_CODECS = { key: Codecs.string, val: Codecs.unit };
/** The bank's shape, the key of the one row of the `bank` collection. */
interface BankShape {
  branches: number;
  accountsPerBranch: number;
  openingBalance: number;
}
const SHAPE_CODECS = { key: Codecs.json<BankShape>('bank-shape'), val: Codecs.unit };

export interface BankOptions {
  branches?: number;
  accountsPerBranch?: number;
  openingBalance?: number;
}

export interface Bank {
  db: Database;
  /** The branches' collection names. */
  branches: string[];
  /** account → index of its branch. */
  accounts: Map<string, number>;
  /** What the total must always be. */
  expectedTotal: number;
  /** True when an existing bank was reopened. */
  reopened: boolean;
  close(): Promise<void>;
}

function accountName(branch: number, i: number): string {
  return `b${branch}-acct${String(i).padStart(3, '0')}`;
}

/**
 * Opens the bank in the database at `location` (a `file:` location reopens the one
 * there), creating its collections and depositing the opening balances in one
 * transaction when it is new.
 */
export async function openBank(location: string, opts: BankOptions = {}): Promise<Bank> {
  const db = await openDatabase(location);
  try {
    await db.collection('bank', SHAPE_CODECS);
    const saved = (await db.snapshot('bank')).collections.bank!.map(([shape]) => shape as BankShape);
    if (saved.length > 1) throw new Error(`the database at ${location} holds ${saved.length} bank shapes; it is not a bank`);
    const shape: BankShape = saved[0] ?? {
      branches: opts.branches ?? 4,
      accountsPerBranch: opts.accountsPerBranch ?? 25,
      openingBalance: opts.openingBalance ?? 1000,
    };
    const branches = Array.from({ length: shape.branches }, (_, b) => `branch${b}`);
    for (const name of branches) await db.collection(name, ACCOUNT_CODECS);
    const accounts = new Map<string, number>();
    branches.forEach((_, b) => {
      for (let i = 0; i < shape.accountsPerBranch; i++) accounts.set(accountName(b, i), b);
    });
    const reopened = saved.length === 1;
    if (!reopened) {
      // The shape and every deposit, atomically: a crash leaves no half-opened bank.
      const opening: Record<string, [unknown, null, number][]> = { bank: [[shape, null, 1]] };
      for (const [name, b] of accounts) (opening[branches[b]!] ??= []).push([name, null, shape.openingBalance]);
      await db.write(opening);
    }
    return {
      db,
      branches,
      accounts,
      expectedTotal: accounts.size * shape.openingBalance,
      reopened,
      close: () => db.close(),
    };
  } catch (err) {
    await db.close();
    throw err;
  }
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
 * Balances and totals, maintained incrementally from one `db.subscribe$` over every
 * branch (read as of `asOf`, by default now); one state per frontier.
 */
export function bankState$(bank: Bank, asOf?: number): Observable<BankState> {
  const branchIndex = new Map(bank.branches.map((name, b) => [name, b]));
  const initial = {
    frontier: 0,
    total: 0,
    perBranch: bank.branches.map(() => 0),
    balances: new Map<string, number>(),
    updatesSeen: 0,
    atFrontier: false,
  };
  return bank.db.subscribe$(bank.branches, { asOf }).pipe(
    scan((s, ev: CollectionEvent) => {
      if (ev.kind === 'updates') {
        const b = branchIndex.get(ev.collection)!;
        for (const [account, , , diff] of ev.updates) {
          if (bank.accounts.get(account as string) !== b) throw new Error(`account ${String(account)} is not in ${ev.collection}`);
          s.balances.set(account as string, (s.balances.get(account as string) ?? 0) + diff);
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

  /** 1 to 3 transfers, as one write (one transaction). */
  next(): CollectionWrites {
    const writes: Record<string, [string, null, number][]> = {};
    const add = (account: string, diff: number) => (writes[this.bank.branches[this.bank.accounts.get(account)!]!] ??= []).push([account, null, diff]);
    const n = 1 + this.rand(3);
    for (let i = 0; i < n; i++) {
      const from = this.names[this.rand(this.names.length)]!;
      const to = this.names[this.rand(this.names.length)]!;
      const have = this.balances.get(from) ?? 0;
      if (from === to || have <= 0) continue;
      const amount = 1 + this.rand(Math.min(have, 50));
      this.balances.set(from, have - amount);
      this.balances.set(to, (this.balances.get(to) ?? 0) + amount);
      add(from, -amount);
      add(to, amount);
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

/**
 * One transfer as a read-write transaction that checks the balance first: it reads
 * `from`'s balance in the database (the sum of its diffs), refuses if it is below
 * `amount`, and otherwise moves the money. Both accounts are written, so the commit
 * validates both: two processes draining one account can never both succeed on the
 * same balance, at any isolation level, and no account ever goes negative.
 */
export async function transferChecked(
  bank: Bank,
  from: string,
  to: string,
  amount: number,
  isolation: IsolationLevel = 'serializable',
): Promise<{ outcome: 'done' | 'insufficient'; commitTs: number }> {
  const branchOf = (account: string) => bank.branches[bank.accounts.get(account)!]!;
  const { value, commitTs } = await bank.db.transact(
    async (tx) => {
      const balance = (await tx.rows(branchOf(from), from)).reduce((sum, [, diff]) => sum + diff, 0);
      if (balance < amount) return 'insufficient' as const;
      await tx.add(branchOf(from), from, null, -amount);
      await tx.add(branchOf(to), to, null, amount);
      return 'done' as const;
    },
    { isolation, maxAttempts: 1000 },
  );
  return { outcome: value, commitTs };
}

export interface RunStats {
  commits: number;
  /** Checked transfers refused for insufficient funds (`checked` runs). */
  refused: number;
  lastCommitTs: number;
  frontier: number;
  total: number;
  statesChecked: number;
  violations: number;
}

/**
 * Runs transfers for `seconds` with `inFlight` writes outstanding at a time (group
 * commit merges the ones that meet), while the pipeline checks the total at every
 * frontier. `onState` sees every state (for status lines); resolves once the reader
 * has caught up with the last commit.
 */
export async function runTransfers(
  bank: Bank,
  opts: {
    seconds: number;
    inFlight?: number;
    seed?: number;
    /** Stops the transfers early (the reader still catches up before the promise resolves). */
    signal?: AbortSignal;
    /**
     * Transfers as read-write transactions that check the balance in the database
     * first ({@link transferChecked}), with random amounts that may be too large,
     * instead of blind writes planned from this process's view. Safe with several
     * processes transferring in one bank at once.
     */
    checked?: boolean;
    onState?: (s: BankState, stats: RunStats) => void;
  },
): Promise<RunStats> {
  const stats: RunStats = { commits: 0, refused: 0, lastCommitTs: -1, frontier: 0, total: 0, statesChecked: 0, violations: 0 };
  let generator: TransferGenerator | undefined;
  let firstState: (() => void) | undefined;
  const ready = new Promise<void>((r) => (firstState = r));
  let caughtUp: (() => void) | undefined;
  const done = new Promise<void>((r) => (caughtUp = r));
  let stopping = false;
  let readerError: unknown;

  const reader: Subscription = bankState$(bank).subscribe({
    next: (s) => {
      stats.frontier = s.frontier;
      stats.total = s.total;
      stats.statesChecked++;
      let overdrawn = false;
      for (const balance of s.balances.values()) if (balance < 0) overdrawn = true;
      if (s.total !== bank.expectedTotal || overdrawn) stats.violations++;
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

  const stop = new Promise<void>((resolve) => {
    const timer = setTimeout(finish, opts.seconds * 1000);
    function finish(): void {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', finish);
      stopping = true;
      resolve();
    }
    if (opts.signal?.aborted) finish();
    else opts.signal?.addEventListener('abort', finish, { once: true });
  });
  // A closed loop per slot: each acknowledged write lets the next one in.
  const names = [...bank.accounts.keys()];
  let seed = (opts.seed ?? 1) >>> 0 || 1;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    return seed % n;
  };
  const writers = Array.from({ length: opts.inFlight ?? 4 }, async () => {
    while (!stopping) {
      if (opts.checked) {
        const from = names[rand(names.length)]!;
        const to = names[rand(names.length)]!;
        if (from === to) continue;
        // Up to twice the opening balance: some transfers must be refused.
        const amount = 1 + rand(Math.max(1, (2 * bank.expectedTotal) / names.length));
        const { outcome, commitTs } = await transferChecked(bank, from, to, amount);
        if (outcome === 'done') stats.commits++;
        else stats.refused++;
        stats.lastCommitTs = Math.max(stats.lastCommitTs, commitTs);
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      const { commitTs } = await bank.db.write(generator!.next());
      stats.commits++;
      stats.lastCommitTs = Math.max(stats.lastCommitTs, commitTs);
      // On SQLite a commit can complete without leaving the microtask queue: let
      // timers (the run's deadline) and the reader have their turn between writes.
      await new Promise((resolve) => setImmediate(resolve));
    }
  });
  try {
    await stop;
    await Promise.all(writers);
    if (stats.frontier > stats.lastCommitTs) caughtUp!();
    await done;
  } finally {
    // Also when a write failed: the reader must not outlive the run.
    stopping = true;
    reader.unsubscribe();
  }
  if (readerError) throw readerError;
  return stats;
}
