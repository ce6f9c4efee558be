/**
 * The dashboard's background writers: random transfers committed with `db.write`,
 * `inFlight` at a time (group commit merges those that meet), each acknowledgement
 * reported with its commit timestamp and the time it arrived, for the commit rate
 * and the commit → view lag.
 *
 * Unlike `runTransfers` of examples/bank, this has no reader of its own: the
 * {@link TransferGenerator} starts from balances the caller read (the dashboard's one
 * view) and plans every later transfer from its own running balances, so it never
 * overdraws as long as it is the bank's only writer. Stopping does not wait for any
 * reader to catch up: only for the writes already submitted (each is one commit).
 *
 * Example:
 * ```ts
 * const transfers = startTransfers(bank, firstState.balances, { seed: 3, onAck: (ts, at) => lag.acknowledged(ts, at) });
 * // …
 * await transfers.stop();   // resolves once the in-flight writes are acknowledged
 * ```
 */
import { TransferGenerator, type Bank } from '../bank/bank.js';

export interface Transfers {
  /** Writes acknowledged so far. */
  readonly commits: number;
  /** Stops submitting; resolves once every submitted write settled (a failure was already reported to `onError`). */
  stop(): Promise<void>;
}

export function startTransfers(
  bank: Bank,
  balances: ReadonlyMap<string, number>,
  opts: { seed: number; inFlight?: number; onAck: (commitTs: number, at: number) => void; onError: (err: unknown) => void },
): Transfers {
  const generator = new TransferGenerator(bank, new Map(balances), opts.seed);
  let stopping = false;
  let commits = 0;
  const writers = Array.from({ length: opts.inFlight ?? 4 }, async () => {
    try {
      while (!stopping) {
        const { commitTs } = await bank.db.write(generator.next());
        commits++;
        opts.onAck(commitTs, performance.now());
        // On SQLite a commit can complete without leaving the microtask queue: let
        // timers, sockets and the reader have their turn between writes.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      // A write failing while stopping (the database closing under it) is not news.
      if (!stopping) {
        stopping = true;
        opts.onError(err);
      }
    }
  });
  const settled = Promise.all(writers);
  return {
    get commits() {
      return commits;
    },
    async stop() {
      stopping = true;
      await settled;
    },
  };
}
