/**
 * The Chromium a browser test drives, found or installed by the test itself, as the
 * Postgres tests start their own server: `TXNWAL_TEST_CHROMIUM` if set, else Debian's
 * `/usr/bin/chromium`; when that is missing on a machine with apt-get, `apt-get install
 * -y chromium` as root (or through `sudo -n` when it needs no password), once per run,
 * after an `apt-get update` if the package lists are stale. Otherwise the test fails with one message saying
 * how to provide it; it is never skipped. (playwright-core drives the browser; it
 * downloads none of its own.)
 *
 * Example:
 * ```ts
 * before(async function () { this.timeout(CHROMIUM_INSTALL_TIMEOUT_MS); executablePath = await testChromium(); });
 * ```
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const DEBIAN_CHROMIUM = '/usr/bin/chromium';
/** A first install on a fresh machine downloads ~100 MB of packages. */
export const CHROMIUM_INSTALL_TIMEOUT_MS = 10 * 60_000;

let installing: Promise<string> | undefined;

export function testChromium(): Promise<string> {
  const given = process.env.TXNWAL_TEST_CHROMIUM;
  if (given !== undefined) {
    if (!existsSync(given)) return Promise.reject(new Error(`TXNWAL_TEST_CHROMIUM=${given}: no such file; point it at a Chromium or Chrome binary`));
    return Promise.resolve(given);
  }
  if (existsSync(DEBIAN_CHROMIUM)) return Promise.resolve(DEBIAN_CHROMIUM);
  installing ??= install();
  return installing;
}

async function install(): Promise<string> {
  const howTo = 'install it (Debian/Ubuntu: sudo apt-get install -y chromium) or set TXNWAL_TEST_CHROMIUM to a Chromium or Chrome binary';
  const asRoot = process.getuid?.() === 0;
  if (!existsSync('/usr/bin/apt-get') || (!asRoot && !existsSync('/usr/bin/sudo'))) {
    throw new Error(`no Chromium at ${DEBIAN_CHROMIUM}, and the tests cannot install it here (no apt-get, or not root and no sudo): ${howTo}`);
  }
  const run = promisify(execFile);
  const opts = { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 * 1024 * 1024 };
  // `sudo -n` fails at once instead of asking for a password nobody will type.
  const aptGet = (...args: string[]) => (asRoot ? run('apt-get', args, opts) : run('sudo', ['-n', 'apt-get', ...args], opts));
  process.stderr.write(`      installing Debian's chromium for the browser tests (apt-get install -y chromium)…\n`);
  try {
    await aptGet('install', '-y', 'chromium').catch(async () => {
      await aptGet('update');
      await aptGet('install', '-y', 'chromium');
    });
  } catch (err) {
    throw new Error(`installing chromium with apt-get failed (${(err as Error).message.split('\n')[0]}): ${howTo}`);
  }
  if (!existsSync(DEBIAN_CHROMIUM)) throw new Error(`apt-get installed chromium but ${DEBIAN_CHROMIUM} is missing: ${howTo}`);
  return DEBIAN_CHROMIUM;
}
