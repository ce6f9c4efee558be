/**
 * The transaction history trial (issue 16): several worker processes
 * (txn-history-worker.ts) run random read-write transactions over a few hot keys of
 * one collection on a `file:` location, some are SIGKILLed at random points and
 * replaced, and a `dataSubscribe$` in this process records every update with its
 * time. Then the history is checked.
 *
 * Versions: every value written is unique (the attempt's id), so the recorded
 * updates give, per key, the versions in commit order with their commit times, and
 * a read names the version it saw.
 *
 * Checks (each failure is one line in `anomalies`):
 * - atomic and durable: an attempt's writes appear all at one time or not at all,
 *   never partly; every acknowledged commit appears at its commit time, exactly once;
 *   an attempt that ended in a conflict never appears; one whose worker was killed
 *   after printing it may appear or not;
 * - every read of a committed transaction saw the latest version at its read
 *   timestamp (no dirty reads, no read skew, no lost writes in between);
 * - `'snapshot'`: no two committed transactions whose [read, commit] intervals
 *   overlap wrote the same key (first committer wins), and the dependency graph
 *   restricted to write-write and write-read edges is acyclic;
 * - the serializable levels: the full dependency graph (ww, wr and rw
 *   anti-dependency edges, Adya's DSG) is acyclic, i.e. the history is
 *   serializable.
 *
 * Example:
 * ```ts
 * const r = await runHistoryTrial({ dir, isolation: 'serializable', workers: 4, txnsPerWorker: 20, kills: 2, seed: 1 });
 * r.anomalies;   // []
 * ```
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Subscription } from 'rxjs';
import type { IsolationLevel } from '../../src/db/read-write-transaction.js';
import { openLocation } from '../../src/location/location.js';
import { PersistClient } from '../../src/persist/client.js';
import { newShardId } from '../../src/persist/shard-id.js';
import { dataSubscribe$ } from '../../src/operators/data-subscribe.js';
import { TxnsHandle } from '../../src/txn/txns-handle.js';
import { xorshift32 } from '../support/rng.js';
import { Codecs } from '../../src/persist/codec.js';

/** The collection's codecs, shared with the workers. */
export const HISTORY_CODECS = { key: Codecs.string, val: Codecs.string };
/** The hot keys every transaction picks from. */
export const HOT_KEYS = ['k0', 'k1', 'k2', 'k3'];

const WORKER = fileURLToPath(new URL('./txn-history-worker.ts', import.meta.url));

export interface HistoryTrialOptions {
  /** A `file:` location URL (a fresh directory). */
  location: string;
  isolation: IsolationLevel;
  workers: number;
  /** Transactions each worker slot runs in all (a killed worker's replacement runs the rest). */
  txnsPerWorker: number;
  /** SIGKILLs in all, at random points. */
  kills: number;
  seed: number;
  /** Called on every worker exit, for progress output. */
  onProgress?: (s: { commits: number; conflicts: number; kills: number }) => void;
}

export interface HistoryTrialResult {
  commits: number;
  conflicts: number;
  /** Attempts whose worker was killed after printing them: landed or not. */
  unknown: number;
  /** Of those, how many landed. */
  unknownLanded: number;
  kills: number;
  readOnly: number;
  anomalies: string[];
}

export interface Attempt {
  id: string;
  readTs: number;
  reads: Record<string, string | null>;
  writes: Record<string, string>;
  outcome: 'committed' | 'conflict' | 'unknown';
  commitTs?: number;
}

/** One key's versions in commit order: the value written and when. */
type Versions = Map<string, { value: string; ts: number }[]>;

