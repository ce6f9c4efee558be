/**
 * The command-line conventions every example and trial (trial/*.ts) follows:
 * `--help` (or `-h`) prints the usage and exits 0; an unknown option or a bad value
 * prints one line naming it and exits 1; a long run shows its progress on stderr
 * when that is a terminal and nothing in a pipe ({@link progressLine}). The demo and
 * examples default to the location `file:./.txnwal-data` (git-ignored); the library
 * itself always takes an explicit URL.
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

/** `value` as a safe integer of at least `min`, or {@link fail} naming `flag`. */
export function integerOption(value: string | undefined, flag: string, min: number): number {
  const n = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isSafeInteger(n) || n < min) fail(`${flag} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * A one-line progress display on stderr, redrawn in place, shown only when stderr is
 * a terminal: in a pipe or a log file it writes nothing, so output stays clean.
 *
 * ```ts
 * const progress = progressLine();
 * for (let i = 0; i < n; i++) progress.update(`seed ${i + 1}/${n}`);
 * progress.clear();   // before printing results
 * ```
 */
export function progressLine(stream: NodeJS.WriteStream = process.stderr): { readonly shown: boolean; update(text: string): void; clear(): void } {
  const shown = stream.isTTY === true;
  let drawn = false;
  return {
    shown,
    update(text) {
      if (!shown) return;
      // Never wider than the terminal: a wrapped line cannot be redrawn in place.
      // (A pseudo-terminal may report 0 columns: then assume 80.)
      stream.write(`\r\x1b[K${text.slice(0, (stream.columns || 80) - 1)}`);
      drawn = true;
    },
    clear() {
      if (!shown || !drawn) return;
      stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}
