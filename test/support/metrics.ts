/**
 * Test helpers for metrics, working on the Prometheus text exposition (what a scraper
 * sees), not on prom-client objects:
 * - `parseExposition(text)`: families (HELP, TYPE) and samples, checked line by line;
 * - `conventionProblems(families)`: what breaks txnwal's naming rules (README "Metrics"):
 *   prefix `txnwal_`, counters end `_total`, duration histograms end `_seconds`, byte
 *   counts end `_bytes` / `_bytes_total`, every family has help, no shard-id labels;
 * - `sample(families, name, labels)`: one sample's value (0 when absent);
 * - `scrape(metrics)`: the parsed exposition of a Metrics object's registry.
 *
 * Example:
 * ```ts
 * const fams = parseExposition(await db.metrics());
 * expect(conventionProblems(fams)).to.deep.equal([]);
 * sample(fams, 'txnwal_consensus_compare_and_sets_total', { outcome: 'committed' });   // e.g. 12
 * ```
 */
import { expect } from 'chai';
import type { Metrics } from '../../src/persist/metrics.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/g;

function parseValue(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  const n = Number(v);
  expect(Number.isNaN(n) && v !== 'NaN', `sample value ${v}`).to.equal(false);
  return n;
}

/** The families of a text exposition (format 0.0.4); fails the test on a line it cannot read. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: '', help: '', samples: [] }));
    return f;
  };
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) {
      current = family(m[1]!);
      current.help = m[2]!;
    } else if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      current = family(m[1]!);
      current.type = m[2]!;
    } else if ((m = SAMPLE.exec(line))) {
      const name = m[1]!;
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
      // A sample belongs to the family it follows: `x_bucket`, `x_sum`, `x_count` to `x`.
      expect(current, `sample ${line} before any family`).to.not.equal(undefined);
      expect(name === current!.name || name.startsWith(`${current!.name}_`), `sample ${name} under family ${current!.name}`).to.equal(true);
      current!.samples.push({ name, labels, value: parseValue(m[3]!) });
    } else {
      expect.fail(`not a line of the text exposition: ${JSON.stringify(line)}`);
    }
  }
  return families;
}

/** The ways txnwal's families (those named `txnwal_…`) break the naming rules; empty when none do. */
export function conventionProblems(families: Map<string, Family>): string[] {
  const problems: string[] = [];
  for (const f of families.values()) {
    if (!f.name.startsWith('txnwal_')) continue;
    if (f.help.trim().length < 10) problems.push(`${f.name}: help text missing or too short (${JSON.stringify(f.help)})`);
    if (f.type === '') problems.push(`${f.name}: no TYPE line`);
    if (f.type === 'counter' && !f.name.endsWith('_total')) problems.push(`${f.name}: a counter whose name does not end in _total`);
    if (f.type !== 'counter' && f.name.endsWith('_total')) problems.push(`${f.name}: a ${f.type} named like a counter`);
    if (/duration|seconds|latency|wait/i.test(f.name) && f.type !== 'counter' && !f.name.endsWith('_seconds')) {
      problems.push(`${f.name}: a time measure whose name does not end in _seconds`);
    }
    if (/^duration/i.test(f.help) && !(f.type === 'histogram' && f.name.endsWith('_seconds'))) {
      problems.push(`${f.name}: a duration that is not a histogram in _seconds`);
    }
    if (/bytes/.test(f.name) && !/_bytes(_total)?$/.test(f.name)) problems.push(`${f.name}: a size whose name does not end in _bytes`);
    if (/_count$|_sum$|_bucket$/.test(f.name)) problems.push(`${f.name}: a family name ending in a reserved suffix`);
    for (const s of f.samples) {
      for (const [k, v] of Object.entries(s.labels)) {
        if (/shard|txns_id/i.test(k)) problems.push(`${f.name}: label ${k} names a shard (unbounded)`);
        if (/^s[0-9a-f]{8}-/.test(v)) problems.push(`${f.name}: label value ${v} is a shard id (unbounded)`);
      }
    }
  }
  return problems;
}

/** The value of the sample `name` with exactly `labels` (0 when there is none). */
export function sample(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      const keys = Object.keys(s.labels);
      if (keys.length === Object.keys(labels).length && keys.every((k) => s.labels[k] === labels[k])) return s.value;
    }
  }
  return 0;
}

/** Whether the exposition has a sample `name` with exactly `labels`. */
export function hasSample(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): boolean {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      const keys = Object.keys(s.labels);
      if (keys.length === Object.keys(labels).length && keys.every((k) => s.labels[k] === labels[k])) return true;
    }
  }
  return false;
}

/** The parsed exposition of a Metrics object's registry. */
export async function scrape(metrics: Metrics): Promise<Map<string, Family>> {
  return parseExposition(await metrics.text());
}

/**
 * Scrapes `metrics` until `cond` holds for what it sees (a gauge read at scrape time
 * has no event to wait for), every 5 ms; fails after `ms`, naming `what`.
 */
export async function scrapeUntil(
  metrics: Metrics,
  cond: (fams: Map<string, Family>) => boolean,
  what: string,
  ms = 20_000,
): Promise<Map<string, Family>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const fams = await scrape(metrics);
    if (cond(fams)) return fams;
    if (Date.now() > deadline) expect.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
