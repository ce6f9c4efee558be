/**
 * The command-line conventions every example follows: `--help` (or `-h`) prints the
 * usage and exits 0; an unknown option or a bad value prints one line naming it and
 * exits 1. The demo and examples default to the location `file:./.txnwal-data`
 * (git-ignored); the library itself always takes an explicit URL.
 *
 * Example:
 * ```ts
 * const { values } = cliArgs(USAGE, { options: { seconds: { type: 'string', default: '10' } } });
 * const seconds = positiveNumber(values.seconds, '--seconds');
 * ```
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Where the demo and the examples keep their data unless told otherwise. */
export const DEFAULT_DATA_DIR = './.txnwal-data';

/** Parses `process.argv` by `config` (strict); handles `--help` and bad options as described above. */
export function cliArgs<T extends ParseArgsConfig>(usage: string, config: T): ReturnType<typeof parseArgs<T>> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(usage.trim());
    process.exit(0);
  }
  try {
    // Strict (the default): an unknown option or a missing value throws.
    return parseArgs<T>({ ...config, args });
  } catch (err) {
    return fail((err as Error).message);
  }
}

/** Prints one line about a bad option or value and exits 1. */
export function fail(message: string): never {
  console.error(`${message.split('\n')[0]} (see --help)`);
  process.exit(1);
}

/** `value` as a positive number, or {@link fail} naming `flag`. */
export function positiveNumber(value: string | undefined, flag: string): number {
  const n = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(n) || n <= 0) fail(`${flag} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
}
