/**
 * examples/dashboard: the SSE stream's contract, the page (rendered in headless
 * Chromium when `/usr/bin/chromium` exists, otherwise checked as HTML source), and
 * the lifecycle: disconnecting clients are unsubscribed, close() and SIGINT leave
 * nothing running, a taken port gives a clear error.
 *
 * Set DASHBOARD_TEST_NO_BROWSER=1 to take the no-browser path on a machine that has
 * Chromium (that is what CI does by default).
 */
import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDashboard, type Dashboard, type DashboardEvent } from '../../examples/dashboard/server.js';

const CHROMIUM = '/usr/bin/chromium';
const browser = existsSync(CHROMIUM) && !process.env.DASHBOARD_TEST_NO_BROWSER ? CHROMIUM : undefined;
const pageMode = browser
  ? `dashboard checked in headless Chromium (${browser})`
  : `no ${CHROMIUM}: checked the page's HTML source (the SSE stream is checked in its own test)`;
const mainScript = fileURLToPath(new URL('../../examples/dashboard/main.ts', import.meta.url));

interface SseRead {
  events: DashboardEvent[];
  /** When each event arrived (ms, performance.now()). */
  arrivals: number[];
  /** Comment lines (heartbeats). */
  comments: string[];
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
  /** Disconnects. */
  close(): void;
}

/**
 * Connects to an SSE endpoint and parses frames as they come; resolves once `until`
 * holds for what was read so far (the connection stays open until `close()`).
 */
function readSse(url: string, until: (r: SseRead) => boolean, timeoutMs = 30_000): Promise<SseRead> {
  return new Promise((resolve, reject) => {
    let endedResolve!: () => void;
    const read: SseRead = {
      events: [],
      arrivals: [],
      comments: [],
      ended: new Promise<void>((r) => (endedResolve = r)),
      close: () => req.destroy(),
    };
    let settled = false;
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        req.destroy();
        reject(err);
      } else {
        resolve(read);
      }
    };
    const timer = setTimeout(
      () => settle(new Error(`SSE: condition not met within ${timeoutMs} ms (${read.events.length} events, ${read.comments.length} comments)`)),
      timeoutMs,
    );
    const req = http.get(url, (res) => {
      if (res.statusCode !== 200) return settle(new Error(`SSE: HTTP ${res.statusCode}`));
      if (!/^text\/event-stream/.test(res.headers['content-type'] ?? '')) return settle(new Error(`SSE: content-type ${res.headers['content-type']}`));
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = frame.split('\n');
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice('data: '.length));
          const eventType = lines.find((l) => l.startsWith('event: '));
          read.comments.push(...lines.filter((l) => l.startsWith(':')));
          if (eventType) return settle(new Error(`SSE: unexpected ${eventType}: ${data.join('\n')}`));
          if (data.length > 0) {
            read.events.push(JSON.parse(data.join('\n')) as DashboardEvent);
            read.arrivals.push(performance.now());
          }
        }
        if (until(read)) settle();
      });
      res.on('end', endedResolve);
      res.on('close', endedResolve);
    });
    req.on('error', (err) => {
      endedResolve();
      settle(err);
    });
  });
}

function get(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
      })
      .on('error', reject);
  });
}

