/**
 * Sums a V8 `.cpuprofile` (from `node --cpu-prof`) by function: self time and its
 * share of the samples, heaviest first. Used to find what a benchmark spends its CPU
 * on before cutting anything (issue 17).
 *
 * Usage: `npx tsx bench/profile-summary.ts <file.cpuprofile> [--top 30] [--by file] [--total]`
 *   --by function (default): one line per function name + file.
 *   --by file: one line per source file (where a layer's time goes).
 *   --total: rank by inclusive time (the function and everything it called) instead.
 *
 * Example:
 * ```
 * node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/txn.ts --parts tps
 * npx tsx bench/profile-summary.ts /tmp/prof/CPU.*.cpuprofile --top 25
 *   self ms   self %  function
 *     812.4    14.2%  (garbage collector)
 *     301.0     5.3%  computeDiff  src/persist/state-versions.ts:120
 * ```
 * Self time is attributed from the sample intervals (`timeDeltas`), so it is the
 * wall-clock time the CPU was in that function's own code while the profiler ran.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function usage(): never {
  process.stderr.write('usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [--top N] [--by function|file]\n');
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write('usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [--top N] [--by function|file] [--total]\n');
  process.exit(0);
}
const valueOf = (flag: string) => {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : undefined;
};
const flagValues = new Set(['--top', '--by'].map((f) => args.indexOf(f) + 1).filter((i) => i > 0));
const file = args.find((a, i) => !a.startsWith('--') && !flagValues.has(i));
if (!file) usage();
const top = Number(valueOf('--top') ?? 30);
const by = valueOf('--by') ?? 'function';

if (!Number.isSafeInteger(top) || top < 1 || (by !== 'function' && by !== 'file')) usage();

const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const root = process.cwd();

function label(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, '');
  const where = url === '' ? '' : path.relative(root, url).replace(/^(\.\.\/)+node_modules\//, 'node_modules/');
  if (by === 'file') return where === '' ? `(${frame.functionName || 'native'})` : where;
  const name = frame.functionName || '(anonymous)';
  // tsx compiles each file to one line, so the line number says nothing; the file does.
  return where === '' ? name : `${name}  ${where}`;
}

const inclusive = args.includes('--total');
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const selfUs = new Map<string, number>();
let totalUs = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const node = nodes.get(profile.samples[i]!);
  const dt = profile.timeDeltas[i] ?? 0;
  if (!node || node.callFrame.functionName === '(idle)') continue;
  totalUs += dt;
  if (!inclusive) {
    const key = label(node.callFrame);
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
    continue;
  }
  // Inclusive: every distinct function on the sample's stack gets the interval once.
  const seen = new Set<string>();
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const key = label(nodes.get(id)!.callFrame);
    if (seen.has(key)) continue;
    seen.add(key);
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
  }
}

const rows = [...selfUs.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
process.stdout.write(`busy (non-idle): ${(totalUs / 1000).toFixed(0)} ms of ${profile.samples.length} samples\n`);
const what = inclusive ? ' total' : '  self';
process.stdout.write(`${what} ms  ${what} %  ${by}\n`);
for (const [key, us] of rows) {
  process.stdout.write(`${(us / 1000).toFixed(1).padStart(9)} ${((100 * us) / totalUs).toFixed(1).padStart(7)}%  ${key}\n`);
}
