/**
 * `txnwal tail <url> <name…> [--as-of <ts>]`: follows collections live until
 * Ctrl-C (SIGINT) or SIGTERM, then closes everything and exits 0 at once.
 *
 * Output, one line per event (tail-follower.ts has the contract: the contents as of
 * `asOf`, then every later update, each progress line at one frontier for all the
 * names):
 * - text: `update <collection> <key> <val> <ts> <diff>` (key and val as JSON) and
 *   `progress <upper>`;
 * - `--json`: `{"kind":"update","collection","key","val","ts","diff"}` and
 *   `{"kind":"progress","upper"}`.
 * It polls the txns shard's head every `--poll-ms` (default 50); a poll costs one
 * small Consensus read while nothing changes.
 *
 * Example:
 * ```
 * $ txnwal tail file:./data accounts audit
 * update accounts "alice" null 5 10
 * progress 6
 * update accounts "alice" null 7 -1
 * update audit {"by":"alice"} null 7 1
 * progress 8
 * ^C
 * ```
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { parseTimestamp, URL_HELP, type CliCommand } from '../command.js';
import { printJson, printLine } from '../output.js';
import { StoreView } from '../store.js';
import { TailFollower, type TailEvent } from '../tail-follower.js';
import { showValue, valueDecoder, type ValueDecoder } from '../values.js';

function parsePollMs(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 60_000) throw new InvalidArgumentError('expected milliseconds from 1 to 60000');
  return n;
}

/** Resolves after `ms`, or at once when `signal` fires. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

/** `txnwal tail`. */
export const tailCommand: CliCommand = {
  register(program: Command) {
    program
      .command('tail')
      .summary('follow collections live, one line per update and per progress step, until Ctrl-C')
      .description(
        'Follow collections live until Ctrl-C: first their contents as of --as-of (default: the latest complete time), ' +
          'then one line per update and one per progress step, at one frontier across all the names. Reads only.',
      )
      .argument('<url>', 'the location, e.g. file:./data')
      .argument('<names...>', 'the collections to follow')
      .option('--as-of <ts>', 'start as of this time (default: the latest complete time)', parseTimestamp)
      .option('--json', 'JSON lines: {"kind":"update",…} and {"kind":"progress","upper"}')
      .option('--poll-ms <ms>', 'how often to look for new commits', parsePollMs, 50)
      .addHelpText(
        'after',
        `${URL_HELP}

Examples:
  txnwal tail file:./data accounts audit
  txnwal tail file:./data accounts --as-of 0 --json | jq -c 'select(.kind == "update")'`,
      )
      .action(async (url: string, names: string[], opts: { asOf?: number; json?: boolean; pollMs: number }) => {
        const stop = new AbortController();
        const onSignal = (): void => stop.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        const store = await StoreView.open(url);
        try {
          const unique = [...new Set(names)];
          const entries = [];
          for (const name of unique) entries.push(await store.collection(name));
          const decoders = new Map<string, [ValueDecoder, ValueDecoder]>(entries.map((e) => [e.name, [valueDecoder(e.keyCodec), valueDecoder(e.valCodec)]]));
          const follower = await TailFollower.open(store, entries.map((e) => ({ name: e.name, shardId: e.shardId })));
          const emit = (e: TailEvent): void => {
            if (e.kind === 'progress') {
              if (opts.json) printJson({ kind: 'progress', upper: e.upper });
              else printLine(`progress ${e.upper}`);
              return;
            }
            const [dk, dv] = decoders.get(e.collection)!;
            const key = dk(e.key);
            const val = dv(e.val);
            if (opts.json) printJson({ kind: 'update', collection: e.collection, key, val, ts: e.ts, diff: e.diff });
            else printLine(`update ${e.collection} ${showValue(key)} ${showValue(val)} ${e.ts} ${e.diff}`);
          };
          // Undefined when nothing was ever committed: then it follows from the start.
          const asOf = opts.asOf ?? follower.latestComplete();
          await follower.start(asOf, emit);
          while (!stop.signal.aborted) {
            const moved = await follower.step(emit);
            if (!moved) await pause(opts.pollMs, stop.signal);
          }
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          await store.close();
        }
      });
  },
};
