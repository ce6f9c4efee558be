/**
 * The shape of one `txnwal` subcommand, and what every subcommand shares.
 *
 * A subcommand is one file in `commands/` exporting a {@link CliCommand}, listed once
 * in `commands/index.ts`: adding one (say `serve-metrics`) is that file and that line.
 * `register` declares its arguments, options and help on the commander program and
 * attaches its action; actions throw (a {@link CliError} for the problems they
 * recognise) and main.ts turns any failure into one line on stderr and exit code 1.
 *
 * Shared options: every subcommand has `--json` (serve-metrics: for the URL it
 * prints); the ones that read at a time have `--as-of <ts>`, parsed by
 * {@link parseTimestamp} (a non-negative safe integer).
 *
 * Example:
 * ```ts
 * export const hello: CliCommand = {
 *   register(program) {
 *     program.command('hello').argument('<url>').option('--json').action(async (url, opts) => { … });
 *   },
 * };
 * ```
 */
import { InvalidArgumentError, type Command } from 'commander';

/** One subcommand: adds itself (arguments, options, help, action) to the program. */
export interface CliCommand {
  register(program: Command): void;
}

/** Parses a `--as-of` value: a non-negative safe integer (a txnwal timestamp). */
export function parseTimestamp(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError('expected a timestamp: a non-negative integer, e.g. --as-of 42');
  }
  return n;
}

/** Help text shared by the subcommands: the URL forms. */
export const URL_HELP = `
Locations (read-only: nothing is created or written):
  file:<dir>                         SQLite consensus and blob files in <dir>
  file:<dir>?blob=s3://<bucket>/<p>  the same, blobs in S3
  postgres://user@host/db?blob=…     Postgres consensus; blob=file:<dir> or s3://…`;
