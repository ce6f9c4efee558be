/**
 * Drives test/persist/wake-writer-child.ts: a writer in a process of its own, for the
 * cross-process wake-up tests.
 *
 * Example:
 * ```ts
 * const child = await startWriterChild('file:/tmp/x', shardId);
 * await child.append(0);       // resolves when the child printed "acked 0"
 * child.kill('SIGKILL');
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const childScript = fileURLToPath(new URL('../persist/wake-writer-child.ts', import.meta.url));

export interface WriterChild {
  /** Whether the child serves the file: channel's socket (false for other backends). */
  readonly serving: boolean;
  readonly process: ChildProcess;
  /** Appends one update at `ts` in the child; resolves on its acknowledgement. */
  append(ts: number): Promise<void>;
  /** Closes the child's client and waits for it to exit. */
  exit(): Promise<void>;
  /** Resolves when the child has exited (after a kill, say). */
  exited: Promise<void>;
}

export async function startWriterChild(url: string, shardId: string): Promise<WriterChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript, url, shardId], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = readline.createInterface({ input: child.stdout! });
  const waiting: Array<{ line: string; resolve: () => void; reject: (e: Error) => void }> = [];
  let serving: ((s: boolean) => void) | undefined;
  const ready = new Promise<boolean>((resolve) => (serving = resolve));
  lines.on('line', (line) => {
    if (line.startsWith('ready ')) return serving!(line === 'ready serving=true');
    const i = waiting.findIndex((w) => w.line === line);
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve();
  });
  void exited.then(() => {
    for (const w of waiting.splice(0)) w.reject(new Error(`writer child exited before "${w.line}":\n${stderr}`));
  });
  const started = await Promise.race([ready, exited.then(() => undefined)]);
  if (started === undefined) throw new Error(`writer child exited before it was ready:\n${stderr}`);
  return {
    serving: started,
    process: child,
    exited,
    append(ts) {
      return new Promise<void>((resolve, reject) => {
        waiting.push({ line: `acked ${ts}`, resolve, reject });
        child.stdin!.write(`append ${ts}\n`);
      });
    },
    async exit() {
      child.stdin!.write('exit\n');
      await exited;
    },
  };
}