async function eventually(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sum = (xs: Iterable<number>): number => [...xs].reduce((a, b) => a + b, 0);

/** The attributes of every opening tag that has `attribute`, from serialized HTML. */
function tagsWith(html: string, attribute: string): Record<string, string>[] {
  const tags: Record<string, string>[] = [];
  for (const [tag] of html.matchAll(new RegExp(`<[a-z]+\\s[^>]*\\b${attribute}="[^"]*"[^>]*>`, 'g'))) {
    tags.push(Object.fromEntries([...tag.matchAll(/([a-z-]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!])));
  }
  return tags;
}

/** The text of the element with `id` (a leaf: no nested tags). */
function textOf(html: string, id: string): string | undefined {
  return new RegExp(`<[a-z]+\\s[^>]*\\bid="${id}"[^>]*>([^<]*)<`).exec(html)?.[1];
}

describe('examples: dashboard', function () {
  this.timeout(120_000);
  let dir: string;
  let dashboard: Dashboard;

  before(async () => {
    console.log(`      ${pageMode}`);
    dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-dashboard-test-'));
    dashboard = await startDashboard({ location: `file:${path.join(dir, 'shared')}`, seed: 7, heartbeatMs: 250 });
  });
  after(async () => {
    await dashboard?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('streams one consistent state per event over SSE, at most ~10 per second, with heartbeats', async () => {
    const expectedTotal = dashboard.bank.expectedTotal;
    const read = await readSse(`${dashboard.url}events`, (r) => r.events.length >= 6 && r.comments.length >= 1);
    read.close();
    const { events, arrivals } = read;
    let previous = -Infinity;
    for (const ev of events) {
      expect(ev.frontier, 'frontier strictly increases').to.be.greaterThan(previous);
      previous = ev.frontier;
      expect(ev.expectedTotal).to.equal(expectedTotal);
      expect(ev.total, `total at frontier ${ev.frontier}`).to.equal(expectedTotal);
      expect(sum(ev.perBranch), 'branch totals add up to the total').to.equal(ev.total);
      expect(Object.keys(ev.balances)).to.have.length(dashboard.bank.accounts.size);
      expect(sum(Object.values(ev.balances)), 'balances add up to the total').to.equal(ev.total);
      // Each branch total is exactly its accounts' balances: no torn read across shards.
      const byBranch = ev.perBranch.map(() => 0);
      for (const [account, balance] of Object.entries(ev.balances)) byBranch[dashboard.bank.accounts.get(account)!]! += balance;
      expect(byBranch).to.deep.equal(ev.perBranch);
    }
    // Transfers are running, so the later states show commits.
    expect(events.at(-1)!.commits).to.be.greaterThan(0);
    // Throttled to one state per 100 ms after the first: 6 events cannot arrive in
    // under ~500 ms (checked loosely: arrival times are measured on a shared event loop).
    expect(arrivals.at(-1)! - arrivals[0]!, 'time spanned by 6 events (ms)').to.be.greaterThan(300);
    expect(read.comments).to.include(': heartbeat');
  });

  it(pageMode, async () => {
    if (browser) {
      // The page stops listening after `stopAfter` states: with an EventSource open,
      // Chromium's virtual time never runs out and --dump-dom would wait forever.
      const stopAfter = 8;
      const profile = await mkdtemp(path.join(dir, 'chromium-profile-'));
      const args = [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        `--user-data-dir=${profile}`,
        '--virtual-time-budget=5000',
        '--dump-dom',
        `${dashboard.url}?stopAfter=${stopAfter}`,
      ];
      const html = await new Promise<string>((resolve, reject) => {
        execFile(browser, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
          if (err) return reject(new Error(`${browser} failed: ${err.message}\n${stderr.slice(-2000)}`));
          resolve(stdout);
        });
      });
      expect(tagsWith(html, 'data-state')[0]?.['data-state'], 'status after the page stopped listening').to.equal('stopped');
      expect(textOf(html, 'events'), 'states the page received').to.equal(String(stopAfter));
      const total = Number(textOf(html, 'total'));
      expect(textOf(html, 'expected-total')).to.equal(String(dashboard.bank.expectedTotal));
      expect(total, 'rendered total').to.equal(dashboard.bank.expectedTotal);
      expect(Number(textOf(html, 'frontier')), 'rendered frontier').to.be.greaterThan(0);
      expect(textOf(html, 'invariant')).to.equal('invariant OK');
      const branches = tagsWith(html, 'data-branch-total');
      expect(branches).to.have.length(dashboard.bank.branches.length);
      expect(sum(branches.map((b) => Number(b['data-branch-total']))), 'rendered branch totals add up').to.equal(total);
      const accounts = tagsWith(html, 'data-account');
      expect(accounts.map((a) => a['data-account'])).to.have.members([...dashboard.bank.accounts.keys()]);
      expect(sum(accounts.map((a) => Number(a['data-balance']))), 'rendered balances add up').to.equal(total);
      // The page closed its EventSource: the server let go of it.
      await eventually('the page’s SSE client is gone', () => dashboard.activeClients() === 0);
    } else {
      const page = await get(dashboard.url);
      expect(page.status).to.equal(200);
      expect(page.type).to.match(/^text\/html/);
      expect(page.body).to.include('new EventSource("/events")');
      for (const id of ['status', 'frontier', 'total', 'expected-total', 'invariant', 'branches', 'accounts', 'events']) {
        expect(page.body, `element #${id}`).to.include(`id="${id}"`);
      }
      for (const attribute of ['data-account', 'data-balance', 'data-branch', 'data-branch-total']) {
        expect(page.body, attribute).to.include(`"${attribute}"`);
      }
      // Self-contained: nothing loaded from elsewhere.
      expect(page.body).not.to.match(/\s(src|href)=/);
    }
  });

  it('unsubscribes a client that disconnects, and stops the shared pipeline when none is left', async () => {
    await eventually('no client is left from earlier tests', () => dashboard.activeClients() === 0);
    expect(dashboard.pipelineRunning()).to.equal(false);
    const first = await readSse(`${dashboard.url}events`, (r) => r.events.length >= 1);
    const second = await readSse(`${dashboard.url}events`, (r) => r.events.length >= 1);
    expect(dashboard.activeClients()).to.equal(2);
    expect(dashboard.pipelineRunning()).to.equal(true);
    first.close();
    await eventually('one client is left', () => dashboard.activeClients() === 1);
    expect(dashboard.pipelineRunning(), 'still needed by the second client').to.equal(true);
    second.close();
    await eventually('no client is left', () => dashboard.activeClients() === 0);
    await eventually('the pipeline stopped', () => !dashboard.pipelineRunning());
  });

  it('answers 404 on unknown paths', async () => {
    expect((await get(`${dashboard.url}nope`)).status).to.equal(404);
  });

  describe('lifecycle', () => {
    it('close() ends open streams, stops transfers and the server, and is idempotent', async () => {
      const own = await startDashboard({ location: `file:${path.join(dir, 'close')}` });
      const read = await readSse(`${own.url}events`, (r) => r.events.length >= 1);
      expect(own.activeClients()).to.equal(1);
      await Promise.all([own.close(), own.close()]);
      await read.ended;
      expect(own.activeClients()).to.equal(0);
      expect(own.pipelineRunning()).to.equal(false);
      const refused = await get(own.url).then(
        () => undefined,
        (err: NodeJS.ErrnoException) => err.code,
      );
      expect(refused).to.equal('ECONNREFUSED');
    });

    it('names the port and the --port option when the port is taken', async () => {
      const blocker = net.createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
      const { port } = blocker.address() as net.AddressInfo;
      try {
        const err = await startDashboard({ location: `file:${path.join(dir, 'port')}`, port }).then(
          async (d) => {
            await d.close();
            return undefined;
          },
          (e: Error) => e,
        );
        expect(err?.message).to.match(new RegExp(`port ${port}\\b.*already in use.*--port`));
      } finally {
        await new Promise((r) => blocker.close(r));
      }
    });

    it('the CLI serves the page, and on SIGINT closes everything and exits by itself', async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', mainScript, '--dir', path.join(dir, 'cli'), '--port', '0', '--seed', '3'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on('exit', (code, signal) => resolve({ code, signal })),
      );
      try {
        await eventually('the CLI prints its URL', () => /dashboard: http:\/\/\S+/.test(stdout) || child.exitCode !== null, 60_000);
        const url = /dashboard: (http:\/\/\S+)/.exec(stdout)?.[1];
        expect(url, `stdout:\n${stdout}\nstderr:\n${stderr}`).to.be.a('string');
        expect((await get(url!)).body).to.include('new EventSource');
        const read = await readSse(`${url}events`, (r) => r.events.length >= 2);
        expect(read.events.at(-1)!.total).to.equal(read.events.at(-1)!.expectedTotal);
        child.kill('SIGINT');
        // Exiting on its own within the timeout means no timer, socket or reader was left behind.
        let giveUp: NodeJS.Timeout | undefined;
        const { code, signal } = await Promise.race([
          exited,
          new Promise<never>((_, reject) => {
            giveUp = setTimeout(() => reject(new Error(`the CLI did not exit within 30 s of SIGINT; stdout:\n${stdout}`)), 30_000);
          }),
        ]).finally(() => clearTimeout(giveUp));
        await read.ended;
        expect({ code, signal }, `stderr:\n${stderr}`).to.deep.equal({ code: 0, signal: null });
        expect(stdout).to.include('SIGINT: closing');
        expect(stdout).to.include('closed');
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    });
  });
});
