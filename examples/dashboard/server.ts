/**
 * The bank dashboard: live balances in a browser, pushed over Server-Sent Events.
 *
 * What it shows. The same bank as `examples/bank` (accounts over several
 * collections of one database, random transfers committed atomically with
 * `db.write`), read by ONE `bankState$` pipeline — `db.subscribe$` over every
 * branch, at one logical time — whose consistent states are streamed to every
 * open page. The page shows the frontier, the total, whether it still equals what
 * was deposited (the invariant atomic transactions guarantee), the per-branch
 * totals and every account's balance, updating in place.
 *
 * Run it with `tsx examples/dashboard/main.ts [--dir <dir>] [--port <port>]`, or
 * embed it:
 * ```ts
 * const dashboard = await startDashboard({ location: 'file:/tmp/bank' });
 * console.log(dashboard.url);
 * // …
 * await dashboard.close();
 * ```
 *
 * Routes:
 * - `GET /`: a self-contained HTML page (inline script and style, nothing fetched
 *   from elsewhere) that listens to `/events`.
 * - `GET /events`: `text/event-stream`; each `data:` line is a {@link DashboardEvent}
 *   as JSON. A new client gets the latest state at once, then at most
 *   `maxEventsPerSecond` states, always ending on the newest one. A comment line
 *   every `heartbeatMs` keeps proxies from timing out an idle stream.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { asyncScheduler, defer, finalize, map, shareReplay, throttleTime, type Observable, type Subscription } from 'rxjs';
import { bankState$, openBank, runTransfers, type Bank, type BankOptions, type BankState } from '../bank/bank.js';

/** One `data:` payload of `/events`: the bank at one frontier. */
export interface DashboardEvent {
  /** Everything committed below this is included. */
  frontier: number;
  total: number;
  /** What the total must be: the money deposited when the bank was opened. */
  expectedTotal: number;
  /** Total per branch, indexed by branch number. */
  perBranch: number[];
  /** account → balance. */
  balances: Record<string, number>;
  /** Transactions this server has committed so far (0 when transfers are off). */
  commits: number;
}

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
  /** Shape of a new bank. */
  bank?: BankOptions;
  /** Per-client cap on SSE events (default 10). */
  maxEventsPerSecond?: number;
  /** Interval of SSE heartbeat comments (default 15 s). */
  heartbeatMs?: number;
  /** Errors nobody awaits: the background transfers failing. Default: `console.error`. */
  onError?: (err: unknown) => void;
}

export interface Dashboard {
  /** `http://host:port/` */
  url: string;
  bank: Bank;
  /** Open `/events` connections. */
  activeClients(): number;
  /** Whether the shared `bankState$` pipeline is subscribed (it is only while some client listens). */
  pipelineRunning(): boolean;
  /** Stops transfers, ends every SSE stream, closes the server and then the bank. Idempotent. */
  close(): Promise<void>;
}

/**
 * `setTimeout` cannot wait longer than 2^31-1 ms (it fires at once instead), so
 * "transfer until closed" is a sequence of long rounds rather than one endless one.
 */
