/**
 * The `txnwal` program: commander set up so that every failure is one line.
 *
 * - `txnwal --help`, `txnwal <command> --help`: usage on stdout, exit 0.
 * - A usage error (unknown command or option, missing argument, bad `--as-of`):
 *   commander's message as one line on stderr, `(see --help)`, exit 1.
 * - A failure inside a command: {@link describeFailure}'s one line, exit 1.
 *
 * {@link runProgram} returns the exit code instead of exiting, so main.ts decides
 * when the process ends (after stdout is flushed) and tests can call it.
 *
 * Example:
 * ```ts
 * process.exitCode = await runProgram(process.argv);
 * ```
 */
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { describeFailure } from './cli-error.js';
import type { CliCommand } from './command.js';
import { COMMANDS } from './commands/index.js';

function packageVersion(): string {
  try {
    // src/cli/ and dist/cli/ are both two levels below package.json.
    return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The commander program with `commands` registered. */
export function buildProgram(commands: readonly CliCommand[] = COMMANDS): Command {
  const program = new Command('txnwal')
    .description('Look inside a txnwal location: its collections, shards and unapplied transactions; read and follow collections; serve its state as Prometheus metrics. Every command only reads.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({
      outputError: (message, write) => write(`txnwal: ${message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim()} (see --help)\n`),
    })
    .showSuggestionAfterError(true);
  for (const command of commands) command.register(program);
  return program;
}

/** Runs the program on `argv` (node, script, args…) and returns the exit code. */
export async function runProgram(argv: readonly string[], commands?: readonly CliCommand[]): Promise<number> {
  const program = buildProgram(commands);
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
    process.stderr.write(`txnwal: ${describeFailure(err)}\n`);
    return 1;
  }
}
