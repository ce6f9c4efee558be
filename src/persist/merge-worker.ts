/**
 * MergeWorker: a worker thread, shared by the process's PersistClients
 * ({@link acquireSharedMergeWorker}), that runs the CPU half of
 * compaction merges ({@link PartMerger}), so merging never competes with writes and
 * reads for the main thread (issue 17, "maintenance off the write path"). On a
 * 10,000-updates-per-transaction pipeline merges were a fifth of the main thread's
 * time, and with them off it the pipeline ran at about 1.5× the rate.
 *
 * The main thread still does all I/O: compaction.ts fetches each input part, hands it
 * to the job as it arrives, and stores the outputs the job returns; a merge's
 * record in state is written by the main thread as before. So storage faults,
 * retries and blob deletion work exactly as for a merge on the main thread, and a
 * merge computes the same bytes on either thread.
 *
 * Failure: a job whose merge throws (a corrupt part) rejects with that error, rebuilt
 * by class name for the persist errors. When the thread itself dies (it crashed, or
 * could not start), every job in flight rejects, the next job starts a new thread,
 * and after {@link MAX_THREAD_FAILURES} deaths the worker reports itself unusable
 * and compaction merges on the main thread from then on (logged once). Compaction
 * failures are logged and retried after the next write, never lost data: a merge
 * that did not finish records nothing.
 *
 * The thread is unref'd (it never keeps a process alive) and `close` terminates it;
 * the shared one ends a few seconds after its last client closed.
 * Under tsx (this file is `.ts`) the thread registers tsx before loading its entry,
 * which worker threads do not inherit.
 *
 * Example:
 * ```ts
 * const worker = new MergeWorker(logger);
 * await worker.ready();   // compaction calls tryBegin instead, and merges locally until then
 * const job = worker.begin({ since: 4, consolidate: true, targetBytes: 128 << 20 });
 * job.add({ bytes: partA, what: 'part a' });
 * const { parts, updateCount } = await job.finish();
 * await worker.close();
 * ```
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { copyBytes } from '../location/bytes.js';
import { InvariantViolation, StoredFormatError } from './errors.js';
import type { MergeInputPart, MergedPart, PartMergerOptions } from './part-merger.js';
import type { MergeReply, MergeRequest } from './merge-worker-protocol.js';

/** Thread deaths after which merges stay on the main thread. */
export const MAX_THREAD_FAILURES = 3;

/** What a finished job returns. */
export interface MergeJobResult {
  parts: MergedPart[];
  updateCount: number;
}

/** One merge running in the worker: feed its input parts in order, then finish (or abort). */
export interface MergeJob {
  add(part: MergeInputPart): void;
  finish(): Promise<MergeJobResult>;
  /** Drops the job (its inputs could not all be read); `finish` must not be called after. */
  abort(): void;
}

interface Pending {
  resolve(r: MergeJobResult): void;
  reject(err: unknown): void;
}

export class MergeWorker {
  private thread: Worker | undefined;
  private nextId = 1;
  /** Jobs begun on the current thread and not yet answered (finish pending or not yet called). */
  private readonly pending = new Map<number, Pending | undefined>();
  private failures = 0;
  private closed = false;
  /** The current thread has loaded its module and takes jobs. */
  private threadReady = false;
  /** Callers of `ready()` waiting for the current thread to load (false: it died, or we closed). */
  private readyWaiters: ((ok: boolean) => void)[] = [];

  constructor(private readonly logger: Logger) {}

  /** False once the thread died {@link MAX_THREAD_FAILURES} times, or after close: merge on the main thread. */
  get usable(): boolean {
    return !this.closed && this.failures < MAX_THREAD_FAILURES;
  }

  /** @internal The running thread, if any (tests kill it to see a death handled). */
  get threadForTests(): Worker | undefined {
    return this.thread;
  }

