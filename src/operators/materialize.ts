/**
 * materialize(): the current contents of a collection, emitted once per frontier.
 *
 * Updates are folded into a multiset of `(key, val) → diff` only when the progress
 * event that closes their window arrives; then a {@link MaterializedView} of the
 * contents at that frontier is emitted. So every emitted view is a consistent state
 * of the collection: exactly the updates at times `< upper`, never half a
 * transaction. (Updates after the last progress event are never folded in.)
 *
 * Invariants:
 * - `view.count(k, v)` equals the sum of the diffs of every `(k, v)` update below
 *   `view.upper`; rows whose diffs sum to 0 are absent.
 * - A view never changes after it was emitted (the operator copies on write).
 *   Cost: O(changes) per window plus, when a window changed anything, one copy of
 *   the contents for the next view.
 *
 * Example (a bank whose balances are the diffs of `(account, null)` rows):
 * ```ts
 * dataSubscribe$(client, txnsId, accounts, { codecs, asOf: 0 }).pipe(materialize())
 *   .subscribe((view) => console.log(view.upper, view.count('alice', null)));
 * ```
 */
import { Observable, type OperatorFunction } from 'rxjs';
import type { Update } from '../persist/update.js';
import type { ShardEvent } from '../sources/shard-source.js';
import { operatorObserver } from './operator-observer.js';
import { rowIdentity } from './row-identity.js';

interface Row<K, V> {
  key: K;
  val: V;
  diff: number;
}

/**
 * An immutable multiset of `(key, val)` with counts, as of `upper`.
 *
 * Emitted by {@link materialize}; it never changes after it was emitted.
 *
 * Example:
 * ```ts
 * const view = await firstValueFrom(events$.pipe(materialize()));
 * view.count('alice', null);   // alice's balance as of view.upper
 * view.toArray();              // [['alice', null, 10], …]
 * ```
 */
export class MaterializedView<K, V> {
  /** @internal */
  constructor(
    /** The contents include exactly the updates at times below this. */
    readonly upper: number,
    private readonly rows: ReadonlyMap<string, Readonly<Row<K, V>>>,
  ) {}

  /** How many distinct `(key, val)` rows are present. */
  get size(): number {
    return this.rows.size;
  }

  /** The diff sum of `(key, val)` (0 if absent). */
  count(key: K, val: V): number {
    return this.rows.get(rowIdentity(key, val))?.diff ?? 0;
  }

  /** Every present row as `[key, val, diff]`. */
  *entries(): IterableIterator<[K, V, number]> {
    for (const r of this.rows.values()) yield [r.key, r.val, r.diff];
  }

  /** Every present row as `[key, val, diff]`, in an array. */
  toArray(): [K, V, number][] {
    return [...this.entries()];
  }
}

/**
 * The contents of a collection, emitted as an immutable {@link MaterializedView} at every progress
 * event: exactly the updates below that frontier, never half a transaction.
 *
 * Example:
 * ```ts
 * dataSubscribe$(client, txnsId, accounts, { codecs, asOf: 0 }).pipe(materialize())
 *   .subscribe((view) => console.log(view.upper, view.count('alice', null)));
 * ```
 */
export function materialize<K, V>(): OperatorFunction<ShardEvent<K, V>, MaterializedView<K, V>> {
  return (source) =>
    new Observable<MaterializedView<K, V>>((subscriber) => {
      let rows = new Map<string, Row<K, V>>();
      // True while the current map is also held by an emitted view: copy before writing.
      let shared = false;
      let pending: Update<K, V>[] = [];
      const fold = (): void => {
        if (pending.length === 0) return;
        if (shared) {
          const copy = new Map<string, Row<K, V>>();
          for (const [id, r] of rows) copy.set(id, { ...r });
          rows = copy;
          shared = false;
        }
        for (const [key, val, , diff] of pending) {
          const id = rowIdentity(key, val);
          const r = rows.get(id);
          if (r) {
            r.diff += diff;
            if (r.diff === 0) rows.delete(id);
          } else if (diff !== 0) {
            rows.set(id, { key, val, diff });
          }
        }
        pending = [];
      };
      return source.subscribe(
        operatorObserver<ShardEvent<K, V>>(subscriber, {
          next: (ev) => {
            if (ev.kind === 'updates') {
              for (const u of ev.updates) pending.push(u);
              return;
            }
            fold();
            shared = true;
            subscriber.next(new MaterializedView(ev.upper, rows));
          },
        }),
      );
    });
}
