/**
 * Shared by the `txnwal` command's tests: the BUILT command (compiled once per test
 * process, the way `npm run build` compiles it, into a temp directory laid out like
 * the installed package), ways to run it, and stores made with the library.
 *
 * - {@link builtCli} compiles `src/` with tsconfig.build.json into `<tmp>/dist` on
 *   first use (about 20 s), with `proto/`, `package.json` and `node_modules` linked
 *   beside it, so `dist/cli/main.js` runs as it does from the package; the build is
 *   removed after the run.
 * - {@link runCli} runs it to completion ({@link runChild}: never rejects on a
 *   non-zero exit); {@link spawnCli} starts a long-running one (`tail`).
 * - {@link makeBank} makes a database with two collections and a few commits;
 *   {@link leaveUnapplied} commits one more transaction through a TxnsHandle of its
 *   own and does NOT apply it; {@link consensusHeads} records every Consensus key's
 *   head seqno, to show a command changed nothing.
 *
 * Example:
 * ```ts
 * const r = await runCli(['inspect', 'file:/tmp/x', '--json']);
 * expect(r.code).to.equal(0);
 * ```
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, symlink, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Codecs, openDatabase, PersistClient, TxnsCache, TxnsHandle, type CollectionInfo, type Database, type ShardId } from '../../src/index.js';
import { TxnsCodecDefault } from '../../src/txn/txns-codec.js';
import { openLocation } from '../../src/location/location.js';
import { runChild, type ChildResult } from '../support/run-child.js';
import { testMetrics } from '../support/txn.js';

const repo = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BYTES = { key: Codecs.bytes, val: Codecs.bytes };

let building: Promise<{ dir: string; main: string }> | undefined;

/** The built `dist/cli/main.js` (compiled on first call). */
export function builtCli(): Promise<string> {
  building ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-cli-build-'));
    const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await runChild(process.execPath, [tsc, '-p', path.join(repo, 'tsconfig.build.json'), '--outDir', path.join(dir, 'dist')], {
      cwd: repo,
      timeoutMs: 110_000,
    });
    if (r.code !== 0) throw new Error(`building the command failed:\n${r.stdout}\n${r.stderr}`);
    await symlink(path.join(repo, 'proto'), path.join(dir, 'proto'), 'dir');
    await symlink(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    await copyFile(path.join(repo, 'package.json'), path.join(dir, 'package.json'));
    return { dir, main: path.join(dir, 'dist', 'cli', 'main.js') };
  })();
  return building.then((b) => b.main);
}

/** Removes the build; a root-level `after` hook (registered as mocha loads this module) calls it once per run. */
export async function removeBuild(): Promise<void> {
  const b = await building?.catch(() => undefined);
  if (b) await rm(b.dir, { recursive: true, force: true });
}
after(removeBuild);