  /**
   * Starts the thread if none runs; resolves true once it takes jobs, false when it
   * died first or the worker is closed or unusable.
   */
  ready(): Promise<boolean> {
    if (!this.usable) return Promise.resolve(false);
    this.ensureThread();
    if (this.threadReady) return Promise.resolve(true);
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /**
   * A job on the thread when it is ready; otherwise undefined, having started the
   * thread if none ran, so a merge never waits for a thread to start (the caller
   * merges on the main thread meanwhile; under tsx a start takes a few hundred ms).
   */
  tryBegin(opts: PartMergerOptions): MergeJob | undefined {
    if (!this.usable) return undefined;
    this.ensureThread();
    return this.threadReady ? this.begin(opts) : undefined;
  }

  /** A job on the thread, which must be ready (see {@link ready}). */
  begin(opts: PartMergerOptions): MergeJob {
    if (!this.usable || !this.threadReady || !this.thread) {
      throw new InvariantViolation('MergeWorker.begin before the thread is ready, or on a worker that is closed or unusable');
    }
    const thread = this.thread;
    const id = this.nextId++;
    this.pending.set(id, undefined);
    const post = (msg: MergeRequest, transfer: ArrayBuffer[] = []) => thread.postMessage(msg, transfer);
    post({ op: 'begin', id, opts });
    return {
      add: (part) => {
        // Always a copy: the caller's bytes may be shared (inline parts live in state).
        const bytes = copyBytes(part.bytes);
        post({ op: 'add', id, part: { ...part, bytes } }, [bytes.buffer as ArrayBuffer]);
      },
      finish: () =>
        new Promise<MergeJobResult>((resolve, reject) => {
          if (!this.pending.has(id)) return reject(new Error(`merge job ${id}: the merge worker thread exited`));
          this.pending.set(id, { resolve, reject });
          post({ op: 'finish', id });
        }),
      abort: () => {
        if (!this.pending.delete(id)) return;
        post({ op: 'abort', id });
      },
    };
  }

  /** Terminates the thread; jobs still in flight reject. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const t = this.thread;
    this.thread = undefined;
    this.failAll(new Error('the merge worker was closed'));
    this.settleReady(false);
    if (t) await t.terminate();
  }

  private ensureThread(): Worker {
    if (this.thread) return this.thread;
    const t = startThread();
    t.unref();
    t.on('message', (m: MergeReply | { op: 'ready' }) => {
      if ('op' in m) {
        this.threadReady = true;
        this.settleReady(true);
      } else {
        this.onReply(m);
      }
    });
    t.on('error', (err) => this.onDeath(t, err));
    t.on('exit', (code) => this.onDeath(t, new Error(`the merge worker thread exited with code ${code}`)));
    this.thread = t;
    return t;
  }

  private onReply(m: MergeReply): void {
    const p = this.pending.get(m.id);
    this.pending.delete(m.id);
    if (!p) return;
    if (m.ok) p.resolve({ parts: m.parts, updateCount: m.updateCount });
    else p.reject(rebuildError(m.name, m.message));
  }

  private onDeath(t: Worker, err: Error): void {
    if (this.thread !== t) return; // closed, or an earlier event already handled it
    this.thread = undefined;
    this.threadReady = false;
    this.failures++;
    if (this.failures >= MAX_THREAD_FAILURES) {
      this.logger.warn({ err }, 'the compaction merge worker failed repeatedly; merging on the main thread from now on');
    } else {
      this.logger.warn({ err }, 'the compaction merge worker failed; its merges fail and are retried after the next write');
    }
    this.failAll(err);
    this.settleReady(false);
  }

  private settleReady(ok: boolean): void {
    const ws = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of ws) w(ok);
  }

  private failAll(err: Error): void {
    const ps = [...this.pending.values()];
    this.pending.clear();
    for (const p of ps) p?.reject(new Error(`merge worker: ${err.message}`));
  }
}

/** The thread, on the compiled `.js` entry or, from the TypeScript sources, through tsx. */
function startThread(): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSource ? './merge-worker-thread.ts' : './merge-worker-thread.js', import.meta.url);
  if (!fromSource) return new Worker(entry);
  const boot = `import(${JSON.stringify(tsxEsmApi())}).then((m) => m.register()).then(() => import(${JSON.stringify(entry.href)}))`;
  return new Worker(boot, { eval: true });
}

/**
 * The URL of tsx's ESM API (`tsx/esm/api`, whose `register()` installs its hooks in the
 * calling thread), read from tsx's own exports map: these sources may themselves have
 * been loaded as CommonJS (mocha), where a require-resolve picks its CommonJS build.
 */
function tsxEsmApi(): string {
  const requireHere = createRequire(import.meta.url);
  const pkgPath = requireHere.resolve('tsx/package.json');
  const pkg = requireHere(pkgPath) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(path.join(path.dirname(pkgPath), pkg.exports['./esm/api']!.import.default)).href;
}

function rebuildError(name: string, message: string): Error {
  if (name === 'StoredFormatError') return new StoredFormatError(message);
  if (name === 'InvariantViolation') return new InvariantViolation(message);
  const e = new Error(message);
  e.name = name;
  return e;
}

/** How long the process's merge worker outlives its last client, for the next one to reuse. */
export const SHARED_LINGER_MS = 5000;

let shared: { worker: MergeWorker; users: number; linger?: NodeJS.Timeout } | undefined;

/**
 * The process's merge worker, shared by its clients: one thread serves them all (a
 * thread per client would only compete for the same cores). Each client acquires it
 * and releases it on close; after the last release it stays {@link SHARED_LINGER_MS}
 * for a client opened next (a start costs the thread's module loading; under tsx
 * hundreds of ms of CPU), then ends. Its deaths are logged with the logger of the
 * client that started it.
 *
 * ```ts
 * const lease = acquireSharedMergeWorker(cfg.logger);
 * await compactShard(machine, lease.worker);
 * await lease.release();
 * ```
 */
export function acquireSharedMergeWorker(logger: Logger): { worker: MergeWorker; release(): Promise<void> } {
  if (!shared || !shared.worker.usable) shared = { worker: new MergeWorker(logger), users: 0 };
  const entry = shared;
  clearTimeout(entry.linger);
  entry.linger = undefined;
  entry.users++;
  let released = false;
  return {
    worker: entry.worker,
    release: async () => {
      if (released) return;
      released = true;
      if (--entry.users > 0) return;
      entry.linger = setTimeout(() => {
        if (entry.users > 0) return;
        if (shared === entry) shared = undefined;
        void entry.worker.close();
      }, SHARED_LINGER_MS);
      entry.linger.unref();
    },
  };
}
