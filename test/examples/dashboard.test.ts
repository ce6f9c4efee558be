/**
 * examples/dashboard, as a user meets it: the program started as a child process
 * (port 0, a temp --dir), its page driven in headless Chromium through
 * playwright-core, its SSE stream read by a plain HTTP client, then Ctrl-C (SIGINT)
 * with a page and a stream still open. And, in-process, the server's lifecycle:
 * several pages share the one pipeline, close() ends everything, a taken port is a
 * clear error.
 *
 * Chromium: `TXNWAL_TEST_CHROMIUM`, or `/usr/bin/chromium`, installed by the test
 * when missing (test/support/chromium.ts). Without it the browser test FAILS and says
 * how to provide it; it is never skipped.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM_INSTALL_TIMEOUT_MS, testChromium } from '../support/chromium.js';
import { applyDelta, type Delta, type Snapshot } from '../../examples/dashboard/protocol.js';
import { startDashboard } from '../../examples/dashboard/server.js';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const mainScript = fileURLToPath(new URL('../../examples/dashboard/main.ts', import.meta.url));

interface Frame {
  event: string;
  data: unknown;
  /** Length of the data line(s), in characters. */
  size: number;
}

interface SseRead {
  frames: Frame[];
  comments: string[];
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Connects to an SSE endpoint and parses frames as they come; resolves once `until(read)` holds. */
function readSse(url: string, until: (r: SseRead) => boolean, timeoutMs = 60_000): Promise<SseRead> {
  return new Promise((resolve, reject) => {
    let endedResolve!: () => void;
    const read: SseRead = {
      frames: [],
      comments: [],
      ended: new Promise((r) => (endedResolve = r)),
      close: () => req.destroy(),
    };
    let settled = false;
    const timer = setTimeout(() => settle(new Error(`SSE: timed out; got ${read.frames.length} frames`)), timeoutMs);
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
    const req = http.get(url, (res) => {
      if (res.statusCode !== 200) return settle(new Error(`SSE: HTTP ${res.statusCode}`));
      if (!/^text\/event-stream/.test(res.headers['content-type'] ?? '')) return settle(new Error(`SSE: content-type ${res.headers['content-type']}`));
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const lines = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          read.comments.push(...lines.filter((l) => l.startsWith(':')));
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice('data: '.length));
          if (data.length === 0) continue;
          const event = lines.find((l) => l.startsWith('event: '))?.slice('event: '.length) ?? 'message';
          read.frames.push({ event, data: JSON.parse(data.join('\n')), size: data.join('\n').length });
        }
        if (until(read)) settle();
      });
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

async function eventually(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sum = (xs: Iterable<number>): number => [...xs].reduce((a, b) => a + b, 0);

/** Checks one consistent bank state: balances, branch totals and the total agree. */
function expectConsistent(s: Snapshot, what: string): void {
  const accounts = s.branches.flatMap((b) => b.accounts);
  expect(Object.keys(s.balances), `${what}: accounts`).to.have.members(accounts);
  expect(sum(Object.values(s.balances)), `${what}: balances add up to the total`).to.equal(s.total);
  expect(s.total, `${what}: total at frontier ${s.frontier}`).to.equal(s.expectedTotal);
  // Each branch total is exactly its accounts' balances: no torn read, no lost delta.
  expect(s.branches.map((b) => sum(b.accounts.map((a) => s.balances[a]!))), `${what}: branch totals`).to.deep.equal(s.perBranch);
  expect(s.invariantOk, `${what}: invariant`).to.equal(true);
}

/**
 * The pixels of a PNG (8-bit RGB or RGBA, not interlaced: what Chromium writes), as
 * one 0xRRGGBB number each: chunks parsed, IDAT inflated, scanline filters undone.
 */
function decodePng(png: Buffer): { width: number; height: number; pixels: Uint32Array } {
  expect(png.subarray(0, 8).toString('hex'), 'PNG signature').to.equal('89504e470d0a1a0a');
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const body = png.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const [depth, colour, , , interlace] = [body[8], body[9], body[10], body[11], body[12]];
      expect({ depth, interlace }, 'PNG format').to.deep.equal({ depth: 8, interlace: 0 });
      channels = colour === 6 ? 4 : colour === 2 ? 3 : 0;
      expect(channels, `PNG colour type ${colour}`).to.be.greaterThan(0);
    } else if (type === 'IDAT') {
      idat.push(body);
    }
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const rows = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = rows.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? rows.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? out[i - channels]! : 0;
      const b = prev[i]!;
      const c = i >= channels ? prev[i - channels]! : 0;
      let predictor = 0;
      if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[i] = (line[i]! + predictor) & 0xff;
    }
  }
  const pixels = new Uint32Array(width * height);
  for (let p = 0; p < pixels.length; p++) {
    const o = p * channels;
    pixels[p] = (rows[o]! << 16) | (rows[o + 1]! << 8) | rows[o + 2]!;
  }
  return { width, height, pixels };
}

