/**
 * The `s3://` blob URL: which bucket, which key prefix, and how to reach the store.
 *
 * Form: `s3://<bucket>/<prefix>?endpoint=…&region=…&forcePathStyle=true`
 * - `<bucket>`: the bucket, which must exist (txnwal never creates buckets).
 * - `<prefix>`: optional; every key lives under it. A missing trailing `/` is added,
 *   so `s3://b/prod` and `s3://b/prod/` name the same keys.
 * - `endpoint`: optional, for S3-compatible stores (MinIO, Ceph, a test server), e.g.
 *   `http://127.0.0.1:9000`. Without it the SDK talks to AWS.
 * - `region`: optional; without it the SDK's default chain decides (`AWS_REGION`, the
 *   profile's region).
 * - `forcePathStyle`: `true` addresses buckets as `<endpoint>/<bucket>` instead of
 *   `<bucket>.<endpoint>`, which most self-hosted stores need. Default false.
 * - `connectTimeoutMs`, `requestTimeoutMs`, `maxAttempts`: see {@link S3BlobOptions}.
 *
 * Invariants:
 * - Credentials never come from the URL: a user:password part or a parameter that
 *   looks like a key is refused with a message that says where credentials go (the
 *   SDK's default chain: environment, profile, instance or task role).
 * - Unknown parameters are refused (a typo must not silently fall back to a
 *   default), and so are repeated ones.
 *
 * Example:
 * ```ts
 * parseS3Url('s3://data/txnwal?endpoint=http://127.0.0.1:9000&region=us-east-1&forcePathStyle=true');
 * // { bucket: 'data', prefix: 'txnwal/', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', forcePathStyle: true }
 * ```
 */
import { LocationUsageError } from './errors.js';
import { redactUrl } from './redact-url.js';

/**
 * Where an {@link S3Blob} keeps its keys and how it talks to the store.
 *
 * Example:
 * ```ts
 * const blob = await S3Blob.open({ bucket: 'data', prefix: 'txnwal/', region: 'eu-west-1' });
 * ```
 */
export interface S3BlobOptions {
  /** The bucket; it must exist (txnwal never creates buckets). */
  bucket: string;
  /** Key prefix; `''` for the whole bucket. A trailing `/` is added when missing. */
  prefix?: string;
  /** An S3-compatible endpoint URL (`http://host:port`); default: AWS. */
  endpoint?: string;
  /** Default: the SDK's region chain (`AWS_REGION`, the profile). */
  region?: string;
  /** Path-style addressing (`<endpoint>/<bucket>`). Default false. */
  forcePathStyle?: boolean;
  /** Deletes keep a tombstone copy so `restore` can undelete. Default false. */
  tombstone?: boolean;
  /** Milliseconds to establish a connection. Default 5 000. */
  connectTimeoutMs?: number;
  /**
   * Milliseconds a request may go without any bytes moving before it is abandoned
   * (an inactivity timeout, so a 128 MiB part on a slow link is not cut off while it
   * makes progress). Default 30 000.
   */
  requestTimeoutMs?: number;
  /** Attempts per request, the first included (the SDK retries transient faults). Default 3. */
  maxAttempts?: number;
  /** Values larger than this go up as multipart uploads. Default 8 MiB. */
  multipartThresholdBytes?: number;
  /** Size of one uploaded part (at least 5 MiB, S3's minimum). Default 8 MiB. */
  partSizeBytes?: number;
  /** Parts of one multipart upload in flight at once. Default 4. */
  partConcurrency?: number;
  /** Keys per listing page (S3's maximum is 1 000). Default 1 000. */
  listPageSize?: number;
}

/** The URL parameters of an s3:// URL and how each is read. */
const PARAMS = {
  endpoint: 'string',
  region: 'string',
  forcePathStyle: 'boolean',
  connectTimeoutMs: 'integer',
  requestTimeoutMs: 'integer',
  maxAttempts: 'integer',
} as const;

type ParamName = keyof typeof PARAMS;

/** The query parameters that belong to an s3:// URL (see {@link moveS3Params}). */
export const S3_URL_PARAMS: readonly string[] = Object.keys(PARAMS);

const CREDENTIALS_HELP =
  'credentials never go in the URL: txnwal uses the AWS SDK default chain ' +
  '(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance or task role)';

