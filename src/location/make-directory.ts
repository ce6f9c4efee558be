/**
 * makeDirectory: `mkdir -p` with an exact mode on every directory it creates.
 *
 * Why not `fs.mkdir(dir, { recursive: true })`: on Node 20 it never settles when a
 * parent exists but refuses new entries with ENOENT (e.g. `/proc/x`), so opening
 * `file:/proc/x` hung forever. Here each level is created with a plain mkdir, and
 * a level that still fails after its parent exists is an error.
 *
 * Directories that already exist keep their mode; created ones get exactly `mode`
 * (chmod after mkdir, so the umask cannot take away the owner's bits).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

/** Creates `dir` and its missing parents with `mode`; throws the fs error if it cannot. */
export async function makeDirectory(dir: string, mode: number): Promise<void> {
  const abs = path.resolve(dir);
  try {
    await fs.mkdir(abs, { mode });
    await fs.chmod(abs, mode);
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST') {
      if ((await fs.stat(abs)).isDirectory()) return;
      throw err;
    }
    const parent = path.dirname(abs);
    if (code !== 'ENOENT' || parent === abs) throw err;
    await makeDirectory(parent, mode);
  }
  // The parent exists now: one more try, whose failure is final.
  try {
    await fs.mkdir(abs, { mode });
    await fs.chmod(abs, mode);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST' && (await fs.stat(abs)).isDirectory()) return;
    throw err;
  }
}
