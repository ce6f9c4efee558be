/**
 * `txnwal serve-metrics <url> [--port 9464] [--host 127.0.0.1] [--interval-ms 5000]`:
 * a Prometheus endpoint for a store, until Ctrl-C (SIGINT) or SIGTERM, then exit 0.
 *
 * It serves the store-level gauges of store-exporter.ts (uppers, sinces, spine sizes
 * and holders per collection; the txns shard's upper and the commits it still points
 * at; how fresh and how healthy the reads are) at `http://<host>:<port>/metrics`,
 * reading the store at most every `--interval-ms` however often it is scraped. It
 * only reads, like every subcommand: nothing is registered or written, so it cannot
 * hold the store's compaction back.
 *
 * Startup checks everything before it listens: the URL, the directory or database,
 * that the location holds a txnwal database catalog, and one full read of the
 * store; any failure is one line on stderr and exit code 1. Then it prints the
 * scrape URL once on stdout (`--json`: `{"url":"…"}`), and nothing else: a later
 * failed read is counted (`txnwal_store_refresh_errors_total`, `txnwal_store_up 0`)
 * and logged once on stderr, and a recovery logged once too.
 *
 * Example:
 * ```
 * $ txnwal serve-metrics file:./data --port 9464
 * http://127.0.0.1:9464/metrics
 * $ curl -s http://127.0.0.1:9464/metrics | grep logical_upper
 * txnwal_collection_logical_upper{collection="accounts"} 1796180763498
 * ```
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { serveMetrics, type MetricsServer } from '../../db/metrics-http.js';
import { CliError, describeFailure } from '../cli-error.js';
import { URL_HELP, type CliCommand } from '../command.js';
import { printJson, printLine } from '../output.js';
import { StoreExporter } from '../store-exporter.js';
import { StoreView } from '../store.js';

/** Parses an integer option in `[min, max]`, or says what is expected. */
function integerIn(min: number, max: number, what: string): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) throw new InvalidArgumentError(`expected ${what}, an integer from ${min} to ${max}`);
    return n;
  };
}

/** Resolves when `signal` fires. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

async function listen(exporter: StoreExporter, host: string, port: number): Promise<MetricsServer> {
  try {
    return await serveMetrics(exporter.registry, { port, host });
  } catch (err) {
    const reason = (err as { cause?: NodeJS.ErrnoException }).cause?.code === 'EADDRINUSE' ? 'the port is in use; pick another --port' : `${(err as Error).message}; check --host and --port`;
    throw new CliError(`cannot listen on ${host}:${port}: ${reason}`);
  }
}

/** `txnwal serve-metrics`. */
export const serveMetricsCommand: CliCommand = {
  register(program: Command) {
    program
      .command('serve-metrics')
      .summary('serve the store state (uppers, sinces, unapplied transactions, …) as Prometheus metrics')
      .description(
        "A Prometheus exporter for a store: serves gauges read from the store's state (per collection its uppers, since, " +
          'parts, bytes, readers and writers; the txns upper and the unapplied transactions; read health) at ' +
          'http://<host>:<port>/metrics until Ctrl-C. Reads the store at most every --interval-ms however often it is ' +
          'scraped. Prints the scrape URL once on stdout, nothing else. Reads only.',
      )
      .argument('<url>', 'the location, e.g. file:./data')
      .option('--port <port>', 'the TCP port to listen on (0: any free one; the URL printed says which)', integerIn(0, 65535, 'a TCP port'), 9464)
      .option('--host <host>', 'the interface to listen on (0.0.0.0 or :: for every interface)', '127.0.0.1')
      .option('--interval-ms <ms>', 'the least time between two reads of the store; scrapes in between get the cached values', integerIn(0, 3_600_000, 'milliseconds'), 5000)
      .option('--json', 'print the scrape URL as {"url":"…"} instead of bare (a server has no other output)')
      .addHelpText(
        'after',
        `${URL_HELP}

Families (label collection: a catalog name; state: not_applied or applied, awaiting tidying):
  txnwal_collection_{physical_upper,logical_upper,since,batches,parts,bytes,writers}{collection}
  txnwal_collection_readers{collection,kind}, txnwal_collection_unapplied_batches{collection,state}
  txnwal_txns_{upper,since,parts,bytes}, txnwal_txns_readers{kind}
  txnwal_txns_unapplied{state} (transactions), txnwal_txns_unapplied_{batches,bytes}{state}
  txnwal_txns_oldest_unapplied_ts, txnwal_txns_upper_age_seconds (wall clock - txns upper:
    meaningful when timestamps are wall-clock ms, as with the default oracle)
  txnwal_store_up, txnwal_store_collections, txnwal_store_read_timestamp_seconds,
  txnwal_store_refresh_seconds (histogram), txnwal_store_refresh_errors_total

Examples:
  txnwal serve-metrics file:./data
  txnwal serve-metrics 'postgres://txnwal@db/txnwal?blob=s3://bucket/txnwal' --host 0.0.0.0 --port 9464 --interval-ms 15000`,
      )
      .action(async (url: string, opts: { port: number; host: string; intervalMs: number; json?: boolean }) => {
        const stop = new AbortController();
        const onSignal = (): void => stop.abort();
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        let store: StoreView | undefined;
        let exporter: StoreExporter | undefined;
        let server: MetricsServer | undefined;
        try {
          store = await StoreView.open(url);
          const shown = store.location.url;
          exporter = await StoreExporter.open(store, {
            intervalMs: opts.intervalMs,
            onHealthChange: (err) =>
              process.stderr.write(
                err === undefined ? `txnwal serve-metrics: reading ${shown} works again\n` : `txnwal serve-metrics: reading ${shown} failed: ${describeFailure(err)}\n`,
              ),
          });
          if (stop.signal.aborted) return;
          server = await listen(exporter, opts.host, opts.port);
          if (opts.json) printJson({ url: server.url });
          else printLine(server.url);
          await aborted(stop.signal);
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          await server?.close();
          await exporter?.close();
          await store?.close();
        }
      });
  },
};