async function launchChromium(): Promise<Browser> {
  // launch() (not launchPersistentContext) runs on a fresh, temporary user-data-dir.
  return chromium.launch({ executablePath: await testChromium(), args: CHROMIUM_ARGS });
}

describe('examples: dashboard', function () {
  this.timeout(120_000);
  let dir: string;

  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-dashboard-test-'));
    // Found, or installed on a fresh machine, before any test's own timeout starts.
    this.timeout(CHROMIUM_INSTALL_TIMEOUT_MS);
    await testChromium().catch(() => undefined); // the browser test reports a failure itself
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('the program (npm run dashboard) in a child process', () => {
    let child: ChildProcess;
    let url: string;
    let stdout = '';
    let stderr = '';
    let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
    let browser: Browser | undefined;

    before(async () => {
      child = spawn(process.execPath, ['--import', 'tsx', mainScript, '--dir', path.join(dir, 'cli'), '--port', '0', '--seed', '3'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() })));
      await eventually('the program prints its URL', () => /dashboard: http:\/\/\S+/.test(stdout) || child.exitCode !== null, 60_000);
      const printed = /dashboard: (http:\/\/\S+)/.exec(stdout)?.[1];
      expect(printed, `stdout:\n${stdout}\nstderr:\n${stderr}`).to.be.a('string');
      url = printed!;
    });
    after(async () => {
      await browser?.close();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    it('streams a snapshot, then deltas that carry only what changed and add up to consistent states', async () => {
      // Until 8 deltas moved balances and a once-a-second figures tick counted acknowledged
      // transfers: balances can move faster than the first tick comes.
      const read = await readSse(
        `${url}events`,
        (r) =>
          r.frames.filter((f) => f.event === 'delta' && (f.data as Delta).balances).length >= 8 &&
          r.frames.some((f) => f.event === 'delta' && ((f.data as Delta).commits ?? 0) > 0),
      );
      read.close();
      const [first, ...rest] = read.frames;
      expect(first!.event, 'the first frame').to.equal('snapshot');
      let state = first!.data as Snapshot;
      expect(state.branches.flatMap((b) => b.accounts)).to.have.length(100);
      expectConsistent(state, 'the snapshot');
      expect(rest.map((f) => f.event), 'every later frame').to.satisfy((events: string[]) => events.every((e) => e === 'delta'));
      for (const [i, frame] of rest.entries()) {
        const delta = frame.data as Delta;
        if (delta.frontier !== undefined) expect(delta.frontier, `delta ${i}: the frontier only moves up`).to.be.greaterThan(state.frontier);
        // Never the bank's layout again: that is in the snapshot.
        expect(delta, `delta ${i}`).not.to.have.any.keys('branches', 'expectedTotal', 'transfers');
        state = applyDelta(state, delta);
        expectConsistent(state, `after delta ${i}`);
      }
      // Only what changed: how much a delta carries depends on how many transfers met
      // in one frame's window (the load), so this checks the smallest and the median.
      const carried = rest.map((f) => Object.keys((f.data as Delta).balances ?? {}).length).filter((n) => n > 0);
      expect(Math.min(...carried), 'fewest balances in a delta that has any').to.be.lessThan(100);
      const sizes = rest.map((f) => f.size).sort((a, b) => a - b);
      expect(sizes[Math.floor(sizes.length / 2)], 'median delta size vs the snapshot (characters)').to.be.lessThan(first!.size);
      expect(state.commits, 'transfers were acknowledged').to.be.greaterThan(0);
    });

    it('renders the bank in headless Chromium: a non-blank page whose numbers move, the invariant OK', async () => {
      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const pageErrors: string[] = [];
      page.on('pageerror', (err) => pageErrors.push(err.message));
      await page.goto(url);
      await page.waitForSelector('#status[data-state="live"]');
      // Waiting for events, never a fixed sleep: a second's sample with commits in it.
      await page.waitForFunction('Number(document.getElementById("commits-per-sec").textContent.replace(/,/g, "")) > 0', undefined, { timeout: 60_000 });
      const frontier = await page.textContent('#frontier');
      expect(Number(frontier!.replace(/,/g, '')), 'rendered frontier').to.be.greaterThan(0);
      await page.waitForFunction(`document.getElementById("frontier").textContent !== ${JSON.stringify(frontier)}`, undefined, { timeout: 60_000 });
      await page.waitForFunction('Number(document.getElementById("rate-chart").dataset.points) >= 2', undefined, { timeout: 60_000 });

      expect(await page.textContent('#invariant')).to.equal('invariant OK');
      expect(await page.getAttribute('#invariant', 'data-ok')).to.equal('true');
      const expectedTotal = Number((await page.textContent('#expected-total'))!.replace(/,/g, ''));
      expect(Number((await page.textContent('#total'))!.replace(/,/g, '')), 'rendered total').to.equal(expectedTotal);
      const balances = await page.$$eval('[data-account]', (cells) => cells.map((c) => Number(c.getAttribute('data-balance'))));
      expect(balances, 'heatmap cells').to.have.length(100);
      expect(sum(balances), 'rendered balances add up (one consistent state)').to.equal(expectedTotal);
      const collections = await page.$$eval('tr[data-collection]', (rows) => rows.map((r) => r.getAttribute('data-collection')));
      expect(collections).to.have.members(['bank', 'branch0', 'branch1', 'branch2', 'branch3']);
      const lagText = await page.textContent('#lag-p50');
      expect(Number(lagText), `commit → view lag p50 (${lagText} ms)`).to.be.a('number').and.not.NaN;

      const shot = decodePng(await page.screenshot());
      expect([shot.width, shot.height]).to.deep.equal([1280, 800]);
      const counts = new Map<number, number>();
      for (const p of shot.pixels) counts.set(p, (counts.get(p) ?? 0) + 1);
      const commonest = Math.max(...counts.values());
      expect(counts.size, 'distinct colours in the screenshot').to.be.greaterThan(100);
      expect(commonest / shot.pixels.length, 'share of the commonest colour (a blank page is ~1)').to.be.lessThan(0.6);
      expect(pageErrors, 'errors in the page').to.deep.equal([]);
    });

    it('on SIGINT, with a page and a stream open, closes everything and exits 0 within 2 s', async () => {
      const page = await (browser ?? (browser = await launchChromium())).newPage();
      await page.goto(url);
      await page.waitForSelector('#status[data-state="live"]');
      const read = await readSse(`${url}events`, (r) => r.frames.length >= 2);
      const sent = performance.now();
      child.kill('SIGINT');
      let giveUp: NodeJS.Timeout | undefined;
      const { code, signal, at } = await Promise.race([
        exited,
        new Promise<never>((_, reject) => {
          giveUp = setTimeout(() => reject(new Error(`no exit within 10 s of SIGINT; stdout:\n${stdout}\nstderr:\n${stderr}`)), 10_000);
        }),
      ]).finally(() => clearTimeout(giveUp));
      await read.ended;
      expect({ code, signal }, `stderr:\n${stderr}`).to.deep.equal({ code: 0, signal: null });
      expect(at - sent, `ms from SIGINT to exit; stdout:\n${stdout}\nstderr:\n${stderr}`).to.be.lessThan(2000);
      expect(stdout).to.include('SIGINT: closing');
      await page.waitForSelector('#status[data-state="down"]');
    });
  });

  describe('the server, in-process', () => {
    it('serves several pages from one pipeline: readers of the shards do not grow with pages', async () => {
      const dashboard = await startDashboard({ location: `file:${path.join(dir, 'shared')}`, seed: 7, heartbeatMs: 200 });
      try {
        const branch0 = (await dashboard.bank.db.collection('branch0')).shardId;
        const readersOfBranch0 = () => dashboard.bank.db.client.shardMachine(branch0).state.leasedReaders.size;
        const before = readersOfBranch0();
        const pages = await Promise.all([1, 2, 3].map(() => readSse(`${dashboard.url}events`, (r) => r.frames.length >= 3 && r.comments.length >= 1)));
        expect(dashboard.activeClients()).to.equal(3);
        expect(readersOfBranch0(), 'leased readers of branch0 with three pages open').to.equal(before);
        for (const p of pages) expect(p.frames[0]!.event).to.equal('snapshot');
        expect(pages[0]!.comments).to.include(': heartbeat');
        for (const p of pages) p.close();
        await eventually('every page is gone', () => dashboard.activeClients() === 0);
        expect((await get(`${dashboard.url}nope`)).status).to.equal(404);
        const state = JSON.parse((await get(`${dashboard.url}state`)).body) as Snapshot;
        expectConsistent(state, 'GET /state');
      } finally {
        await dashboard.close();
      }
    });

    it('close() ends open streams and the server, and is idempotent', async () => {
      const own = await startDashboard({ location: `file:${path.join(dir, 'close')}` });
      const read = await readSse(`${own.url}events`, (r) => r.frames.length >= 1);
      expect(own.activeClients()).to.equal(1);
      await Promise.all([own.close(), own.close()]);
      await read.ended;
      expect(own.activeClients()).to.equal(0);
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
  });
});
