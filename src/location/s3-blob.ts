/**
 * S3Blob: a {@link Blob} in an S3 bucket (or any S3-compatible store), every key
 * under one prefix, through the AWS SDK v3 client.
 *
 * Invariants:
 * - Key `k` is the object `<prefix>k`. Keys must be non-empty and must not start
 *   with `.`: `<prefix>.tombstone/` holds the tombstones of tombstone mode, and
 *   listing never shows anything under it.
 * - `set` is atomic because S3 PUTs are: a reader sees the old object or the whole
 *   new one. Values larger than `multipartThresholdBytes` go up as a multipart
 *   upload whose parts are views of the caller's array (no copies), a few in
 *   flight at once; the object appears only when the upload completes, and a failed
 *   upload is aborted. `get` streams the body into one array of the announced
 *   length, so a 128 MiB part needs 128 MiB plus the socket's buffers.
 * - `delete` asks for the object's size first (S3's DELETE does not say whether the
 *   key existed), then deletes. Two racing deletes may both report the size.
 * - Tombstone mode: `delete` first copies the object to `<prefix>.tombstone/k`
 *   (server side), and `restore` copies it back if `k` is missing. S3 has no
 *   no-clobber copy, so a `set` racing a `restore` may lose to the older value;
 *   persist never restores a key it is writing.
 * - Faults: a failed read is a DeterminateError. A failed write is an
 *   IndeterminateError unless every attempt provably missed the store (see
 *   `s3-faults.ts`); a multipart upload that fails before its completion request is
 *   determinate, since parts are invisible until then. Requests have a connect
 *   timeout, an inactivity timeout and `maxAttempts` attempts (the SDK's standard
 *   retry with backoff on 5xx, throttling, timeouts and resets).
 * - Credentials come only from the SDK's default chain (environment, profile,
 *   instance or task role). Messages name the operation, the key and
 *   `s3://bucket/prefix`, never a credential; the `cause` of a fault is a plain Error
 *   with the SDK error's name, code, status and message only.
 * - `close()` destroys the client and its sockets; further calls throw
 *   LocationUsageError.
 *
 * Example:
 * ```ts
 * const b = await S3Blob.open({ bucket: 'data', prefix: 'txnwal', region: 'eu-west-1' });
 * await b.set('s1/p1', bytes);   // object data/txnwal/s1/p1
 * await b.listKeysAndMetadata('s1/', (k, n) => console.log(k, n)); // s1/p1 <size>
 * await b.close();
 * ```
 */
import type { CompleteMultipartUploadCommand, CompletedPart, CopyObjectCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { s3Module } from './lazy-modules.js';
import type { Readable } from 'node:stream';
import type { Blob } from './blob.js';
import { plainBytes } from './bytes.js';
import { DeterminateError, LocationUsageError } from './errors.js';
import { AttemptLog, httpStatusOf, sanitizedCause, storageFault } from './s3-faults.js';
import { describeS3Home, parseS3Url, type S3BlobOptions } from './s3-url.js';

export type { S3BlobOptions } from './s3-url.js';

const MiB = 1024 * 1024;
/** S3 refuses parts below 5 MiB (except the last) and uploads of more than 10 000 parts. */
const MIN_PART_SIZE = 5 * MiB;
const MAX_PARTS = 10_000;
/** S3 object keys are at most 1 024 bytes of UTF-8. */
const MAX_OBJECT_KEY_BYTES = 1024;
const TOMBSTONES = '.tombstone/';

const DEFAULTS = {
  connectTimeoutMs: 5_000,
  requestTimeoutMs: 30_000,
  maxAttempts: 3,
  multipartThresholdBytes: 8 * MiB,
  partSizeBytes: 8 * MiB,
  partConcurrency: 4,
  listPageSize: 1_000,
};

type Settings = typeof DEFAULTS;

function positiveInteger(value: number | undefined, fallback: number, what: string, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new LocationUsageError(`S3Blob option ${what} must be an integer of at least ${min}, got ${String(value)}`);
  }
  return value;
}

