/**
 * `txnwal snapshot <url> <name> [--as-of <ts>]`: a collection's consolidated
 * contents as of a time, read without a reader (logical-read.ts): the same rows
 * `db.snapshot(name, asOf)` returns.
 *
 * Output: an aligned table `key val diff` (keys and values as JSON), or with `--json`
 * one JSON line per row `{"asOf":…,"key":…,"val":…,"diff":…}` (values.ts says how
 * values are shown). `--as-of` defaults to the latest complete time (the txns upper
 * minus one); outside `[since, upper)` it is one clear line and exit code 1. On a
 * terminal, progress over the parts read goes to stderr.
 *
 * Example:
 * ```
 * $ txnwal snapshot file:./data accounts --as-of 9
 * key      val   diff
 * "alice"  null    90
 * "bob"    null    10
 * ```
 */
import type { Command } from 'commander';
import { parseTimestamp, URL_HELP, type CliCommand } from '../command.js';
import { CliError } from '../cli-error.js';
import { collectionAsOf } from '../logical-read.js';
import { formatTable, printJson, printLine, terminalProgress } from '../output.js';
import { StoreView } from '../store.js';
import { readTxnsView } from '../txns-view.js';
import { showValue, valueDecoder } from '../values.js';

/** One row of `snapshot --json`. */
export interface SnapshotRow {
  asOf: number;
  key: unknown;
  val: unknown;
  diff: number;
}

/** `txnwal snapshot`. */
export const snapshotCommand: CliCommand = {
  register(program: Command) {
    program
      .command('snapshot')
      .summary("print a collection's consolidated contents as of a time")
      .description(
        "Print a collection's consolidated contents as of a time (default: the latest complete one), " +
          'as a table or as JSON lines. Reads only.',
      )
      .argument('<url>', 'the location, e.g. file:./data')
      .argument('<name>', 'the collection')
      .option('--as-of <ts>', 'the time to read as of (default: the latest complete time)', parseTimestamp)
      .option('--json', 'one JSON line per row: {"asOf","key","val","diff"}')
      .addHelpText(
        'after',
        `${URL_HELP}

Examples:
  txnwal snapshot file:./data accounts
  txnwal snapshot file:./data accounts --as-of 42 --json | jq -s 'map(.diff) | add'`,
      )
      .action(async (url: string, name: string, opts: { asOf?: number; json?: boolean }) => {
        const store = await StoreView.open(url);
        try {
          const entry = await store.collection(name);
          const txnsId = store.requireTxnsId();
          const view = await readTxnsView(await store.shard(txnsId), txnsId);
          const asOf = opts.asOf ?? view.upper - 1;
          if (asOf < 0) throw new CliError(`collection ${JSON.stringify(name)} has nothing readable yet: no transaction was ever committed in ${store.location.url}`);
          const data = await store.shard(entry.shardId);
          const rows = await collectionAsOf(view, data, name, entry.shardId, asOf, terminalProgress(`reading ${name}`));
          const key = valueDecoder(entry.keyCodec);
          const val = valueDecoder(entry.valCodec);
          const decoded = rows.keys.map((k, i) => ({ key: key(k), val: val(rows.vals[i]!), diff: rows.diffs[i]! }));
          if (opts.json) {
            for (const r of decoded) printJson({ asOf, key: r.key, val: r.val, diff: r.diff } satisfies SnapshotRow);
          } else {
            const cells = decoded.map((r) => [showValue(r.key), showValue(r.val), String(r.diff)]).sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0));
            printLine(formatTable(['key', 'val', 'diff'], cells));
            if (process.stdout.isTTY) printLine(`(${decoded.length} rows as of ${asOf})`);
          }
        } finally {
          await store.close();
        }
      });
  },
};