/** Runs the built command with `args` to completion. */
export async function runCli(args: readonly string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<ChildResult> {
  return runChild(process.execPath, [await builtCli(), ...args], { cwd: opts.cwd, timeoutMs: opts.timeoutMs ?? 60_000 });
}

/** A running command: its process and every stdout line so far. */
export interface RunningCli {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: string[];
  stderr(): string;
  /** Resolves with the lines once `done(lines)` holds (checked at every new line); rejects if the process exits first. */
  waitFor(done: (lines: readonly string[]) => boolean, what: string): Promise<readonly string[]>;
  /** Resolves with the exit code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the built command with `args` (for `tail`). */
export async function spawnCli(args: readonly string[]): Promise<RunningCli> {
  const child = spawn(process.execPath, [await builtCli(), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of [...waiters]) w();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of [...waiters]) w();
    });
  });
  let ended = false;
  void exited.then(() => (ended = true));
  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    waitFor(done, what) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (done(lines)) {
            waiters.delete(check);
            resolve(lines);
          } else if (ended || child.exitCode !== null) {
            waiters.delete(check);
            reject(new Error(`the command exited before ${what}; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** A fresh directory under the OS temp dir. */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** A bank: `accounts` (string/unit) and `audit` (json/unit), three commits; returns the commit times. */
export async function makeBank(url: string): Promise<{ commits: number[]; db: Database }> {
  const db = await openDatabase(url);
  await db.collection('accounts', { key: Codecs.string, val: Codecs.unit });
  await db.collection('audit', { key: Codecs.json(), val: Codecs.unit });
  const commits: number[] = [];
  commits.push((await db.write({ accounts: [['alice', null, 100], ['bob', null, 5]] })).commitTs);
  commits.push((await db.write({ accounts: [['alice', null, -30], ['bob', null, 30]], audit: [[{ from: 'alice', to: 'bob', amount: 30 }, null, 1]] })).commitTs);
  commits.push((await db.write({ accounts: [['carol', null, 7]] })).commitTs);
  return { commits, db };
}

/**
 * Commits `rows` (string keys, unit values) to the collection's shard through a
 * TxnsHandle of its own on the database's txns shard, and closes without applying:
 * the commit stays unapplied (as after a crash between commit and apply). Returns
 * the commit time.
 */
export async function leaveUnapplied(url: string, txnsId: ShardId, dataId: ShardId, rows: [string, number][]): Promise<number> {
  const client = await PersistClient.open(url);
  try {
    const txns = await TxnsHandle.open(client, { txnsId, codecs: BYTES, metrics: testMetrics });
    try {
      // A taken time answers with the least free one.
      let ts = 0;
      // Registering again through this handle is a no-op write the handle needs before it commits to the shard.
      for (;;) {
        const reg = await txns.register(ts, [await client.openWriter(dataId, BYTES)]);
        if (reg.ok) break;
        ts = reg.current;
      }
      const txn = txns.begin();
      for (const [key, diff] of rows) await txn.write(dataId, Codecs.string.encode(key), Codecs.unit.encode(null), diff);
      for (ts += 1; ; ) {
        const res = await txn.commitAt(txns, ts);
        if (res.ok) return ts;
        ts = res.current;
      }
    } finally {
      await txns.close();
    }
  } finally {
    await client.close();
  }
}

/** Every Consensus key's head seqno: equal before and after a command means it wrote nothing. */
export async function consensusHeads(url: string): Promise<Record<string, number>> {
  const loc = await openLocation(url);
  try {
    const out: Record<string, number> = {};
    for (const key of await loc.consensus.listKeys()) out[key] = (await loc.consensus.head(key))!.seqno;
    return out;
  } finally {
    await loc.close();
  }
}

/** What the library itself says of a store, for comparing with the command's output. */
export interface LibraryView {
  collections: CollectionInfo[];
  txnsId: ShardId;
  /** Physical upper of each collection's data shard, by shard id. */
  uppers: Map<string, number>;
  txnsUpper: number;
  /** The committed batches not yet tidied. */
  unapplied: { ts: number; dataId: string }[];
}

/** Reads {@link LibraryView} through the library's own handles (writers' uppers, a TxnsCache). */
export async function libraryView(url: string, collections: CollectionInfo[], txnsId: ShardId): Promise<LibraryView> {
  const client = await PersistClient.open(url);
  try {
    const uppers = new Map<string, number>();
    for (const c of collections) uppers.set(c.shardId, await (await client.openWriter(c.shardId, { key: Codecs.bytes, val: Codecs.bytes })).fetchRecentUpper());
    const txnsUpper = await (await client.openWriter(txnsId, TxnsCodecDefault.codecs)).fetchRecentUpper();
    const cache = await TxnsCache.open(client, txnsId);
    await cache.updateGe(txnsUpper);
    const unapplied = cache.unapplied().flatMap((u) => (u.kind === 'batch' ? [{ ts: u.ts, dataId: u.dataId }] : []));
    await cache.expire();
    return { collections, txnsId, uppers, txnsUpper, unapplied };
  } finally {
    await client.close();
  }
}
