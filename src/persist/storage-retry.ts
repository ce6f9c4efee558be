/**
 * Retrying Blob and Consensus calls.
 *
 * Storage faults are retried with backoff; when the attempts run out the caller gets
 * a PersistStorageError that says whether the operation may have happened.
 * Misuse errors (LocationUsageError) are never retried: they would fail again.
 */
import { LocationUsageError, mayHaveHappened } from '../location/errors.js';
import type { PersistConfig } from './config.js';
import { PersistStorageError } from './errors.js';
import { sleep } from './wait.js';

export async function withStorageRetry<T>(
  cfg: PersistConfig,
  what: string,
  op: () => Promise<T>,
  opts: { write: boolean } = { write: false },
): Promise<T> {
  let delay = cfg.storageRetry.initialMs;
  let maybe = false;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (err instanceof LocationUsageError) throw err;
      if (opts.write && mayHaveHappened(err)) maybe = true;
      if (attempt >= cfg.storageRetry.attempts) {
        throw new PersistStorageError(
          `${what} failed after ${attempt} attempts: ${(err as Error).message}` +
            (opts.write ? (maybe ? ' (it may have happened)' : ' (it did not happen)') : ''),
          opts.write && maybe,
          { cause: err },
        );
      }
      cfg.logger.debug({ err, what, attempt }, 'storage call failed; retrying');
      await sleep(delay);
      delay = Math.min(delay * cfg.storageRetry.multiplier, cfg.storageRetry.clampMs);
    }
  }
}
