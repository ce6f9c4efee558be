/**
 * redactUrl: a URL fit for display, with its secrets replaced by `***`.
 *
 * Every message, log line and `url`/`toString()`/`inspect` output that names a
 * location or an oracle goes through this, so a Postgres password never leaves the
 * objects that need it to connect.
 *
 * Invariants:
 * - Works on the raw string, never on a parse of it: a URL that does not parse (a typo,
 *   a wrong scheme, `postgress://`) is redacted as well as a good one, and a URL
 *   without secrets comes back unchanged, character for character.
 * - Redacts the password of every `scheme://user:password@` it finds (including a URL
 *   nested in a query parameter, such as `?blob=`), and the value of every
 *   `password=` / `sslpassword=` parameter.
 * - Errs toward hiding too much: the password is taken to run to the LAST `@` of the
 *   string, so a password holding an unescaped `@` or `/` is hidden whole (at the cost
 *   of also hiding the host when a later part of the URL contains an `@`).
 *
 * Example:
 * ```ts
 * redactUrl('postgres://u:hunter2@db:5432/x?blob=mem://')   // 'postgres://u:***@db:5432/x?blob=mem://'
 * redactUrl('postgress://u:hunter2@db/x')                   // 'postgress://u:***@db/x'
 * redactUrl('postgres://db/x?password=hunter2&sslmode=require') // 'postgres://db/x?password=***&sslmode=require'
 * ```
 */

/** `scheme://user:` then the password, greedily up to the last `@`. */
const USERINFO_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):.+@/gi;

/** `password=…` and `sslpassword=…` as query or key/value parameters. */
const PASSWORD_PARAM = /(password=)[^&#\s]*/gi;

/** The placeholder that stands for a removed secret. */
export const REDACTED = '***';

/**
 * `url` with every password replaced by `***`; see the module comment.
 *
 * Example:
 * ```ts
 * redactUrl('postgres://u:hunter2@db/x');   // 'postgres://u:***@db/x'
 * ```
 */
export function redactUrl(url: string): string {
  return url.replace(USERINFO_PASSWORD, `$1:${REDACTED}@`).replace(PASSWORD_PARAM, `$1${REDACTED}`);
}