const FORM = 's3://<bucket>/<prefix>?endpoint=http://host:port&region=us-east-1&forcePathStyle=true';

function fail(url: string, problem: string): LocationUsageError {
  return new LocationUsageError(`S3 blob URL ${JSON.stringify(redactUrl(url))}: ${problem}`);
}

/**
 * Parses an `s3://` URL into {@link S3BlobOptions}; throws LocationUsageError saying what to write
 * instead.
 *
 * Example:
 * ```ts
 * parseS3Url('s3://data/prod?region=eu-west-1');   // { bucket: 'data', prefix: 'prod/', region: 'eu-west-1' }
 * ```
 */
export function parseS3Url(url: string): S3BlobOptions {
  if (!url.startsWith('s3://')) throw fail(url, `expected ${FORM}`);
  const rest = url.slice('s3://'.length);
  const queryAt = rest.indexOf('?');
  const path = queryAt < 0 ? rest : rest.slice(0, queryAt);
  const query = new URLSearchParams(queryAt < 0 ? '' : rest.slice(queryAt + 1));
  const slash = path.indexOf('/');
  const authority = slash < 0 ? path : path.slice(0, slash);
  if (authority.includes('@')) throw fail(url, CREDENTIALS_HELP);
  const bucket = decodeURIComponent(authority);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw fail(url, `bad bucket name ${JSON.stringify(bucket)}: 3–63 characters of a-z, 0-9, "." and "-"; expected ${FORM}`);
  }
  const prefix = slash < 0 ? '' : decodeURIComponent(path.slice(slash + 1));
  const options: S3BlobOptions = { bucket, prefix };
  const seen = new Set<string>();
  for (const [name, value] of query) {
    if (seen.has(name)) throw fail(url, `parameter ${name} is given twice; keep one`);
    seen.add(name);
    if (/key|secret|token|password|credential/i.test(name)) throw fail(url, CREDENTIALS_HELP);
    if (!(name in PARAMS)) {
      throw fail(url, `unknown parameter ${JSON.stringify(name)}; the accepted ones are ${S3_URL_PARAMS.join(', ')}`);
    }
    const param = name as ParamName;
    const kind = PARAMS[param];
    if (kind === 'boolean') {
      if (value !== 'true' && value !== 'false') throw fail(url, `${name} must be true or false, got ${JSON.stringify(value)}`);
      options.forcePathStyle = value === 'true';
    } else if (kind === 'integer') {
      const n = Number(value);
      if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
        throw fail(url, `${name} must be a positive integer, got ${JSON.stringify(value)}`);
      }
      (options as Record<ParamName, unknown>)[param] = n;
    } else {
      if (value === '') throw fail(url, `${name} is empty; give a value or leave the parameter out`);
      if (param === 'endpoint') checkEndpoint(url, value);
      (options as Record<ParamName, unknown>)[param] = value;
    }
  }
  return options;
}

function checkEndpoint(url: string, endpoint: string): void {
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw fail(url, `endpoint ${JSON.stringify(endpoint)} is not a URL; write it as http://host:port or https://host`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw fail(url, `endpoint must be an http:// or https:// URL, got ${JSON.stringify(parsed.protocol)}`);
  }
  if (parsed.username !== '' || parsed.password !== '') throw fail(url, CREDENTIALS_HELP);
}

/**
 * Moves the s3:// parameters found in `outer` (the query of an enclosing location URL)
 * into the blob URL `blobUrl`, so that `postgres://…?blob=s3://b/p?endpoint=…&region=…`
 * works unescaped: the outer URL's parser splits `&region=…` off the blob parameter,
 * and this puts it back. A parameter given in both places is refused.
 */
export function moveS3Params(blobUrl: string, outer: URLSearchParams): string {
  const moved: string[] = [];
  for (const name of S3_URL_PARAMS) {
    for (const value of outer.getAll(name)) moved.push(`${name}=${encodeURIComponent(value)}`);
    outer.delete(name);
  }
  if (moved.length === 0) return blobUrl;
  return blobUrl + (blobUrl.includes('?') ? '&' : '?') + moved.join('&');
}

/** The display form of a blob's home, e.g. `s3://bucket/prefix/` (never with credentials: there are none). */
export function describeS3Home(options: S3BlobOptions): string {
  return `s3://${options.bucket}/${options.prefix ?? ''}`;
}
