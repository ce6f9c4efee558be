/**
 * The bank dashboard: live balances, commit rate, commit → view lag, frontiers and
 * unapplied transactions in a browser, pushed over Server-Sent Events as deltas.
 *
 * What runs. The bank of `examples/bank` (accounts over several collections of one
 * database, transfers committed atomically with `db.write`). ONE read pipeline
 * ({@link bankView$}: `db.subscribe$` per collection as of one time, merged at their
 * least common frontier) feeds a {@link DashboardState}; each closed frontier becomes
 * one delta, broadcast to every open page, so any number of tabs share the pipeline.
 * Background transfers ({@link startTransfers}) start from the view's first state. A
 * one-second tick adds a sample (commits/s, txns seen/s, lag p50/p99/max) and
 * refreshes the storage figures ({@link StorageFigures}).
 *
 * Invariants:
 * - Every page gets a snapshot, then only deltas (protocol.ts); applying them in
 *   order gives the server's state.
 * - The invariant (total == deposited, no balance below zero) is checked at every
 *   frontier the view closes; once it fails the page shows it failed.
 * - `close()` never waits on a reader or a browser: it ends every stream, closes
 *   every socket, waits only for the writes already submitted (one commit each),
 *   then closes the database. Each step is bounded by `closeStepTimeoutMs`; a step
 *   that overruns is abandoned (reported through `onError`) so the next one runs.
 *
 * Run it with `npm run dashboard [-- --dir <dir> --port <port>]`, or embed it:
 * ```ts
 * const dashboard = await startDashboard({ location: 'file:/tmp/bank' });
 * console.log(dashboard.url);
 * // …
 * await dashboard.close();
 * ```
 *
 * Routes: `GET /` the page (self-contained: inline script, style and SVG; nothing
 * fetched from elsewhere); `GET /events` the `text/event-stream`; `GET /state` the
 * current {@link Snapshot} as JSON.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Subscription } from 'rxjs';
import { openBank, type Bank, type BankOptions } from '../bank/bank.js';
import { bankView$, viewedCollections, type FrontierStep } from './bank-view.js';
import { DashboardState } from './dashboard-state.js';
import { LagTracker, summarize } from './lag.js';
import { PAGE } from './page.js';
import type { Delta, Snapshot, UnappliedFigures } from './protocol.js';
import { openSseClient, type SseClient } from './sse-client.js';
import { StorageFigures } from './storage-figures.js';
import { startTransfers, type Transfers } from './transfers.js';

export interface DashboardOptions {
  /** Where the bank lives, e.g. `file:./.txnwal-data/dashboard` (reopened if it exists). */
  location: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** Run random transfers in the background while serving (default true). */
  transfers?: boolean;
  /** Seed of the transfer generator (default: varies per run). */
  seed?: number;
  /** Writes outstanding at a time (default 4). */
  inFlight?: number;
  /** Shape of a new bank. */
  bank?: BankOptions;
  /** Per-client cap on SSE frames (default 10). */
  maxEventsPerSecond?: number;
  /** Interval of SSE heartbeat comments (default 15 s). */
  heartbeatMs?: number;
  /** Bound on each step of close() (default 1500 ms). */
  closeStepTimeoutMs?: number;
  /** Errors nobody awaits: the view or the transfers failing. Default: `console.error`. */
  onError?: (err: unknown) => void;
}

export interface Dashboard {
  /** `http://host:port/` */
  url: string;
  bank: Bank;
  /** Open `/events` connections. */
  activeClients(): number;
  /** The state every new page starts from. */
  snapshot(): Snapshot;
  /** Ends every stream and socket, stops transfers, then closes the bank. Idempotent. */
  close(): Promise<void>;
}

