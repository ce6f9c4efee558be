/**
 * How a failed S3 request becomes a location-layer fault: did the operation
 * definitely not happen (DeterminateError) or may it have happened (IndeterminateError)?
 *
 * The SDK retries transient failures itself (bounded by `maxAttempts`), and the error
 * it finally throws describes only the LAST attempt. That is not enough: a PUT whose
 * first attempt timed out after the body was sent may have been stored, even if the
 * retry then found the server gone (ECONNREFUSED, which alone would mean "never
 * sent"). So every write carries an {@link AttemptLog}: a middleware inside the
 * SDK's retry loop looks at each attempt's failure and remembers whether any of them
 * may have reached the store.
 *
 * Per attempt:
 * - the connection was never made (refused, DNS failure, unreachable, connect
 *   timeout): it did not reach the store;
 * - the store answered with a 4xx status (access denied, no such bucket, bad
 *   request): the store refused it;
 * - anything else (a 5xx, a timeout or reset after the request went out, an abort):
 *   it may have been applied.
 *
 * Reads never change anything, so their failures are always determinate.
 *
 * Secrets: the SDK's errors can carry the signed request and the access key id in
 * their properties. {@link sanitizedCause} keeps only name, code, status and message,
 * so neither an error message nor `util.inspect(err)` shows a credential.
 *
 * Example:
 * ```ts
 * const log = new AttemptLog();
 * log.attach(command);                 // before client.send(command)
 * // … send fails …
 * throw storageFault('S3Blob: set "k" failed', err, { write: true, log });
 * ```
 */
import type { MiddlewareStack } from '@smithy/types';
import { DeterminateError, IndeterminateError, type ExternalError } from './errors.js';

/** Node error codes of a connection that was never established: nothing was sent. */
const NOT_CONNECTED_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  errors?: unknown;
}

function shape(err: unknown): ErrorShape {
  return typeof err === 'object' && err !== null ? (err as ErrorShape) : {};
}

/** The HTTP status the store answered with, if a response arrived. */
export function httpStatusOf(err: unknown): number | undefined {
  const status = shape(err).$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** True if `err` says the connection was never made (so the request never left). */
function neverConnected(err: unknown): boolean {
  const e = shape(err);
  if (typeof e.code === 'string' && NOT_CONNECTED_CODES.has(e.code)) return true;
  // Happy-eyeballs connects report an AggregateError of per-address failures.
  if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every(neverConnected)) return true;
  // The SDK's connect timeout: "…did not establish a connection with the server…".
  return e.name === 'TimeoutError' && typeof e.message === 'string' && e.message.includes('did not establish a connection');
}

/** True if this one attempt's failure leaves open that the store applied it. */
export function attemptMayHaveApplied(err: unknown): boolean {
  const status = httpStatusOf(err);
  // A 4xx (denied, throttled, malformed, timed out reading the request) is a refusal.
  if (status !== undefined) return status >= 500;
  return !neverConnected(err);
}

/** Records, across the SDK's retries of one command, whether any attempt may have been applied. */
export class AttemptLog {
  mayHaveApplied = false;
  attempts = 0;

  /** Adds the observing middleware to `command`'s own stack (inside the retry loop). */
  attach(command: { middlewareStack: MiddlewareStack<any, any> }): void {
    command.middlewareStack.add(
      (next) => async (args) => {
        this.attempts += 1;
        try {
          return await next(args);
        } catch (err) {
          if (attemptMayHaveApplied(err)) this.mayHaveApplied = true;
          throw err;
        }
      },
      // finalizeRequest runs once per attempt below the retry middleware (priority
      // high in the same step), and above deserialization, so it sees parsed errors.
      { step: 'finalizeRequest', priority: 'low', name: 'txnwalAttemptLog' },
    );
  }
}

/** A plain Error with only the harmless facts of `err`: name, code, HTTP status, message. */
export function sanitizedCause(err: unknown): Error {
  const e = shape(err);
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const code = typeof e.code === 'string' ? ` ${e.code}` : '';
  const status = httpStatusOf(err);
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
  const cause = new Error(`${name}${code}${status === undefined ? '' : ` (HTTP ${status})`}: ${message}`);
  cause.name = name;
  return cause;
}

/**
 * The fault for a failed S3 operation: determinate for reads and for writes whose
 * every attempt provably missed the store, indeterminate otherwise.
 */
export function storageFault(what: string, err: unknown, how: { write: boolean; log?: AttemptLog }): ExternalError {
  const cause = sanitizedCause(err);
  const mayHaveHappened = how.write && (how.log === undefined || how.log.mayHaveApplied || attemptMayHaveApplied(err));
  if (mayHaveHappened) {
    return new IndeterminateError(`${what} and may have taken effect: ${cause.message}`, { cause });
  }
  return new DeterminateError(`${what}; nothing was changed: ${cause.message}`, { cause });
}