export async function runHistoryTrial(opts: HistoryTrialOptions): Promise<HistoryTrialResult> {
  const client = await PersistClient.open(await openLocation(opts.location), {
    config: { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 20 } },
  });
  const txnsId = newShardId();
  const dataId = newShardId();
  const txns = await TxnsHandle.open(client, { txnsId, codecs: HISTORY_CODECS, initTs: 0 });
  const res = await txns.register(1, [await client.openWriter(dataId, HISTORY_CODECS)]);
  if (!res.ok) throw new Error(`register at 1 refused: upper ${res.current}`);
  // Record every update with its time, from right after the registration.
  const recorded: { key: string; value: string; ts: number; diff: number }[] = [];
  let frontier = 0;
  let frontierWake: (() => void) | undefined;
  let streamError: unknown;
  const sub: Subscription = dataSubscribe$(client, txnsId, dataId, { codecs: HISTORY_CODECS, asOf: 1 }).subscribe({
    next: (e) => {
      if (e.kind === 'updates') for (const [key, value, ts, diff] of e.updates) recorded.push({ key, value, ts, diff });
      else {
        frontier = e.upper;
        frontierWake?.();
      }
    },
    error: (err: unknown) => {
      streamError = err;
      frontierWake?.();
    },
  });

  const attempts = new Map<string, Attempt>();
  const next = xorshift32(opts.seed);
  let kills = 0;
  let killsLeft = opts.kills;
  let commits = 0;
  let conflicts = 0;
  const failures: string[] = [];

  const runSlot = async (slot: number): Promise<void> => {
    let remaining = opts.txnsPerWorker;
    for (let generation = 0; remaining > 0; generation++) {
      const worker = `w${slot}g${generation}`;
      const ended = new Set<string>();
      let printed = 0;
      // Kill this generation after a random number of events (attempts printed or
      // ended, so some kills land between an attempt and its outcome), while kills are left.
      // Every remaining transaction prints at least one event, so the kill always comes.
      const killAfter = killsLeft > 0 ? 1 + (next() % Math.max(1, remaining)) : Infinity;
      if (killAfter !== Infinity) killsLeft--;
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', WORKER, opts.location, txnsId, dataId, worker, opts.isolation, String(remaining), String(next())],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let killed = false;
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      let buffered = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          const e = JSON.parse(line) as { event: string; id: string } & Partial<Attempt> & { error?: string };
          if (e.event === 'attempt') attempts.set(e.id, { id: e.id, readTs: e.readTs!, reads: e.reads!, writes: e.writes!, outcome: 'unknown' });
          else if (e.event === 'committed') {
            const a = attempts.get(e.id)!;
            a.outcome = 'committed';
            a.commitTs = e.commitTs;
            ended.add(e.id);
            commits++;
          } else if (e.event === 'conflict') {
            const a = attempts.get(e.id);
            if (a) a.outcome = 'conflict';
            ended.add(e.id);
            conflicts++;
          } else if (e.event === 'error') failures.push(`${worker}: ${e.error}`);
          if (e.event !== 'done' && e.event !== 'error' && ++printed >= killAfter && !killed) {
            killed = true;
            child.kill('SIGKILL');
          }
        }
      });
      const code = await exit;
      if (killed) kills++;
      else if (code !== 0) failures.push(`${worker} exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      remaining -= ended.size;
      // An attempt printed but never ended was cut short by the kill: it counts as run.
      for (const a of attempts.values()) if (a.id.startsWith(`${worker}.`) && !ended.has(a.id)) remaining--;
      opts.onProgress?.({ commits, conflicts, kills });
      if (!killed) break;
    }
  };
  await Promise.all(Array.from({ length: opts.workers }, (_, i) => runSlot(i)));

  // Let the recorder catch up with everything that landed, then stop it.
  const upper = await txns.fetchRecentUpper();
  await txns.applyLe(upper - 1);
  while (frontier < upper && streamError === undefined) await new Promise<void>((r) => (frontierWake = r));
  sub.unsubscribe();
  await txns.close();
  await client.close();
  if (streamError !== undefined) failures.push(`the recording dataSubscribe$ failed: ${String(streamError)}`);
  const checked = checkHistory([...attempts.values()], recorded, opts.isolation);
  return { ...checked, kills, anomalies: [...failures, ...checked.anomalies] };
}

/** Checks a recorded history (see the module docs). */
export function checkHistory(
  attempts: Attempt[],
  recorded: { key: string; value: string; ts: number; diff: number }[],
  isolation: IsolationLevel,
): Omit<HistoryTrialResult, 'kills'> {
  const anomalies: string[] = [];
  const byId = new Map(attempts.map((a) => [a.id, a]));
  // Where each attempt's writes landed: value (= attempt id) → times of its +1 rows, per key.
  const landed = new Map<string, Map<string, number[]>>();
  const versions: Versions = new Map();
  for (const u of [...recorded].sort((a, b) => a.ts - b.ts)) {
    if (u.diff === 1) {
      let keys = landed.get(u.value);
      if (!keys) landed.set(u.value, (keys = new Map()));
      keys.set(u.key, [...(keys.get(u.key) ?? []), u.ts]);
      let vs = versions.get(u.key);
      if (!vs) versions.set(u.key, (vs = []));
      vs.push({ value: u.value, ts: u.ts });
    } else if (u.diff !== -1) anomalies.push(`update of ${u.key} with diff ${u.diff}: transactions only write +1 and -1`);
  }
  // A key's rows must be one version at every time: each +1 retracts the previous version.
  for (const [key, vs] of versions) {
    const byTs = new Map<number, number>();
    for (const v of vs) byTs.set(v.ts, (byTs.get(v.ts) ?? 0) + 1);
    for (const [ts, n] of byTs) if (n > 1) anomalies.push(`${key} got ${n} versions at ${ts}`);
  }

  let unknown = 0;
  let unknownLanded = 0;
  let readOnly = 0;
  const committed: (Attempt & { commitTs: number })[] = [];
  for (const a of attempts) {
    const wrote = Object.keys(a.writes);
    const where = landed.get(a.id);
    if (wrote.length === 0) {
      readOnly++;
      if (a.outcome === 'committed') committed.push({ ...a, commitTs: a.commitTs! });
      continue;
    }
    const times = new Set<number>();
    let present = 0;
    for (const k of wrote) {
      const ts = where?.get(k) ?? [];
      if (ts.length > 1) anomalies.push(`${a.id}: its write of ${k} appears ${ts.length} times`);
      if (ts.length > 0) present++;
      for (const t of ts) times.add(t);
    }
    for (const k of where?.keys() ?? []) if (!(k in a.writes)) anomalies.push(`${a.id}: a write of ${k} it never made`);
    if (present > 0 && present < wrote.length) anomalies.push(`${a.id}: partly visible (${present} of ${wrote.length} writes)`);
    if (times.size > 1) anomalies.push(`${a.id}: writes at several times ${[...times].join(', ')}`);
    const ts = [...times][0];
    if (a.outcome === 'committed') {
      if (present === 0) anomalies.push(`${a.id}: acknowledged at ${a.commitTs} but lost`);
      else if (ts !== a.commitTs) anomalies.push(`${a.id}: acknowledged at ${a.commitTs} but landed at ${ts}`);
      else committed.push({ ...a, commitTs: a.commitTs! });
    } else if (a.outcome === 'conflict') {
      if (present > 0) anomalies.push(`${a.id}: failed with a conflict, yet landed at ${ts}`);
    } else {
      unknown++;
      if (present === wrote.length && ts !== undefined) {
        unknownLanded++;
        committed.push({ ...a, commitTs: ts });
      }
    }
  }
  for (const value of landed.keys()) if (!byId.has(value)) anomalies.push(`value ${value} landed but no attempt wrote it`);

  const versionAt = (key: string, ts: number): string | null => {
    let v: string | null = null;
    for (const x of versions.get(key) ?? []) if (x.ts <= ts) v = x.value;
    return v;
  };
  for (const t of committed) {
    for (const [k, seen] of Object.entries(t.reads)) {
      // A read after its own write is not in `reads` (reads come first in the worker).
      const expected = versionAt(k, t.readTs);
      if (seen !== expected) anomalies.push(`${t.id}: read ${k} = ${seen} at ${t.readTs}, but the version there is ${expected}`);
    }
  }

  // The dependency graph over committed transactions.
  const writerOf = (value: string | null) => (value === null ? undefined : value);
  const edges = new Map<string, Set<string>>();
  const addEdge = (from: string, to: string) => {
    if (from === to) return;
    let s = edges.get(from);
    if (!s) edges.set(from, (s = new Set()));
    s.add(to);
  };
  const withAnti = isolation !== 'snapshot';
  for (const [key, vs] of versions) {
    for (let i = 1; i < vs.length; i++) addEdge(vs[i - 1]!.value, vs[i]!.value); // ww
    for (const t of committed) {
      if (!(key in t.reads)) continue;
      const seen = t.reads[key]!;
      const w = writerOf(seen);
      if (w) addEdge(w, t.id); // wr
      if (withAnti) {
        // rw: the version after the one read was written by someone who must come later.
        const idx = seen === null ? -1 : vs.findIndex((v) => v.value === seen);
        const after = vs[idx + 1];
        if (after) addEdge(t.id, after.value);
      }
    }
  }
  const cycle = findCycle(edges);
  if (cycle) anomalies.push(`dependency cycle (${withAnti ? 'not serializable' : 'G1c'}): ${cycle.join(' → ')}`);

  if (isolation === 'snapshot') {
    // First committer wins: no overlapping committed writers of one key.
    const writersOf = new Map<string, (Attempt & { commitTs: number })[]>();
    for (const t of committed) for (const k of Object.keys(t.writes)) writersOf.set(k, [...(writersOf.get(k) ?? []), t]);
    for (const [k, ws] of writersOf) {
      for (const a of ws) for (const b of ws) {
        if (a !== b && a.readTs < b.commitTs && b.commitTs < a.commitTs) {
          anomalies.push(`${a.id} and ${b.id} both wrote ${k} concurrently (${b.id} committed at ${b.commitTs}, inside ${a.id}'s (${a.readTs}, ${a.commitTs}))`);
        }
      }
    }
  }
  return {
    commits: attempts.filter((a) => a.outcome === 'committed').length,
    conflicts: attempts.filter((a) => a.outcome === 'conflict').length,
    unknown,
    unknownLanded,
    readOnly,
    anomalies,
  };
}

/** A cycle in the graph, as a list of nodes, or undefined. Iterative DFS (histories can be long). */
function findCycle(edges: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 1 | 2>(); // 1: on the stack, 2: done
  for (const start of edges.keys()) {
    if (state.has(start)) continue;
    const stack: { node: string; it: Iterator<string> }[] = [{ node: start, it: (edges.get(start) ?? new Set()).values() }];
    state.set(start, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const n = top.it.next();
      if (n.done) {
        state.set(top.node, 2);
        stack.pop();
        continue;
      }
      const s = state.get(n.value);
      if (s === 1) {
        const from = stack.findIndex((f) => f.node === n.value);
        return [...stack.slice(from).map((f) => f.node), n.value];
      }
      if (s === undefined) {
        state.set(n.value, 1);
        stack.push({ node: n.value, it: (edges.get(n.value) ?? new Set()).values() });
      }
    }
  }
  return undefined;
}