const TRANSFER_ROUND_SECONDS = 24 * 3600;

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const host = opts.host ?? '127.0.0.1';
  const requestedPort = opts.port ?? 0;
  const minIntervalMs = 1000 / (opts.maxEventsPerSecond ?? 10);
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const onError = opts.onError ?? ((err: unknown) => console.error('dashboard:', err));

  const bank = await openBank(opts.location, opts.bank);
  let commits = 0;
  let pipelineSubscribed = false;

  // One pipeline for all clients: reading the shards once is the point of a shared
  // subscription, and the replayed latest state lets a new page render at once.
  // refCount stops it when the last page goes away; the next page starts a fresh
  // one as of then (db.subscribe$ picks the as-of at subscription time).
  const states$: Observable<DashboardEvent> = defer(() => {
    pipelineSubscribed = true;
    return bankState$(bank);
  }).pipe(
    // The wire shape, built once per state and shared by every client.
    map((s) => toEvent(s, bank.expectedTotal, commits)),
    finalize(() => (pipelineSubscribed = false)),
    shareReplay({ bufferSize: 1, refCount: true }),
  );

  const clients = new Set<SseClient>();
  let closing: Promise<void> | undefined;

  const server = createServer((req, res) => {
    const route = `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`;
    if (route === 'GET /' || route === 'GET /index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(PAGE);
    } else if (route === 'GET /events') {
      if (closing) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('the dashboard is shutting down\n');
        return;
      }
      const client = openSseStream(req, res, states$, { minIntervalMs, heartbeatMs, onEnd: () => clients.delete(client) });
      clients.add(client);
    } else if (route === 'GET /favicon.ico') {
      res.writeHead(204).end();
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route ${route}\n`);
    }
  });

  try {
    await listen(server, requestedPort, host);
  } catch (err) {
    await bank.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;

  const stopTransfers = new AbortController();
  const transfersDone = opts.transfers === false ? Promise.resolve() : transferUntilAborted();

  async function transferUntilAborted(): Promise<void> {
    let seed = opts.seed ?? (Date.now() % 100_000) + 1;
    try {
      while (!stopTransfers.signal.aborted) {
        const before = commits;
        await runTransfers(bank, {
          seconds: TRANSFER_ROUND_SECONDS,
          seed: seed++,
          signal: stopTransfers.signal,
          onState: (_, stats) => (commits = before + stats.commits),
        });
      }
    } catch (err) {
      onError(err);
    }
  }

  return {
    url,
    bank,
    activeClients: () => clients.size,
    pipelineRunning: () => pipelineSubscribed,
    close: () =>
      (closing ??= (async () => {
        stopTransfers.abort();
        // runTransfers resolves once its reader caught up; the bank must stay open until then.
        await transfersDone;
        for (const client of [...clients]) client.end();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Idle keep-alive sockets of page loads would otherwise hold close() open.
          server.closeAllConnections();
        });
        await bank.close();
      })()),
  };
}

function toEvent(s: BankState, expectedTotal: number, commits: number): DashboardEvent {
  return {
    frontier: s.frontier,
    total: s.total,
    expectedTotal,
    perBranch: s.perBranch,
    balances: Object.fromEntries(s.balances),
    commits,
  };
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

interface SseClient {
  /** Ends the stream from the server side (the page's EventSource would reconnect; used on shutdown). */
  end(): void;
}

/**
 * Streams `states$` to one client until it disconnects. Throttling is per client
 * with a trailing edge, so a slow page skips intermediate states but always ends up
 * on the newest; while the socket is backed up only the newest pending state is kept.
 */
function openSseStream(
  req: IncomingMessage,
  res: ServerResponse,
  states$: Observable<DashboardEvent>,
  opts: { minIntervalMs: number; heartbeatMs: number; onEnd: () => void },
): SseClient {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    // Reverse proxies (nginx) buffer responses by default, which would hold events back.
    'x-accel-buffering': 'no',
  });
  // How long a page waits before reconnecting after the stream drops.
  res.write('retry: 2000\n\n');

  let pending: string | undefined;
  let ended = false;
  const send = (frame: string): void => {
    if (res.writableNeedDrain) {
      pending = frame;
      return;
    }
    res.write(frame);
  };
  res.on('drain', () => {
    if (pending === undefined) return;
    const frame = pending;
    pending = undefined;
    res.write(frame);
  });

  // A backed-up socket is not idle, and a heartbeat must not displace a pending state.
  const heartbeat = setInterval(() => res.writableNeedDrain || res.write(': heartbeat\n\n'), opts.heartbeatMs);
  const subscription: Subscription = states$.pipe(throttleTime(opts.minIntervalMs, asyncScheduler, { leading: true, trailing: true })).subscribe({
    next: (ev) => send(`id: ${ev.frontier}\ndata: ${JSON.stringify(ev)}\n\n`),
    error: (err) => {
      // Tell the page why, then end: its EventSource reconnects and gets a fresh pipeline.
      send(`event: failure\ndata: ${JSON.stringify({ message: err instanceof Error ? err.message : String(err) })}\n\n`);
      finish();
    },
    complete: () => finish(),
  });

  function cleanUp(): void {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    subscription.unsubscribe();
    opts.onEnd();
  }
  function finish(): void {
    cleanUp();
    if (!res.writableEnded) res.end();
  }
  // 'close' fires when the client goes away as well as after we end the response.
  res.on('close', cleanUp);
  req.on('error', cleanUp);

  return { end: finish };
}

/**
 * The page. Elements a test (or a curious reader) can rely on:
 * `#status` (`data-state` "connecting", then "live"; "down" while reconnecting),
 * `#events` (states received), `#frontier`, `#total`, `#expected-total`, `#commits`,
 * `#invariant` (`data-ok="true|false"`), rows `tr[data-branch]` with
 * `data-branch-total`, and rows `tr[data-account]` with `data-balance`.
 * `document.title` ends in "live" once the first state arrived.
 *
 * `/?stopAfter=N` closes the stream after N states and says so in `#status`
 * (`data-state="stopped"`): a frozen view of a live run. Headless browsers need it to
 * dump the page at all — an open EventSource is a network fetch that never ends, and
 * `--virtual-time-budget` does not advance while one is pending.
 */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>txnwal bank dashboard</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; margin: 0 0 .5rem; }
  .summary span.value { font-variant-numeric: tabular-nums; font-weight: 600; }
  .summary div { margin: .2rem 0; }
  #invariant { padding: .1rem .5rem; border-radius: .6rem; color: #fff; background: #888; }
  #invariant[data-ok="true"] { background: #1a7f37; }
  #invariant[data-ok="false"] { background: #cf222e; }
  #status[data-state="live"] { color: #1a7f37; }
  #status[data-state="down"] { color: #cf222e; }
  table { border-collapse: collapse; margin-top: .8rem; }
  th, td { padding: .15rem .7rem; text-align: right; font-variant-numeric: tabular-nums; }
  th:first-child, td:first-child { text-align: left; }
  tr:nth-child(even) td { background: #f4f4f4; }
  td.changed { transition: none; background: #fff3b0 !important; }
  td { transition: background 1s; }
</style>
</head>
<body>
<h1>txnwal bank <span id="status" data-state="connecting">connecting…</span></h1>
<div class="summary">
  <div>frontier <span class="value" id="frontier">–</span> · commits <span class="value" id="commits">–</span>
    · states received <span class="value" id="events">0</span></div>
  <div>total <span class="value" id="total">–</span> of <span class="value" id="expected-total">–</span>
    <span id="invariant" data-ok="unknown">invariant ?</span></div>
</div>
<table id="branches"><thead><tr><th>branch</th><th>total</th></tr></thead><tbody></tbody></table>
<table id="accounts"><thead><tr><th>account</th><th>balance</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const branchRows = new Map();
const accountRows = new Map();

// Creates a row once and afterwards only touches the cells that changed, so the
// page does not flicker and highlights what moved.
function upsertRow(rows, tbody, key, attribute, label) {
  let row = rows.get(key);
  if (!row) {
    row = document.createElement("tr");
    row.setAttribute(attribute, key);
    row.innerHTML = "<td></td><td></td>";
    row.cells[0].textContent = label;
    tbody.appendChild(row);
    rows.set(key, row);
  }
  return row;
}
function setCell(row, valueAttribute, value) {
  const text = String(value);
  if (row.getAttribute(valueAttribute) === text) return;
  const first = !row.hasAttribute(valueAttribute);
  row.setAttribute(valueAttribute, text);
  const cell = row.cells[1];
  cell.textContent = text;
  if (!first) {
    cell.classList.add("changed");
    requestAnimationFrame(() => requestAnimationFrame(() => cell.classList.remove("changed")));
  }
}

function render(state) {
  $("frontier").textContent = String(state.frontier);
  $("commits").textContent = String(state.commits);
  $("total").textContent = String(state.total);
  $("expected-total").textContent = String(state.expectedTotal);
  const ok = state.total === state.expectedTotal;
  const badge = $("invariant");
  badge.dataset.ok = String(ok);
  badge.textContent = ok ? "invariant OK" : "invariant VIOLATED";
  const branchBody = $("branches").tBodies[0];
  state.perBranch.forEach((sum, b) => setCell(upsertRow(branchRows, branchBody, String(b), "data-branch", "branch " + b), "data-branch-total", sum));
  const accountBody = $("accounts").tBodies[0];
  for (const name of Object.keys(state.balances).sort()) {
    setCell(upsertRow(accountRows, accountBody, name, "data-account", name), "data-balance", state.balances[name]);
  }
}

function setStatus(state, text) {
  const status = $("status");
  status.dataset.state = state;
  status.textContent = text;
  document.title = "txnwal bank · " + text;
}

const stopAfter = Number(new URLSearchParams(location.search).get("stopAfter") ?? Infinity);
let received = 0;
const events = new EventSource("/events");
events.onmessage = (message) => {
  render(JSON.parse(message.data));
  $("events").textContent = String(++received);
  if (received >= stopAfter) {
    events.close();
    setStatus("stopped", "stopped after " + received + " states (reload to resume)");
  } else if ($("status").dataset.state !== "live") {
    setStatus("live", "live");
  }
};
events.addEventListener("failure", (message) => setStatus("down", "pipeline failed: " + JSON.parse(message.data).message));
// EventSource reconnects by itself; say so instead of showing stale numbers as live.
events.onerror = () => setStatus("down", events.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…");
</script>
</body>
</html>
`;