function settingsOf(o: S3BlobOptions): Settings {
  const listPageSize = positiveInteger(o.listPageSize, DEFAULTS.listPageSize, 'listPageSize');
  if (listPageSize > 1000) throw new LocationUsageError(`S3Blob option listPageSize must be at most 1000 (S3's page limit), got ${listPageSize}`);
  return {
    connectTimeoutMs: positiveInteger(o.connectTimeoutMs, DEFAULTS.connectTimeoutMs, 'connectTimeoutMs'),
    requestTimeoutMs: positiveInteger(o.requestTimeoutMs, DEFAULTS.requestTimeoutMs, 'requestTimeoutMs'),
    maxAttempts: positiveInteger(o.maxAttempts, DEFAULTS.maxAttempts, 'maxAttempts'),
    multipartThresholdBytes: positiveInteger(o.multipartThresholdBytes, DEFAULTS.multipartThresholdBytes, 'multipartThresholdBytes', 0),
    partSizeBytes: positiveInteger(o.partSizeBytes, DEFAULTS.partSizeBytes, 'partSizeBytes (S3 needs at least 5 MiB)', MIN_PART_SIZE),
    partConcurrency: positiveInteger(o.partConcurrency, DEFAULTS.partConcurrency, 'partConcurrency'),
    listPageSize,
  };
}

function normalizePrefix(prefix: string | undefined): string {
  if (prefix === undefined || prefix === '') return '';
  return prefix.endsWith('/') ? prefix : prefix + '/';
}

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return httpStatusOf(err) === 404 && name !== 'NoSuchBucket' && name !== 'NoSuchUpload';
}

export class S3Blob implements Blob {
  private closed = false;
  /** `s3://bucket/prefix/`, for messages. */
  readonly home: string;

