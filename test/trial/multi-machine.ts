/**
 * The multi-machine trial (issue 13): writers in separate processes, as if on separate
 * machines, share nothing but Postgres (consensus) and S3 (blobs); one of them is
 * SIGKILLed at random points and restarted, again and again, while a follower process
 * reads every data shard with `dataSubscribe$`. Then a checker compares what was
 * acknowledged with what the follower saw.
 *
 * Set-up (this process): a txns shard and `dataShards` data shards on the location
 * `postgres://…?blob=s3://…`, registered at `registerTs`; a follower child
 * (multi-follower-child.ts) from `registerTs`; `writers` writer children
 * (multi-writer-child.ts), each committing one unique key per transaction to 1–3
 * shared data shards, racing for timestamps.
 *
 * Kills: `kills` times, a writer chosen at random is SIGKILLed as soon as it reports a
 * chosen event after a random number of acks: right after `attempt` (in the middle of
 * its commit), after `acked` (committed, not applied) or after `applied`, in turn. It is
 * restarted at once (a new incarnation: new keys, a new client, a new TxnsHandle, which
 * re-registers and carries on; other writers' applies cover what the dead one left
 * unapplied). Then every writer makes a few more acks and is stopped cleanly, this
 * process commits and applies one empty transaction at `finalTs`, and the follower
 * must report progress past `finalTs` on every shard.
 *
 * Checks (anomalies):
 * - every acknowledged key appears exactly once (diff +1) in every shard it wrote, at
 *   its commit time, and in no other shard;
 * - a key whose commit failed determinately never appears; one whose outcome is
 *   unknown (killed mid-commit, or "may have happened") appears in all of its shards
 *   at one time or in none;
 * - no transaction is partly visible at any frontier: each shard's stream never
 *   delivers an update below progress it already reported (so at every frontier a
 *   shard shows every transaction below it), and a transaction's rows carry one
 *   timestamp across shards, so any set of frontiers past it shows it whole;
 * - no key appears that no writer attempted, no stream errors, no writer dies on its
 *   own, and no wait outlasts `deadlineMs` (a timer names the hang).
 *
 * Example:
 * ```ts
 * const r = await runMultiMachineTrial({ seed: 1, kills: 3 });
 * r.anomalies;   // []
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { commitAtNextTimestamp, nextFreeTxnsTime } from '../../src/coord/timestamp-source.js';
import { PersistClient } from '../../src/persist/client.js';
import { newShardId, type ShardId } from '../../src/persist/shard-id.js';
import { TxnsHandle } from '../../src/txn/txns-handle.js';
import { STRING_UNIT } from '../support/persist.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';
import { xorshift32 } from '../support/rng.js';
import { freshTestS3Url } from '../support/s3.js';
import { MULTI_TRIAL_CONFIG } from './multi-machine-config.js';

export interface MultiTrialOptions {
  seed: number;
  /** Writer processes (default 3). */
  writers?: number;
  /** Data shards shared by the writers (default 3). */
  dataShards?: number;
  /** How many times a writer is SIGKILLed and restarted (default 3). */
  kills?: number;
  /** A kill comes after 1..maxAcksBeforeKill acks of the victim's current incarnation (default 5). */
  maxAcksBeforeKill?: number;
  /** Acks every writer makes after the last kill before it is stopped (default 2). */
  finalAcks?: number;
  /** The location; default a fresh Postgres database + a fresh S3 prefix from test/support. */
  location?: string;
  /** Deadline of every wait, in ms (default 60 000). */
  deadlineMs?: number;
  /** Progress lines (kills, restarts). */
  log?: (line: string) => void;
}

export interface MultiTrialResult {
  seed: number;
  kills: number;
  /** Transactions acknowledged to a writer. */
  acked: number;
  /** Commits that failed determinately / may have happened / had no answer (killed). */
  failed: number;
  unknown: number;
  /** Transactions found by the follower. */
  seen: number;
  finalTs: number;
  anomalies: string[];
  elapsedMs: number;
}

