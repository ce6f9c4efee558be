/**
 * The dashboard's current state (a {@link Snapshot}) and the deltas that move it.
 *
 * Every change goes through here: `step` folds one {@link FrontierStep} of the view,
 * `tick` one second of activity and the storage figures. Each returns the
 * {@link Delta} of what actually changed (fields equal to the current ones are left
 * out), already applied to the state, so `snapshot()` after any sequence of calls
 * equals the first snapshot with every returned delta applied in order.
 *
 * Example:
 * ```ts
 * const state = new DashboardState(bank, true);
 * state.step(step);                    // { frontier: 1006, balances: { 'b0-acct001': 993, … }, … }
 * state.snapshot().frontier;           // 1006
 * ```
 */
import type { Bank } from '../bank/bank.js';
import type { FrontierStep } from './bank-view.js';
import { applyDelta, type CollectionChange, type CollectionFigures, type Delta, type Sample, type Snapshot, type UnappliedFigures } from './protocol.js';

export class DashboardState {
  private current: Snapshot;

  constructor(bank: Bank, transfers: boolean) {
    const accountsOf = bank.branches.map((): string[] => []);
    for (const [account, b] of bank.accounts) accountsOf[b]!.push(account);
    this.current = {
      frontier: -1,
      total: 0,
      expectedTotal: bank.expectedTotal,
      branches: bank.branches.map((name, b) => ({ name, accounts: accountsOf[b]!.sort() })),
      perBranch: bank.branches.map(() => 0),
      balances: {},
      invariantOk: true,
      violations: 0,
      commits: 0,
      collections: [],
      unapplied: null,
      samples: [],
      transfers,
    };
  }

  /** Whether the view delivered its first consistent state. */
  get started(): boolean {
    return this.current.frontier >= 0;
  }

  snapshot(): Snapshot {
    return this.current;
  }

  /** Folds one frontier step (and the collections' figures at it). */
  step(step: FrontierStep, collections: CollectionFigures[]): Delta {
    const s = this.current;
    const delta: Delta = { frontier: step.frontier };
    if (step.changed.size > 0) delta.balances = Object.fromEntries(step.changed);
    if (step.total !== s.total) delta.total = step.total;
    if (step.perBranch.some((sum, b) => sum !== s.perBranch[b])) delta.perBranch = step.perBranch;
    const ok = step.total === s.expectedTotal && !step.overdrawn;
    if (!ok) delta.violations = s.violations + 1;
    // Sticky: one violation anywhere means the guarantee failed, even if later totals add up.
    if (!ok && s.invariantOk) delta.invariantOk = false;
    const moved = changedCollections(s.collections, collections);
    if (moved.length > 0) delta.collections = moved;
    return this.apply(delta);
  }

  /** One second's sample plus the figures that only need refreshing once a second. */
  tick(sample: Sample, commits: number, unapplied: UnappliedFigures, collections: CollectionFigures[]): Delta {
    const s = this.current;
    const delta: Delta = { samples: [sample] };
    if (commits !== s.commits) delta.commits = commits;
    if (JSON.stringify(unapplied) !== JSON.stringify(s.unapplied)) delta.unapplied = unapplied;
    const moved = changedCollections(s.collections, collections);
    if (moved.length > 0) delta.collections = moved;
    return this.apply(delta);
  }

  private apply(delta: Delta): Delta {
    this.current = applyDelta(this.current, delta);
    return delta;
  }
}

/** For each entry of `next` that differs from the one of its name in `previous`: its name and the fields that differ. */
function changedCollections(previous: CollectionFigures[], next: CollectionFigures[]): CollectionChange[] {
  const before = new Map(previous.map((c) => [c.name, c]));
  const changes: CollectionChange[] = [];
  for (const c of next) {
    const b = before.get(c.name);
    if (!b) {
      changes.push(c);
      continue;
    }
    const change: Record<string, unknown> = { name: c.name };
    for (const field of ['shardId', 'logicalUpper', 'physicalUpper', 'since'] as const) if (b[field] !== c[field]) change[field] = c[field];
    if (Object.keys(change).length > 1) changes.push(change as CollectionChange);
  }
  return changes;
}
