/**
 * Retrying Blob and Consensus calls, and the outcome flag of what they report.
 *
 * Storage faults are retried with backoff; when the attempts run out the caller gets
 * a PersistStorageError that says whether the operation may have happened.
 * Misuse errors (LocationUsageError) are never retried: they would fail again.
 *
 * Invariant: once any attempt of a write may have landed, the operation stays
 * uncertain whatever happens after. A later attempt that fails determinately, or with
 * a misuse error, still throws `mayHaveHappened: true`; and a later attempt that
 * succeeds reports `uncertain` (`withStorageRetryOutcome`), because for a
 * compare-and-set a `'mismatch'` after a lost reply may be our own write.
 */
import { LocationUsageError, describeError, mayHaveHappened } from '../location/errors.js';
import type { PersistConfig } from './config.js';
import { PersistStorageError } from './errors.js';
import { sleep } from './wait.js';

/** The retry counter of each client's config (a client registers its own; storage-metrics.ts). */
const retryCounters = new WeakMap<PersistConfig, { inc(): void }>();

/** Counts the retries of every call made with `cfg` in `counter` (a PersistClient does this for its config). */
export function countRetries(cfg: PersistConfig, counter: { inc(): void }): void {
  retryCounters.set(cfg, counter);
}

export async function withStorageRetry<T>(
  cfg: PersistConfig,
  what: string,
  op: () => Promise<T>,
  opts: { write: boolean } = { write: false },
): Promise<T> {
  return (await withStorageRetryOutcome(cfg, what, op, opts)).value;
}

/**
 * Like {@link withStorageRetry}, and also says whether an attempt before the one that
 * answered may have taken effect (only for writes).
 */
export async function withStorageRetryOutcome<T>(
  cfg: PersistConfig,
  what: string,
  op: () => Promise<T>,
  opts: { write: boolean } = { write: false },
): Promise<{ value: T; uncertain: boolean }> {
  let delay = cfg.storageRetry.initialMs;
  let maybe = false;
  for (let attempt = 1; ; attempt++) {
    try {
      return { value: await op(), uncertain: maybe };
    } catch (err) {
      if (err instanceof LocationUsageError) {
        if (maybe) throw mayHaveHappenedError(`${what} (after an attempt that may have happened)`, err);
        throw err;
      }
      if (opts.write && mayHaveHappened(err)) maybe = true;
      if (attempt >= cfg.storageRetry.attempts) {
        throw new PersistStorageError(
          `${what} failed after ${attempt} attempts: ${describeError(err)}` +
            (opts.write ? (maybe ? ' (it may have happened)' : ' (it did not happen)') : ''),
          opts.write && maybe,
          { cause: err },
        );
      }
      cfg.logger.debug({ err, what, attempt }, 'storage call failed; retrying');
      retryCounters.get(cfg)?.inc();
      await sleep(delay);
      delay = Math.min(delay * cfg.storageRetry.multiplier, cfg.storageRetry.clampMs);
    }
  }
}

/**
 * The error to throw for `err` when an earlier attempt of the operation `what` may
 * have landed: `err` itself if it already says so, else a PersistStorageError with
 * `mayHaveHappened: true` and `err` as its cause.
 */
export function mayHaveHappenedError(what: string, err: unknown): PersistStorageError {
  if (err instanceof PersistStorageError && err.mayHaveHappened) return err;
  return new PersistStorageError(
    `${what}: an earlier attempt may have happened, then it failed: ${describeError(err)}`,
    true,
    { cause: err },
  );
}
