/**
 * CliError: a failure the `txnwal` command reports as ONE line on stderr (what is
 * wrong, then what to do) and exit code 1, never a stack trace.
 *
 * Commands throw it for problems they recognise (a bad URL, a missing directory, an
 * unknown collection); {@link describeFailure} turns everything else the library may
 * throw into such a line too, by its class:
 * - `StoredFormatError` / `InvariantViolation` → the store is corrupt (or was written
 *   by an incompatible version);
 * - storage faults (`ExternalError`, `PersistStorageError`) → the store cannot be read;
 * - `LocationUsageError` / `InvalidUsage` → the message as is (they already say what
 *   to do).
 *
 * Example:
 * ```ts
 * throw new CliError('no collection "acounts" in file:./data (it has: accounts, audit); run `txnwal inspect file:./data` to list them');
 * describeFailure(new StoredFormatError('rollup s…/v1/…: checksum mismatch'));
 * // 'the store is corrupt: rollup s…/v1/…: checksum mismatch; restore it from a backup'
 * ```
 */
import { ExternalError, LocationUsageError } from '../location/errors.js';
import { InvalidUsage, InvariantViolation, PersistStorageError, StoredFormatError } from '../persist/errors.js';

/** A failure with a message fit to print as the command's one line of error output. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** Multi-line library messages become one line: the command's contract is one line of error output. */
function flatten(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}

/** The one line to print for `err`, whatever it is (see the module doc). */
export function describeFailure(err: unknown): string {
  if (err instanceof CliError) return flatten(err.message);
  if (err instanceof StoredFormatError || err instanceof InvariantViolation) {
    return flatten(`the store is corrupt: ${err.message}; restore it from a backup (or read it with the txnwal version that wrote it)`);
  }
  if (err instanceof ExternalError || err instanceof PersistStorageError) {
    return flatten(`cannot read the store: ${err.message}; check that it is reachable and readable, then try again`);
  }
  if (err instanceof LocationUsageError || err instanceof InvalidUsage) return flatten(err.message);
  const message = err instanceof Error ? err.message : String(err);
  return flatten(`unexpected failure: ${message}`);
}
