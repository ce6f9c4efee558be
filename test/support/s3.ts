/**
 * An S3 server for tests.
 *
 * - `TXNWAL_TEST_S3_URL` set: tests use that store as is, e.g.
 *   `TXNWAL_TEST_S3_URL='s3://my-bucket/ci?endpoint=http://127.0.0.1:9000&region=us-east-1&forcePathStyle=true'`
 *   (an s3:// URL as `openLocation` takes it; the bucket must exist; credentials come from
 *   the usual AWS environment). Each test gets a fresh random prefix under it.
 * - Otherwise the first call starts ONE s3rver child process (s3-server-child.ts) for
 *   this test process, on a mkdtemp directory and a free port, with bucket
 *   `txnwal-test`; a root-level mocha `after` hook stops it and deletes the directory.
 *   Tests that need to stop or slow the server start one of their own with
 *   {@link startS3Server}.
 * - s3rver accepts only its own demo credentials, so when this module starts a server
 *   it sets AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY to them in this process (and so
 *   in its children); with `TXNWAL_TEST_S3_URL` the environment is left alone.
 *
 * Example:
 * ```ts
 * const url = await freshTestS3Url();   // s3://txnwal-test/t-1a2b…/?endpoint=http://127.0.0.1:<port>&…
 * const blob = await S3Blob.open(url);
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const TEST_BUCKET = 'txnwal-test';
const child = fileURLToPath(new URL('./s3-server-child.ts', import.meta.url));

/** Sets the credentials s3rver accepts (and quiets the SDK's note about Node 20). */
export function useTestS3Credentials(): void {
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
}

/** A local S3 server in a child process; `kill` and `start` simulate a store that goes away and comes back. */
export interface TestS3Server {
  /** `http://127.0.0.1:<port>`; stays the same across kill and start. */
  readonly endpoint: string;
  readonly port: number;
  readonly dir: string;
  /** `s3://<bucket>/<prefix>?endpoint=…&region=us-east-1&forcePathStyle=true` for this server. */
  url(prefix: string, endpoint?: string): string;
  /** SIGKILLs the server process (as a crash would) and waits until it is gone. */
  kill(): Promise<void>;
  /** Starts the server again on the same directory and port. */
  start(): Promise<void>;
  /** Stops the server and deletes its directory. */
  close(): Promise<void>;
}

async function spawnServer(dir: string, port: number): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, ['--openssl-legacy-provider', '--import', 'tsx', child, dir, String(port), TEST_BUCKET], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: proc.stdout! });
  const started = await new Promise<number>((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`the S3 test server exited (code ${code}) before it listened:\n${stderr}`));
    proc.once('exit', onExit);
    lines.once('line', (line) => {
      proc.off('exit', onExit);
      resolve((JSON.parse(line) as { port: number }).port);
    });
  });
  lines.close();
  // The server must not keep the test process alive on its own.
  proc.unref();
  (proc.stdin as unknown as { unref?: () => void }).unref?.();
  (proc.stdout as unknown as { unref?: () => void }).unref?.();
  (proc.stderr as unknown as { unref?: () => void }).unref?.();
  return { proc, port: started };
}

async function killProc(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGKILL');
  await gone;
}

/** Starts a server of its own (for tests that kill or restart it). */
export async function startS3Server(): Promise<TestS3Server> {
  useTestS3Credentials();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'txnwal-s3-'));
  let { proc, port } = await spawnServer(dir, 0);
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    port,
    dir,
    url: (prefix, via = endpoint) => `s3://${TEST_BUCKET}/${prefix}?endpoint=${via}&region=us-east-1&forcePathStyle=true`,
    kill: () => killProc(proc),
    async start() {
      await killProc(proc);
      proc = (await spawnServer(dir, port)).proc;
    },
    async close() {
      await killProc(proc);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let shared: Promise<TestS3Server> | undefined;

/** A fresh, empty place in the test store: a new random prefix on `TXNWAL_TEST_S3_URL` or on the shared server. */
export async function freshTestS3Url(): Promise<string> {
  const prefix = `t-${randomBytes(6).toString('hex')}`;
  const external = process.env.TXNWAL_TEST_S3_URL;
  if (external) {
    const q = external.indexOf('?');
    const base = (q < 0 ? external : external.slice(0, q)).replace(/\/?$/, '/');
    return base + prefix + (q < 0 ? '' : external.slice(q));
  }
  shared ??= startS3Server();
  return (await shared).url(prefix);
}

/** Stops the shared server, if this process started one. Mocha runs call it from the root `after` hook below. */
export async function stopTestS3(): Promise<void> {
  const pending = shared;
  shared = undefined;
  await (await pending?.catch(() => undefined))?.close();
}

if (typeof after === 'function') {
  after(async function () {
    this.timeout(30_000);
    await stopTestS3();
  });
}
