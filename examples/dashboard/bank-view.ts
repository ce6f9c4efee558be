/**
 * The dashboard's one read pipeline: every collection of the bank followed with
 * `db.subscribe$` as of one time, merged at their least common frontier
 * (`mergeCollections`, what `db.subscribe$([...names])` does inside), folded into
 * balances, and emitted once per closed frontier as a {@link FrontierStep}: the new
 * frontier, only the balances that changed, and each collection's own logical upper
 * (seen before the merge, which is why the collections are subscribed one by one).
 *
 * Invariants:
 * - A step is emitted only at a progress event of the merge, so its balances are one
 *   consistent state of every branch: never half a transfer.
 * - The first step carries every account (`changed` = all balances); later steps
 *   carry only the accounts whose balance differs from the previous step's.
 * - `total` and `perBranch` are kept incrementally; `commitTimes` are the distinct
 *   commit timestamps whose updates the step folded in.
 *
 * Example:
 * ```ts
 * bankView$(bank).subscribe((step) => console.log(step.frontier, step.changed.size, step.total));
 * // 1000 100 100000      (the first state: every account)
 * // 1006 2 100000        (one transfer)
 * ```
 */
import { catchError, defer, filter, from, map, switchMap, tap, type Observable } from 'rxjs';
import { mergeCollections, type CollectionEvent, type ShardEvent } from '../../src/index.js';
import { CollectionReadBelowSince } from '../../src/db/index.js';
import type { Bank } from '../bank/bank.js';

/** The bank as the view sees it at one closed frontier. */
export interface FrontierStep {
  /** Everything committed below this is included. */
  frontier: number;
  /** Accounts whose balance changed at this step (every account at the first step), with the new balance. */
  changed: Map<string, number>;
  total: number;
  perBranch: number[];
  /** Whether any balance is below zero. */
  overdrawn: boolean;
  /** Each subscribed collection's logical upper, as its own subscription last reported it. */
  collectionUppers: Record<string, number>;
  /** Distinct commit timestamps of the updates folded in at this step. */
  commitTimes: number;
}

/** The collections the view follows: the bank's shape collection, then every branch. */
export function viewedCollections(bank: Bank): string[] {
  return ['bank', ...bank.branches];
}

export function bankView$(bank: Bank, asOf?: number): Observable<FrontierStep> {
  if (asOf !== undefined) return viewAt$(bank, asOf);
  // As of now: the collections are subscribed at one explicit time, so a time another
  // process compacted past before the readers opened is moved up to that since here (as
  // db.subscribe$ does for a time it chose itself), before anything was shown.
  const now$ = (at: number): Observable<FrontierStep> =>
    defer(() => {
      let shown = false;
      return viewAt$(bank, at).pipe(
        tap(() => (shown = true)),
        catchError((err: unknown) => {
          if (shown || !(err instanceof CollectionReadBelowSince) || err.since <= at) throw err;
          return now$(err.since);
        }),
      );
    });
  return defer(() => from(bank.db.oracle.readTs())).pipe(switchMap(now$));
}

/** The view as of one given time. */
function viewAt$(bank: Bank, at: number): Observable<FrontierStep> {
  return defer(() => {
    const uppers: Record<string, number> = {};
    const inputs: Record<string, Observable<ShardEvent<unknown, unknown>>> = {};
    for (const name of viewedCollections(bank)) {
      inputs[name] = bank.db.subscribe$(name, { asOf: at }).pipe(tap((ev) => ev.kind === 'progress' && (uppers[name] = ev.upper)));
    }
    const fold = new BalanceFold(bank);
    return mergeCollections(inputs).pipe(
      map((ev) => fold.apply(ev, uppers)),
      filter((step): step is FrontierStep => step !== undefined),
    );
  });
}

/** Balances folded from merged events; one step per progress event. */
class BalanceFold {
  private readonly branchIndex: Map<string, number>;
  private readonly balances = new Map<string, number>();
  /** Balances as of the last emitted step, to tell what changed. */
  private readonly emitted = new Map<string, number>();
  private readonly touched = new Set<string>();
  private readonly times = new Set<number>();
  private readonly perBranch: number[];
  private total = 0;
  private first = true;

  constructor(private readonly bank: Bank) {
    this.branchIndex = new Map(bank.branches.map((name, b) => [name, b]));
    this.perBranch = bank.branches.map(() => 0);
  }

  apply(ev: CollectionEvent, uppers: Record<string, number>): FrontierStep | undefined {
    if (ev.kind === 'updates') {
      const b = this.branchIndex.get(ev.collection);
      if (b === undefined) return undefined; // the `bank` shape row
      for (const [key, , ts, diff] of ev.updates) {
        const account = key as string;
        if (this.bank.accounts.get(account) !== b) throw new Error(`account ${JSON.stringify(account)} is not in ${ev.collection}`);
        this.balances.set(account, (this.balances.get(account) ?? 0) + diff);
        this.perBranch[b]! += diff;
        this.total += diff;
        this.touched.add(account);
        this.times.add(ts);
      }
      return undefined;
    }
    const changed = new Map<string, number>();
    const candidates = this.first ? this.bank.accounts.keys() : this.touched;
    for (const account of candidates) {
      const balance = this.balances.get(account) ?? 0;
      if (this.first || this.emitted.get(account) !== balance) changed.set(account, balance);
      this.emitted.set(account, balance);
    }
    let overdrawn = false;
    for (const balance of this.balances.values()) if (balance < 0) overdrawn = true;
    const step: FrontierStep = {
      frontier: ev.upper,
      changed,
      total: this.total,
      perBranch: [...this.perBranch],
      overdrawn,
      collectionUppers: { ...uppers },
      commitTimes: this.times.size,
    };
    this.first = false;
    this.touched.clear();
    this.times.clear();
    return step;
  }
}