const SAMPLE_MS = 1000;

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const host = opts.host ?? '127.0.0.1';
  const minIntervalMs = 1000 / (opts.maxEventsPerSecond ?? 10);
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const stepTimeoutMs = opts.closeStepTimeoutMs ?? 1500;
  const onError = opts.onError ?? ((err: unknown) => console.error('dashboard:', err));
  const transfersOn = opts.transfers !== false;

  const bank = await openBank(opts.location, opts.bank);
  const cleanups: CloseStep[] = [{ name: 'close the bank', run: () => bank.close() }];
  const clients = new Set<SseClient>();
  let closing: Promise<void> | undefined;
  try {
    const figures = await StorageFigures.open(bank, viewedCollections(bank));
    cleanups.unshift({ name: 'release the txns cache', run: () => figures.close() });
    const state = new DashboardState(bank, transfersOn);
    const broadcast = (delta: Delta): void => {
      for (const client of clients) client.push(delta);
    };

    // What the current second's sample counts.
    let ackedThisSecond = 0;
    let txnsSeenThisSecond = 0;
    let lagsThisSecond: number[] = [];
    const lag = new LagTracker((ms) => lagsThisSecond.push(ms));

    // The one pipeline; the first state also seeds the transfers.
    let firstStep: (step: FrontierStep | Error) => void;
    const first = new Promise<FrontierStep | Error>((resolve) => (firstStep = resolve));
    const view: Subscription = bankView$(bank).subscribe({
      next: (step) => {
        lag.delivered(step.frontier, performance.now());
        // The first step holds the whole history: it is not this second's traffic.
        if (state.started) txnsSeenThisSecond += step.commitTimes;
        else firstStep(step);
        broadcast(state.step(step, figures.collections(step.collectionUppers)));
      },
      error: (err: unknown) => {
        firstStep(err instanceof Error ? err : new Error(String(err)));
        if (closing) return;
        onError(err);
        for (const client of [...clients]) client.fail(`the view failed: ${err instanceof Error ? err.message : String(err)}`);
      },
    });
    cleanups.unshift({ name: 'unsubscribe the view', run: async () => view.unsubscribe() });
    const started = await first;
    if (started instanceof Error) throw started;

    let transfers: Transfers | undefined;
    if (transfersOn) {
      transfers = startTransfers(bank, started.changed, {
        seed: opts.seed ?? (Date.now() % 100_000) + 1,
        inFlight: opts.inFlight,
        onAck: (commitTs, at) => {
          ackedThisSecond++;
          lag.acknowledged(commitTs, at);
        },
        onError,
      });
      const t = transfers;
      cleanups.unshift({ name: 'finish the submitted transfers', run: () => t.stop() });
    }

    let unappliedFailed = false;
    const tick = (): void => {
      const sample = {
        t: Date.now(),
        commitsPerSec: Math.round((ackedThisSecond * 1000) / SAMPLE_MS),
        txnsSeenPerSec: Math.round((txnsSeenThisSecond * 1000) / SAMPLE_MS),
        lag: summarize(lagsThisSecond),
      };
      ackedThisSecond = 0;
      txnsSeenThisSecond = 0;
      lagsThisSecond = [];
      let unapplied: UnappliedFigures | null = state.snapshot().unapplied;
      try {
        unapplied = figures.unapplied();
      } catch (err) {
        if (!unappliedFailed) onError(err);
        unappliedFailed = true;
      }
      const collections = figures.collections(Object.fromEntries(state.snapshot().collections.map((c) => [c.name, c.logicalUpper])));
      broadcast(state.tick(sample, transfers?.commits ?? 0, unapplied ?? emptyUnapplied(), collections));
    };
    const ticker = setInterval(tick, SAMPLE_MS);
    cleanups.unshift({ name: 'stop the ticker', run: async () => clearInterval(ticker) });

    const server = createServer((req, res) => {
      const route = `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`;
      if (route === 'GET /' || route === 'GET /index.html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(PAGE);
      } else if (route === 'GET /events') {
        if (closing) {
          res.writeHead(503, { 'content-type': 'text/plain', connection: 'close' }).end('the dashboard is shutting down\n');
          return;
        }
        const client = openSseClient(req, res, state.snapshot(), { minIntervalMs, heartbeatMs, onEnd: () => clients.delete(client) });
        clients.add(client);
      } else if (route === 'GET /state') {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(state.snapshot()));
      } else if (route === 'GET /favicon.ico') {
        res.writeHead(204).end();
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route ${route}\n`);
      }
    });
    await listen(server, opts.port ?? 0, host);
    // First in close(): no new page, no open stream or keep-alive socket holds anything.
    cleanups.unshift({
      name: 'end the streams and sockets',
      run: async () => {
        for (const client of [...clients]) client.end();
        server.close();
        server.closeAllConnections();
      },
    });
    const { port } = server.address() as AddressInfo;

    return {
      url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
      bank,
      activeClients: () => clients.size,
      snapshot: () => state.snapshot(),
      close: () => (closing ??= runBounded(cleanups, stepTimeoutMs, onError)),
    };
  } catch (err) {
    closing ??= runBounded(cleanups, stepTimeoutMs, () => undefined);
    await closing;
    throw err;
  }
}

/** Runs each step in order, each for at most `timeoutMs`; an overrun or a failure is reported and the next step runs. */
interface CloseStep {
  name: string;
  run: () => Promise<void>;
}

async function runBounded(steps: CloseStep[], timeoutMs: number, onError: (err: unknown) => void): Promise<void> {
  for (const step of steps) {
    let timer: NodeJS.Timeout | undefined;
    const overrun = new Promise<'overrun'>((resolve) => {
      timer = setTimeout(() => resolve('overrun'), timeoutMs);
      timer.unref();
    });
    const outcome = await Promise.race([step.run().then(() => 'done' as const), overrun]).catch((err: unknown) => err);
    clearTimeout(timer);
    if (outcome === 'overrun') onError(new Error(`closing: a step took over ${timeoutMs} ms; abandoned it: ${step.name}`));
    else if (outcome !== 'done') onError(outcome);
  }
}

function emptyUnapplied(): UnappliedFigures {
  return { txnsUpper: -1, txnsSince: -1, unapplied: 0, unappliedBytes: 0, oldestUnappliedTs: null, awaitingTidy: 0 };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') {
        reject(new Error(`port ${port} on ${host} is already in use; choose another with --port <n> (--port 0 picks a free one)`, { cause: err }));
      } else if (err.code === 'EACCES') {
        reject(new Error(`not allowed to listen on port ${port} on ${host}; choose a port above 1023 with --port <n>`, { cause: err }));
      } else {
        reject(err);
      }
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}