type Event = { event: string } & Record<string, unknown>;

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
const WRITER = here('./multi-writer-child.ts');
const FOLLOWER = here('./multi-follower-child.ts');

class Hang extends Error {}

/** A child process whose stdout is a stream of JSON events; waits are on events, under a deadline. */
class EventChild {
  readonly events: Event[] = [];
  readonly proc: ChildProcess;
  stderr = '';
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Called for each event as it arrives (the kill trigger lives here). */
  onEvent: ((ev: Event) => void) | undefined;
  private waiters: (() => void)[] = [];

  constructor(
    readonly name: string,
    file: string,
    args: string[],
    private readonly deadlineMs: number,
  ) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', file, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      let ev: Event;
      try {
        ev = JSON.parse(line) as Event;
      } catch {
        ev = { event: 'garbage', line };
      }
      this.events.push(ev);
      this.onEvent?.(ev);
      this.wake();
    });
    this.proc.once('exit', (code, signal) => {
      this.exited = { code, signal };
      this.wake();
    });
    // A dead pipe (the child was killed) must not crash this process.
    this.proc.stdin!.on('error', () => undefined);
  }

  /** Resolves with the first event from index `from` on that satisfies `pred`. */
  async until(pred: (ev: Event) => boolean, what: string, from = 0): Promise<Event> {
    const timer = setTimeout(() => this.wake(), this.deadlineMs);
    timer.unref();
    const started = performance.now();
    try {
      for (let i = from; ; ) {
        for (; i < this.events.length; i++) if (pred(this.events[i]!)) return this.events[i]!;
        if (this.exited) throw new Error(`${this.name} exited (${JSON.stringify(this.exited)}) while waiting for ${what}:\n${this.stderr}`);
        if (performance.now() - started >= this.deadlineMs) throw new Hang(`hang: ${this.name} gave no ${what} within ${this.deadlineMs} ms`);
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  count(kind: string): number {
    return this.events.filter((e) => e.event === kind).length;
  }

  /** Closes stdin (the child's signal to finish) and waits for it to exit. */
  async finish(what: string): Promise<void> {
    this.proc.stdin!.end();
    await this.exit(what);
  }

  kill(): void {
    if (!this.exited) this.proc.kill('SIGKILL');
  }

  async exit(what: string): Promise<void> {
    const timer = setTimeout(() => this.wake(), this.deadlineMs);
    timer.unref();
    const started = performance.now();
    try {
      while (!this.exited) {
        if (performance.now() - started >= this.deadlineMs) throw new Hang(`hang: ${this.name} did not exit (${what})`);
        await new Promise<void>((resolve) => this.waiters.push(resolve));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

interface Attempt {
  key: string;
  shards: ShardId[];
  outcome: 'acked' | 'failed' | 'maybe' | 'unknown';
  ts?: number;
}

/** Runs one trial; findings are returned as anomalies, never thrown. */
export async function runMultiMachineTrial(opts: MultiTrialOptions): Promise<MultiTrialResult> {
  const started = performance.now();
  const rng = xorshift32(opts.seed * 2654435761 + 7);
  const nWriters = opts.writers ?? 3;
  const nShards = opts.dataShards ?? 3;
  const nKills = opts.kills ?? 3;
  const maxAcks = opts.maxAcksBeforeKill ?? 5;
  const finalAcks = opts.finalAcks ?? 2;
  const deadlineMs = opts.deadlineMs ?? 60_000;
  const say = opts.log ?? (() => undefined);
  const log = (line: string): void => say(`${((performance.now() - started) / 1000).toFixed(1)} s: ${line}`);
  const anomalies: string[] = [];
  const pg = opts.location === undefined ? await freshTestDatabaseUrl() : '';
  const location = opts.location ?? `${pg}${pg.includes('?') ? '&' : '?'}blob=${await freshTestS3Url()}`;

  const client = await PersistClient.open(location, { config: MULTI_TRIAL_CONFIG });
  const txnsId = newShardId();
  const dataIds = Array.from({ length: nShards }, () => newShardId());
  const txns = await TxnsHandle.open(client, { txnsId, codecs: STRING_UNIT });
  const times = nextFreeTxnsTime(1);
  const writers = await Promise.all(dataIds.map((id) => client.openWriter(id, STRING_UNIT)));
  const { ts: registerTs } = await commitAtNextTimestamp(times, (ts) => txns.register(ts, writers));

  const children: EventChild[] = [];
  /** Every incarnation of every writer, in start order. */
  const incarnations: EventChild[] = [];
  let kills = 0;
  let finalTs = -1;
  const follower = new EventChild('follower', FOLLOWER, [location, txnsId, dataIds.join(','), String(registerTs)], deadlineMs);
  children.push(follower);

  const startWriter = async (w: number, incarnation: number): Promise<EventChild> => {
    const child = new EventChild(`writer ${w}.${incarnation}`, WRITER, [location, txnsId, dataIds.join(','), `w${w}`, String(incarnation), String(opts.seed)], deadlineMs);
    children.push(child);
    incarnations.push(child);
    await child.until((e) => e.event === 'ready', 'ready');
    return child;
  };

  try {
    await follower.until((e) => e.event === 'ready', 'ready');
    log('follower ready');
    const incarnationOf: number[] = Array.from({ length: nWriters }, () => 0);
    const live: EventChild[] = await Promise.all(incarnationOf.map((_, w) => startWriter(w, 0)));
    log('writers ready');

    for (let k = 0; k < nKills; k++) {
      const w = rng() % nWriters;
      const victim = live[w]!;
      const afterAcks = victim.count('acked') + 1 + (rng() % maxAcks);
      // The kind of point rotates, so every few kills cover all three; the count is random.
      const at = (['attempt', 'acked', 'applied'] as const)[k % 3]!;
      let armed = false;
      const killed = new Promise<void>((resolve) => {
        victim.onEvent = (ev) => {
          if (victim.count('acked') >= afterAcks) armed = true;
          if (armed && ev.event === at) {
            victim.kill();
            resolve();
          }
        };
      });
      // Already past the point when the trigger was set: arm on the next event.
      if (victim.count('acked') >= afterAcks) armed = true;
      // The second arm only ever rejects: the victim died on its own, or hung.
      await Promise.race([killed, victim.until(() => false, `a kill point (${at} after ${afterAcks} acks)`)]);
      await victim.exit('SIGKILL');
      kills++;
      log(`kill ${kills}: ${victim.name} at "${at}" after ${victim.count('acked')} acks`);
      incarnationOf[w]! += 1;
      live[w] = await startWriter(w, incarnationOf[w]!);
      log(`restarted writer ${w}`);
    }

    // Progress after the last restart, then a clean stop.
    await Promise.all(live.map((c) => c.until(() => c.count('acked') >= finalAcks, `${finalAcks} acks`)));
    await Promise.all(live.map((c) => c.finish('stop')));
    log('writers stopped');
    for (const c of live) {
      if (c.exited?.code !== 0) anomalies.push(`${c.name} exited with ${JSON.stringify(c.exited)}:\n${c.stderr}`);
    }

    // One empty commit past everything, applied: every earlier commit is then applied.
    const { ts, landed } = await commitAtNextTimestamp(times, (at) => txns.begin().commitAt(txns, at));
    await landed.apply.apply(txns);
    finalTs = ts;
    for (const shard of dataIds) {
      await follower.until((e) => e.event === 'error' || (e.event === 'progress' && e.shard === shard && (e.upper as number) > finalTs), `progress past ${finalTs} on ${shard}`);
    }
    log(`follower past ${finalTs}`);
    await follower.finish('stop');
  } catch (err) {
    anomalies.push(err instanceof Error ? err.message : String(err));
  } finally {
    for (const c of children) c.kill();
    await Promise.all(children.map((c) => c.exit('cleanup').catch(() => undefined)));
    await txns.close().catch(() => undefined);
    await client.close().catch(() => undefined);
  }

  // ---- the check ----
  const attempts = new Map<string, Attempt>();
  for (const child of incarnations) {
    for (const ev of child.events) {
      const key = ev.key as string;
      if (ev.event === 'attempt') attempts.set(key, { key, shards: ev.shards as ShardId[], outcome: 'unknown' });
      else if (ev.event === 'acked') Object.assign(attempts.get(key)!, { outcome: 'acked', ts: ev.ts as number });
      else if (ev.event === 'failed') attempts.get(key)!.outcome = ev.mayHaveHappened ? 'maybe' : 'failed';
    }
  }
  /** key → shard → [ts, diff] rows seen by the follower. */
  const seen = new Map<string, Map<ShardId, [number, number][]>>();
  const progress = new Map<ShardId, number>();
  for (const ev of follower.events) {
    const shard = ev.shard as ShardId;
    if (ev.event === 'error') anomalies.push(`follower stream of ${shard} errored: ${String(ev.error)}`);
    if (ev.event === 'progress') progress.set(shard, ev.upper as number);
    if (ev.event !== 'updates') continue;
    for (const [key, ts, diff] of ev.rows as [string, number, number][]) {
      const reported = progress.get(shard) ?? -Infinity;
      if (ts < reported) anomalies.push(`late update: ${key} at ${ts} on ${shard} after progress ${reported} (partly visible at that frontier)`);
      const byShard = seen.get(key) ?? new Map<ShardId, [number, number][]>();
      seen.set(key, byShard);
      byShard.set(shard, [...(byShard.get(shard) ?? []), [ts, diff]]);
    }
  }
  for (const key of seen.keys()) if (!attempts.has(key)) anomalies.push(`${key} seen but never attempted`);
  for (const a of attempts.values()) {
    const byShard = seen.get(a.key) ?? new Map<ShardId, [number, number][]>();
    const stray = [...byShard.keys()].filter((s) => !a.shards.includes(s));
    if (stray.length > 0) anomalies.push(`${a.key} seen in shards it did not write: ${stray.join(', ')}`);
    const rows = a.shards.map((s) => byShard.get(s) ?? []);
    const present = rows.filter((r) => r.length > 0).length;
    for (const [i, r] of rows.entries()) {
      if (r.length > 1 || (r.length === 1 && r[0]![1] !== 1)) anomalies.push(`${a.key} on ${a.shards[i]}: expected one row with diff 1, saw ${JSON.stringify(r)}`);
    }
    const times = new Set(rows.flatMap((r) => r.map(([t]) => t)));
    if (times.size > 1) anomalies.push(`${a.key} torn across times ${[...times].join(', ')}`);
    if (a.outcome === 'acked') {
      if (present !== a.shards.length) anomalies.push(`acked ${a.key} (ts ${a.ts}) found in ${present} of its ${a.shards.length} shards`);
      else if (!times.has(a.ts!)) anomalies.push(`acked ${a.key} at ts ${a.ts} seen at ${[...times].join(', ')}`);
    } else if (a.outcome === 'failed') {
      if (present > 0) anomalies.push(`${a.key} failed determinately but is visible in ${present} shards`);
    } else if (present !== 0 && present !== a.shards.length) {
      anomalies.push(`${a.key} (${a.outcome}) partly visible: ${present} of ${a.shards.length} shards`);
    }
  }
  const all = [...attempts.values()];
  return {
    seed: opts.seed,
    kills,
    acked: all.filter((a) => a.outcome === 'acked').length,
    failed: all.filter((a) => a.outcome === 'failed' || a.outcome === 'maybe').length,
    unknown: all.filter((a) => a.outcome === 'unknown').length,
    seen: seen.size,
    finalTs,
    anomalies,
    elapsedMs: Math.round(performance.now() - started),
  };
}
