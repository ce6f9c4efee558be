#!/usr/bin/env node
/**
 * The `txnwal` command's entry point (package.json `bin`; `npm run txnwal -- …` in
 * the repository). See program.ts for the exit codes and commands/ for what each
 * subcommand does.
 *
 * The exit code is set, not forced: the process ends when stdout has drained. A
 * closed stdout (`txnwal tail … | head`) ends the process quietly with code 0.
 *
 * Example:
 * ```
 * $ txnwal inspect file:./data
 * $ txnwal snapshot file:./data accounts --json
 * ```
 */
import { runProgram } from './program.js';

process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

process.exitCode = await runProgram(process.argv);
// Commands close what they open; anything a driver left behind must not keep a finished command alive.
setTimeout(() => process.exit(), 2000).unref();