  private constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly tombstone: boolean,
    private readonly settings: Settings,
  ) {
    this.home = `s3://${bucket}/${prefix}`;
  }

  /**
   * Opens the blob at `target` (an `s3://` URL or {@link S3BlobOptions}) and checks
   * that the bucket is reachable with the credentials at hand.
   */
  static async open(target: string | S3BlobOptions, overrides: Partial<S3BlobOptions> = {}): Promise<S3Blob> {
    const options = { ...(typeof target === 'string' ? parseS3Url(target) : target), ...overrides };
    if (typeof options.bucket !== 'string' || options.bucket === '') {
      throw new LocationUsageError(`S3Blob: option bucket must name a bucket, got ${JSON.stringify(options.bucket)}`);
    }
    const settings = settingsOf(options);
    const prefix = normalizePrefix(options.prefix);
    const home = describeS3Home({ ...options, prefix });
    if (prefix.startsWith('.') || prefix.includes(`/${TOMBSTONES}`)) {
      throw new LocationUsageError(`S3Blob ${home}: the prefix must not start with "." or contain "/${TOMBSTONES}" (reserved for tombstones)`);
    }
    const client = new (s3Module().S3Client)({
      // Credentials: deliberately absent, so the SDK's default provider chain applies.
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.forcePathStyle ?? false,
      maxAttempts: settings.maxAttempts,
      // The SDK's default CRC32 headers on every upload are refused by some
      // S3-compatible stores; against a custom endpoint send them only where the API
      // requires them. (Persist checksums its own parts and rollups either way.)
      ...(options.endpoint === undefined ? {} : { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
      requestHandler: {
        connectionTimeout: settings.connectTimeoutMs,
        // An inactivity timeout (socket idle), not a deadline for the whole transfer.
        socketTimeout: settings.requestTimeoutMs,
      },
    });
    try {
      try {
        await client.config.region();
      } catch {
        throw new LocationUsageError(
          `S3Blob ${home}: no region; add &region=<region> to the s3:// URL (any value, e.g. us-east-1, for most S3-compatible stores) or set AWS_REGION`,
        );
      }
      try {
        await client.send(new (s3Module().HeadBucketCommand)({ Bucket: options.bucket }));
      } catch (err) {
        const status = httpStatusOf(err);
        const hint =
          status === 404
            ? ': the bucket does not exist; create it first (txnwal never creates buckets)'
            : status === 403
              ? ': access denied; check the credentials in the AWS SDK default chain and the bucket policy'
              : '';
        throw new DeterminateError(`S3Blob ${home}: cannot reach the bucket${hint}: ${sanitizedCause(err).message}`, {
          cause: sanitizedCause(err),
        });
      }
    } catch (err) {
      client.destroy();
      throw err;
    }
    return new S3Blob(client, options.bucket, prefix, options.tombstone ?? false, settings);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const objectKey = this.objectKey(key);
    let body: Readable;
    let length: number | undefined;
    try {
      const res = await this.client.send(new (s3Module().GetObjectCommand)({ Bucket: this.bucket, Key: objectKey }));
      body = res.Body as Readable;
      length = res.ContentLength;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw storageFault(this.what('get', key), err, { write: false });
    }
    try {
      return await readBody(body, length);
    } catch (err) {
      body.destroy();
      throw storageFault(this.what('get', key), err, { write: false });
    }
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    const objectKey = this.objectKey(key);
    if (value.byteLength > this.settings.multipartThresholdBytes) {
      await this.multipartSet(key, objectKey, value);
      return;
    }
    await this.write('set', key, new (s3Module().PutObjectCommand)({ Bucket: this.bucket, Key: objectKey, Body: value, ContentLength: value.byteLength }));
  }

  async delete(key: string): Promise<number | undefined> {
    const objectKey = this.objectKey(key);
    const size = await this.sizeOf('delete', key, objectKey);
    if (size === undefined) return undefined;
    if (this.tombstone) await this.copy('delete', key, objectKey, this.prefix + TOMBSTONES + key);
    await this.write('delete', key, new (s3Module().DeleteObjectCommand)({ Bucket: this.bucket, Key: objectKey }));
    return size;
  }

  async listKeysAndMetadata(prefix: string, fn: (key: string, sizeBytes: number) => void): Promise<void> {
    this.checkOpen();
    // No live key starts with ".", so such a prefix can only match tombstones.
    if (prefix.startsWith('.')) return;
    const found: [string, number][] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new (s3Module().ListObjectsV2Command)({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            MaxKeys: this.settings.listPageSize,
            ContinuationToken: token,
          }),
        );
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined) continue;
          const key = object.Key.slice(this.prefix.length);
          if (key.startsWith(TOMBSTONES)) continue;
          found.push([key, object.Size ?? 0]);
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (err) {
      throw storageFault(`S3Blob: listing prefix ${JSON.stringify(prefix)} in ${this.home} failed`, err, { write: false });
    }
    // Called only after the whole listing succeeded: a failed page must not leave
    // the caller with half a listing it takes for the whole.
    for (const [key, size] of found) fn(key, size);
  }

  async restore(key: string): Promise<void> {
    const objectKey = this.objectKey(key);
    if ((await this.sizeOf('restore', key, objectKey)) !== undefined) return; // Live already.
    if (this.tombstone) {
      const tombstoneKey = this.prefix + TOMBSTONES + key;
      if ((await this.sizeOf('restore', key, tombstoneKey)) !== undefined) {
        await this.copy('restore', key, tombstoneKey, objectKey);
        return;
      }
    }
    throw new DeterminateError(`S3Blob: cannot restore ${JSON.stringify(key)} in ${this.home}: it does not exist${this.tombstone ? ' and has no tombstone' : ''}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
  }

  /** The object key for `key`; throws LocationUsageError for unusable keys or after close. */
  private objectKey(key: string): string {
    this.checkOpen();
    let problem: string | undefined;
    if (key.length === 0) problem = 'keys must not be empty';
    else if (key.startsWith('.')) problem = `keys must not start with "." (${this.prefix}${TOMBSTONES} holds tombstones)`;
    else if (Buffer.byteLength(this.prefix + TOMBSTONES + key) > MAX_OBJECT_KEY_BYTES) problem = `key is too long for S3 (1024 bytes with the prefix)`;
    if (problem !== undefined) throw new LocationUsageError(`S3Blob: bad key ${JSON.stringify(key)}: ${problem}`);
    return this.prefix + key;
  }

  private checkOpen(): void {
    if (this.closed) throw new LocationUsageError('S3Blob: used after close');
  }

  private what(op: string, key: string): string {
    return `S3Blob: ${op} ${JSON.stringify(key)} in ${this.home} failed`;
  }

  /** The object's size, or undefined if it does not exist (a read: determinate faults). */
  private async sizeOf(op: string, key: string, objectKey: string): Promise<number | undefined> {
    try {
      const head = await this.client.send(new (s3Module().HeadObjectCommand)({ Bucket: this.bucket, Key: objectKey }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw storageFault(this.what(op, key), err, { write: false });
    }
  }

  /** Sends a command that changes the store; its faults say whether it may have taken effect. */
  private async write(
    op: string,
    key: string,
    command: PutObjectCommand | DeleteObjectCommand | CopyObjectCommand | CompleteMultipartUploadCommand,
  ): Promise<void> {
    const log = new AttemptLog();
    log.attach(command);
    try {
      // One union-typed call per command type keeps the SDK's overloads happy.
      await this.client.send(command as PutObjectCommand);
    } catch (err) {
      throw storageFault(this.what(op, key), err, { write: true, log });
    }
  }

  private async copy(op: string, key: string, from: string, to: string): Promise<void> {
    await this.write(
      op,
      key,
      new (s3Module().CopyObjectCommand)({ Bucket: this.bucket, Key: to, CopySource: `${this.bucket}/${encodeURIComponent(from).replaceAll('%2F', '/')}` }),
    );
  }

  /**
   * A multipart upload. Until CompleteMultipartUpload the object is untouched, so
   * every earlier failure is determinate; the upload is then aborted (best effort:
   * an abandoned upload is invisible, and a bucket lifecycle rule can reap it).
   */
  private async multipartSet(key: string, objectKey: string, value: Uint8Array): Promise<void> {
    let uploadId: string | undefined;
    let parts: CompletedPart[];
    try {
      const created = await this.client.send(new (s3Module().CreateMultipartUploadCommand)({ Bucket: this.bucket, Key: objectKey }));
      uploadId = created.UploadId;
      if (uploadId === undefined) throw new Error('the store returned no UploadId');
      parts = await this.uploadParts(objectKey, uploadId, value);
    } catch (err) {
      await this.abortUpload(objectKey, uploadId);
      throw storageFault(`${this.what('set', key)} (multipart upload, before completion)`, err, { write: false });
    }
    try {
      await this.write(
        'set',
        key,
        new (s3Module().CompleteMultipartUploadCommand)({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (err) {
      await this.abortUpload(objectKey, uploadId);
      throw err;
    }
  }

  /** Uploads `value` in parts, `partConcurrency` at a time; each part is a view, not a copy. */
  private async uploadParts(objectKey: string, uploadId: string, value: Uint8Array): Promise<CompletedPart[]> {
    // Grow parts for very large values rather than exceed S3's 10 000 parts.
    const partSize = Math.max(this.settings.partSizeBytes, Math.ceil(value.byteLength / MAX_PARTS));
    const partCount = Math.ceil(value.byteLength / partSize);
    const parts: CompletedPart[] = new Array(partCount);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < partCount) {
        const index = next++;
        const body = value.subarray(index * partSize, Math.min(value.byteLength, (index + 1) * partSize));
        const res = await this.client.send(
          new (s3Module().UploadPartCommand)({
            Bucket: this.bucket,
            Key: objectKey,
            UploadId: uploadId,
            PartNumber: index + 1,
            Body: body,
            ContentLength: body.byteLength,
          }),
        );
        // The checksum, when the store returns one, must be repeated on completion.
        parts[index] = { PartNumber: index + 1, ETag: res.ETag, ChecksumCRC32: res.ChecksumCRC32 };
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.settings.partConcurrency, partCount) }, worker));
    return parts;
  }

  private async abortUpload(objectKey: string, uploadId: string | undefined): Promise<void> {
    if (uploadId === undefined) return;
    await this.client
      .send(new (s3Module().AbortMultipartUploadCommand)({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId }))
      .catch(() => undefined);
  }
}

/**
 * Reads a response body into one array. With a known length the chunks are copied
 * straight into place as they arrive (one allocation, never zero-filled, no
 * concatenation, so the peak is the value plus the socket's buffers); a body that
 * ends short or runs long is an error rather than a torn value. Plain `data` events
 * rather than `for await`: the async iterator costs a promise per chunk, a quarter
 * of the time of a 1 MiB get on a local store.
 */
function readBody(body: Readable, length: number | undefined): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    // Unpooled, so the array a caller keeps never pins a shared slab.
    const out = length === undefined ? undefined : Buffer.allocUnsafeSlow(length);
    let at = 0;
    body.on('data', (chunk: Buffer) => {
      if (out === undefined) {
        chunks.push(chunk);
      } else if (at + chunk.byteLength > out.byteLength) {
        body.destroy(new Error(`the body is longer than its Content-Length ${out.byteLength}`));
        return;
      } else {
        out.set(chunk, at);
      }
      at += chunk.byteLength;
    });
    body.once('error', reject);
    // Settling twice is a no-op, so this only matters when no 'end' or 'error' came.
    body.once('close', () => reject(new Error(`the connection closed after ${at} bytes of the body`)));
    body.once('end', () => {
      if (out === undefined) resolve(plainBytes(Buffer.concat(chunks, at)));
      else if (at !== out.byteLength) reject(new Error(`the body ended after ${at} of ${out.byteLength} bytes`));
      else resolve(plainBytes(out));
    });
  });
}
