/**
 * Runs a program in a child process and reports how it ended, for tests that check a
 * whole program: a README block, a packed-package consumer, `npm pack`.
 *
 * - It never rejects because the program failed: a non-zero exit, a signal or a
 *   timeout is part of the result, so a test can put the output into its message.
 *   It rejects only when the program could not be started at all (ENOENT, …).
 * - `timeoutMs` kills the child (SIGKILL: a program stuck in a hang may ignore
 *   SIGTERM) and sets `timedOut`, which is how a test tells "did not exit on its own"
 *   from "exited with an error".
 *
 * Example:
 * ```ts
 * const r = await runChild(process.execPath, ['--import', 'tsx', 'block.ts'], { cwd: dir, timeoutMs: 30_000 });
 * expect(r.code, r.stderr).to.equal(0);
 * ```
 */
import { execFile } from 'node:child_process';

export interface ChildResult {
  /** The exit code, or null when a signal ended it. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** True when the child was killed for running longer than `timeoutMs`. */
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunChildOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs: number;
}

export function runChild(command: string, args: readonly string[], opts: RunChildOptions): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = execFile(
      command,
      [...args],
      { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        // A string code is a spawn failure (ENOENT, EACCES); a numeric one is the exit code.
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
        const timedOut = child.signalCode === 'SIGKILL' && Date.now() - started >= opts.timeoutMs;
        resolve({ code: child.exitCode, signal: child.signalCode, timedOut, stdout, stderr });
      },
    );
  });
}

/** A one-paragraph account of how a child ended, for assertion messages. */
export function describeChild(what: string, r: ChildResult): string {
  const how = r.timedOut ? 'did not exit within its time limit (killed)' : r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
  return `${what} ${how}\n--- stderr ---\n${r.stderr.trimEnd()}\n--- stdout ---\n${r.stdout.trimEnd()}`;
}
