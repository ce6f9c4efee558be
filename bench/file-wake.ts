/**
 * The two candidates for the `file:` wake-up channel, measured side by side
 * (`npx tsx bench/file-wake.ts`; ~10 s): a writer process commits a compare-and-set
 * to SQLite every 10 ms; a reader process, woken by the candidate, reads the head and
 * records when it first sees each seqno. Latency = that moment minus the writer's
 * acknowledgement (both clocks are the machine's). Also counted: wake-ups per commit
 * (each one costs the reader a Consensus read, for every shard it waits on).
 *
 * - `socket`: SocketStateChanges (the writer publishes after each commit);
 * - `fs.watch`: an inotify watch on the database's directory, filtered to the -wal file.
 *
 * Env: TXNWAL_BENCH_WAKE_COMMITS (default 200).
 */
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SocketStateChanges } from '../src/location/socket-state-changes.js';
import { SqliteConsensus } from '../src/location/sqlite-consensus.js';
import { envNumber, printHelp, quantile, renderTable } from './support.js';

const COMMITS = envNumber('TXNWAL_BENCH_WAKE_COMMITS', 200);
const now = () => performance.timeOrigin + performance.now();
const KEY = 'bench-shard';

async function writer(dir: string, mode: string): Promise<void> {
  const consensus = await SqliteConsensus.open(path.join(dir, 'consensus.sqlite'));
  const changes = mode === 'socket' ? await SocketStateChanges.open(dir) : undefined;
  const data = new Uint8Array(64);
  process.stdout.write('ready\n');
  await new Promise<void>((r) => process.stdin.once('data', () => r()));
  const acks: number[] = [];
  for (let seqno = 2; seqno < COMMITS + 2; seqno++) {
    await consensus.compareAndSet(KEY, seqno - 1, { seqno, data });
    changes?.publish(KEY, seqno);
    acks[seqno] = now();
    await new Promise((r) => setTimeout(r, 10));
  }
  process.stdout.write(JSON.stringify(acks) + '\n');
  process.stdin.destroy();
  await changes?.close();
  await consensus.close();
}

async function reader(mode: 'socket' | 'fs.watch'): Promise<{ latencies: number[]; wakeups: number }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-bench-wake-'));
  try {
    const consensus = await SqliteConsensus.open(path.join(dir, 'consensus.sqlite'));
    await consensus.compareAndSet(KEY, undefined, { seqno: 1, data: new Uint8Array(64) });
    const seen: number[] = [];
    let wakeups = 0;
    let known = 1;
    const look = async () => {
      wakeups++;
      const head = await consensus.head(KEY);
      const t = now();
      for (let s = known + 1; head && s <= head.seqno; s++) seen[s] = t;
      if (head) known = Math.max(known, head.seqno);
    };
    let stop: () => void;
    let changes: SocketStateChanges | undefined;
    if (mode === 'socket') {
      changes = await SocketStateChanges.open(dir);
      stop = changes.watch(KEY, () => void look());
    } else {
      const w = watch(dir, (_event, file) => {
        if (file === 'consensus.sqlite-wal') void look();
      });
      stop = () => w.close();
    }
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'writer', dir, mode], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = lineQueue(child.stdout!);
    await lines(); // ready
    child.stdin!.write('go\n');
    const acks = JSON.parse(await lines()) as number[];
    await new Promise((r) => child.once('exit', r));
    stop();
    await changes?.close();
    await consensus.close();
    const latencies: number[] = [];
    for (let s = 2; s < COMMITS + 2; s++) latencies.push(seen[s] === undefined ? Infinity : seen[s]! - acks[s]!);
    return { latencies, wakeups };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The next line from `input`, each time it is called. */
function lineQueue(input: NodeJS.ReadableStream): () => Promise<string> {
  const queued: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  readline.createInterface({ input }).on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else queued.push(line);
  });
  return () => (queued.length > 0 ? Promise.resolve(queued.shift()!) : new Promise((r) => waiting.push(r)));
}

if (printHelp('npx tsx bench/file-wake.ts   (env: TXNWAL_BENCH_WAKE_COMMITS, default 200)')) {
  // printed
} else if (process.argv[2] === 'writer') {
  await writer(process.argv[3]!, process.argv[4]!);
} else {
  const rows: string[][] = [];
  for (const mode of ['socket', 'fs.watch'] as const) {
    const { latencies, wakeups } = await reader(mode);
    const sorted = latencies.sort((a, b) => a - b);
    const missed = sorted.filter((x) => x === Infinity).length;
    rows.push([
      mode,
      quantile(sorted, 0.5).toFixed(2),
      quantile(sorted, 0.99).toFixed(2),
      sorted.filter((x) => x !== Infinity).at(-1)!.toFixed(2),
      (wakeups / COMMITS).toFixed(2),
      String(missed),
    ]);
  }
  console.log(`file: wake-up candidates, ${COMMITS} commits every 10 ms, writer and reader in two processes`);
  console.log(renderTable(['candidate', 'p50 ms', 'p99 ms', 'max ms', 'wake-ups/commit', 'never seen'], rows));
}
