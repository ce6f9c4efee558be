/**
 * `txnwal tail`, run as the built command: it prints the contents as of its start,
 * then every commit the test makes, across two collections at one frontier, and
 * exits with code 0 promptly on SIGINT. Its view at the last progress line equals
 * `db.snapshot` at that time. On `file:` and Postgres stores.
 */
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { expect } from 'chai';
import type { Database } from '../../src/index.js';
import { freshTestDatabaseUrl } from '../support/postgres.js';
import { builtCli, makeBank, spawnCli, tempDir, type RunningCli } from './cli-support.js';

type Line =
  | { kind: 'update'; collection: string; key: unknown; val: unknown; ts: number; diff: number }
  | { kind: 'progress'; upper: number };

const parse = (lines: readonly string[]): Line[] => lines.filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Line);
const lastProgress = (lines: readonly string[]): number => {
  const p = parse(lines).filter((l): l is Extract<Line, { kind: 'progress' }> => l.kind === 'progress');
  return p.length === 0 ? -1 : p.at(-1)!.upper;
};

/** Contents per collection at the last progress line, from the lines alone. */
function materialize(lines: readonly Line[]): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  let pending: Extract<Line, { kind: 'update' }>[] = [];
  for (const l of lines) {
    if (l.kind === 'update') pending.push(l);
    else {
      for (const u of pending) {
        const m = out.get(u.collection) ?? new Map<string, number>();
        out.set(u.collection, m);
        const k = JSON.stringify([u.key, u.val]);
        const n = (m.get(k) ?? 0) + u.diff;
        if (n === 0) m.delete(k);
        else m.set(k, n);
      }
      pending = [];
    }
  }
  return out;
}

function asMap(rows: [unknown, unknown, number][]): Map<string, number> {
  return new Map(rows.map(([k, v, d]) => [JSON.stringify([k, v]), d]));
}

async function interruptAndWait(tail: RunningCli): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  tail.child.kill('SIGINT');
  const { code } = await tail.exited;
  return { code, ms: Date.now() - started };
}

function scenario(kind: string, makeUrl: () => Promise<{ url: string; cleanup: () => Promise<void> }>): void {
  describe(`txnwal tail on a ${kind} store`, function () {
    this.timeout(180_000);
    let url: string;
    let cleanup: () => Promise<void>;
    let db: Database;

    before(async () => {
      await builtCli();
      ({ url, cleanup } = await makeUrl());
      ({ db } = await makeBank(url));
    });
    after(async () => {
      await db?.close();
      await cleanup?.();
    });

    it('follows two collections at one frontier until SIGINT, then exits 0 at once', async () => {
      const tail = await spawnCli(['tail', url, 'accounts', 'audit', '--json', '--poll-ms', '20']);
      try {
        await tail.waitFor((ls) => lastProgress(ls) >= 0, 'the first progress line');
        const start = lastProgress(tail.lines);
        // The lines before the first progress are the contents as of start - 1.
        const snap0 = await db.snapshot(['accounts', 'audit'], start - 1);
        const first = materialize(parse(tail.lines));
        expect(first.get('accounts')).to.deep.equal(asMap(snap0.collections.accounts as [unknown, unknown, number][]));
        expect(first.get('audit')).to.deep.equal(asMap(snap0.collections.audit as [unknown, unknown, number][]));

        // One transaction across both collections: its updates come before one progress line past it.
        const { commitTs } = await db.write({
          accounts: [['alice', null, -1], ['erin', null, 1]],
          audit: [[{ from: 'alice', to: 'erin', amount: 1 }, null, 1]],
        });
        await tail.waitFor((ls) => lastProgress(ls) > commitTs, `progress past the commit at ${commitTs}`);
        const all = parse(tail.lines);
        const at = all.filter((l) => l.kind === 'update' && l.ts === commitTs);
        expect(at.map((l) => l.kind === 'update' && [l.collection, l.key, l.diff])).to.have.deep.members([
          ['accounts', 'alice', -1],
          ['accounts', 'erin', 1],
          ['audit', { from: 'alice', to: 'erin', amount: 1 }, 1],
        ]);
        // No progress line between the first and the last update of the commit, and one right after, past it.
        const i0 = all.indexOf(at[0]!);
        const i1 = all.indexOf(at.at(-1)!);
        expect(all.slice(i0, i1 + 1).some((l) => l.kind === 'progress'), 'the commit is not split by a progress line').to.equal(false);
        const after = all.slice(i1 + 1).find((l) => l.kind === 'progress');
        expect(after && after.kind === 'progress' && after.upper > commitTs).to.equal(true);
        // Progress is monotonic and every update lies in its interval.
        let lower = -Infinity;
        for (const l of all) {
          if (l.kind === 'progress') {
            expect(l.upper).to.be.above(lower);
            lower = l.upper;
          }
        }

        // A few more commits; the tail's view at its last progress equals the library's.
        let last = commitTs;
        for (let i = 0; i < 5; i++) last = (await db.write({ accounts: [[`k${i}`, null, i + 1]] })).commitTs;
        await tail.waitFor((ls) => lastProgress(ls) > last, `progress past ${last}`);
        const upper = lastProgress(tail.lines);
        const view = materialize(parse(tail.lines));
        const snap = await db.snapshot(['accounts', 'audit'], upper - 1);
        expect(view.get('accounts')).to.deep.equal(asMap(snap.collections.accounts as [unknown, unknown, number][]));
        expect(view.get('audit')).to.deep.equal(asMap(snap.collections.audit as [unknown, unknown, number][]));
        expect(tail.stderr()).to.equal('');
      } finally {
        const { code, ms } = await interruptAndWait(tail);
        expect(code, `exit code after SIGINT; stderr: ${tail.stderr()}`).to.equal(0);
        expect(ms, 'exits promptly after SIGINT').to.be.below(5_000);
      }
    });

    it('text lines: update <collection> <key> <val> <ts> <diff> and progress <upper>', async () => {
      const tail = await spawnCli(['tail', url, 'accounts']);
      try {
        await tail.waitFor((ls) => ls.some((l) => l.startsWith('progress ')), 'a progress line');
        const { commitTs } = await db.write({ accounts: [['frank', null, 4]] });
        await tail.waitFor((ls) => ls.some((l) => l === `update accounts "frank" null ${commitTs} 4`), `the update at ${commitTs}`);
        for (const l of tail.lines) expect(l).to.match(/^(update accounts "[^"]*" null \d+ -?\d+|progress \d+)$/);
      } finally {
        const { code } = await interruptAndWait(tail);
        expect(code).to.equal(0);
      }
    });
  });
}

scenario('file:', async () => {
  const dir = await tempDir('txnwal-cli-tail-');
  return { url: `file:${path.join(dir, 'data')}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

scenario('Postgres', async () => {
  const dir = await tempDir('txnwal-cli-tail-pg-');
  const pgUrl = await freshTestDatabaseUrl();
  return { url: `${pgUrl}?blob=file:${path.join(dir, 'blob')}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
});
