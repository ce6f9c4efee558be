/**
 * The `txnwal` subcommands, in the order `--help` lists them. A new subcommand is a
 * file in this directory exporting a {@link CliCommand} and one line here.
 */
import type { CliCommand } from '../command.js';
import { inspectCommand } from './inspect.js';
import { serveMetricsCommand } from './serve-metrics.js';
import { snapshotCommand } from './snapshot.js';
import { tailCommand } from './tail.js';

/** Every subcommand of the `txnwal` program. */
export const COMMANDS: readonly CliCommand[] = [inspectCommand, tailCommand, snapshotCommand, serveMetricsCommand];
