/**
 * S3 benchmark: `npm run bench:s3`.
 *
 * In one run, against one S3 server (an s3rver child process from
 * test/support/s3.ts, or the store in TXNWAL_TEST_S3_URL):
 *  a. blob throughput: put and get of values of 64 KiB, 1 MiB and 16 MiB, through
 *     S3Blob and through raw SDK calls (PutObject / GetObject with
 *     `transformToByteArray`) on a client with the same settings; within a round the
 *     calls interleave op by op (so load from elsewhere hits both alike), and the
 *     best of BENCH_ROUNDS rounds counts. Printed as MiB/s and as
 *     S3Blob / raw (target >= 0.9x). 16 MiB goes up as a multipart upload through
 *     S3Blob (above its 8 MiB threshold), so its raw baseline is the same multipart
 *     sequence by hand (8 MiB parts, both in flight); a one-PUT raw row shows what
 *     multipart itself costs on this server.
 *  b. memory of a 128 MiB part: the peak of `process.memoryUsage().arrayBuffers`
 *     (sampled every 5 ms) during S3Blob.set and S3Blob.get, minus what was live
 *     before (the value itself): the buffer the transfer needs beyond the part.
 *  c. persist appends/s: sequential compareAndAppend of one small update on Postgres +
 *     S3 against Postgres + file, with batches forced into Blob
 *     (`inlineWritesSingleMaxBytes: 0`), and with the default config (small batches
 *     inline in consensus, so Blob sees only rollups).
 *
 * Settings (env): BENCH_SECONDS (2, for c), BENCH_ROUNDS (3, for a),
 * TXNWAL_TEST_PG_URL, TXNWAL_TEST_S3_URL. Argument: --sections a,b,c (default all).
 */
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { Codecs, PersistClient, newShardId } from '../src/index.js';
import { S3Blob } from '../src/location/s3-blob.js';
import { parseS3Url } from '../src/location/s3-url.js';
import { freshTestS3Url, stopTestS3 } from '../test/support/s3.js';
import {
  argChoices,
  envNumber,
  fmtBytes,
  fmtInt,
  fmtRate,
  fmtRatio,
  log,
  machineSummary,
  removeTempDirs,
  renderTable,
  runBench,
  runFor,
  startBenchPostgres,
  stopBenchPostgres,
  tempDir,
  printHelp,
} from './support.js';

const SECONDS = envNumber('BENCH_SECONDS', 2);
const ROUNDS = Math.round(envNumber('BENCH_ROUNDS', 3));
const MiB = 1024 * 1024;
const SIZES = [64 * 1024, MiB, 16 * MiB];

/** Bytes moved per round: enough to dwarf per-request noise, few enough to stay short. */
function opsFor(size: number): number {
  return Math.max(3, Math.min(64, Math.round((48 * MiB) / size)));
}

interface Pair {
  put(key: string, value: Uint8Array): Promise<void>;
  get(key: string): Promise<Uint8Array>;
}

type Contender = 'raw' | 'blob' | 'onePut';

/**
 * One round: `opsFor(size)` puts and then as many gets per contender, interleaved op
 * by op (raw, S3Blob, raw, …, the order rotating), so load from other work on the
 * machine falls on every contender alike. Returns MiB/s per contender and operation.
 */
async function interleavedRound(
  pairs: Record<Contender, Pair>,
  who: readonly Contender[],
  size: number,
  value: Uint8Array,
  prefix: string,
): Promise<Record<Contender, { put: number; get: number }>> {
  const n = opsFor(size);
  const ms = Object.fromEntries(who.map((w) => [w, { put: 0, get: 0 }])) as Record<Contender, { put: number; get: number }>;
  for (const op of ['put', 'get'] as const) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < who.length; j++) {
        const name = who[(i + j) % who.length]!;
        const key = `${prefix}/${name}/${i}`;
        const t = performance.now();
        if (op === 'put') await pairs[name].put(key, value);
        else {
          const got = await pairs[name].get(key);
          if (got.byteLength !== size) throw new Error(`read back ${got.byteLength} bytes, wrote ${size}`);
        }
        ms[name][op] += performance.now() - t;
      }
    }
  }
  const mibps = (msTotal: number): number => (n * size) / MiB / (msTotal / 1000);
  return Object.fromEntries(who.map((w) => [w, { put: mibps(ms[w].put), get: mibps(ms[w].get) }])) as Record<Contender, { put: number; get: number }>;
}

async function blobThroughput(url: string): Promise<string[][]> {
  const opts = parseS3Url(url);
  const blob = await S3Blob.open(url);
  // The raw client gets what S3Blob's gets: same endpoint, timeouts and attempts.
  const raw = new S3Client({
    endpoint: opts.endpoint,
    region: opts.region,
    forcePathStyle: opts.forcePathStyle,
    maxAttempts: 3,
    ...(opts.endpoint === undefined ? {} : { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
    requestHandler: { connectionTimeout: 5_000, socketTimeout: 30_000 },
  });
  const bucket = opts.bucket;
  const rawPrefix = `${opts.prefix ?? ''}/raw`.replace(/^\//, '');
  const rawPair: Pair = {
    put: async (key, value) => {
      await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `${rawPrefix}/${key}`, Body: value, ContentLength: value.byteLength }));
    },
    get: async (key) => {
      const res = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: `${rawPrefix}/${key}` }));
      return res.Body!.transformToByteArray();
    },
  };
  const rawMultipartPair: Pair = {
    put: async (key, value) => {
      const Key = `${rawPrefix}/${key}`;
      const { UploadId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
      const partSize = 8 * MiB;
      const parts = await Promise.all(
        Array.from({ length: Math.ceil(value.byteLength / partSize) }, async (_, i) => {
          const Body = value.subarray(i * partSize, (i + 1) * partSize);
          const res = await raw.send(new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber: i + 1, Body, ContentLength: Body.byteLength }));
          return { PartNumber: i + 1, ETag: res.ETag, ChecksumCRC32: res.ChecksumCRC32 };
        }),
      );
      await raw.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
    },
    get: rawPair.get,
  };
  const blobPair: Pair = {
    put: (key, value) => blob.set(`blob/${key}`, value),
    get: async (key) => (await blob.get(`blob/${key}`))!,
  };
  const rows: string[][] = [];
  try {
    for (const size of SIZES) {
      const value = new Uint8Array(randomBytes(size));
      const multipart = size > 8 * MiB;
      const contenders = { raw: multipart ? rawMultipartPair : rawPair, blob: blobPair, onePut: rawPair };
      const who = multipart ? (['raw', 'blob', 'onePut'] as const) : (['raw', 'blob'] as const);
      const best = { raw: { put: 0, get: 0 }, blob: { put: 0, get: 0 }, onePut: { put: 0, get: 0 } };
      for (let round = 0; round < ROUNDS; round++) {
        const r = await interleavedRound(contenders, who, size, value, `${size}-${round}`);
        for (const name of who) {
          best[name].put = Math.max(best[name].put, r[name].put);
          best[name].get = Math.max(best[name].get, r[name].get);
        }
      }
      const mib = (x: number): string => `${x.toFixed(1)} MiB/s`;
      rows.push([`put ${fmtBytes(size)}${multipart ? ' (multipart)' : ''}`, mib(best.raw.put), mib(best.blob.put), fmtRatio(best.blob.put / best.raw.put)]);
      if (multipart) rows.push([`  raw as one PUT instead`, mib(best.onePut.put), '', fmtRatio(best.blob.put / best.onePut.put)]);
      rows.push([`get ${fmtBytes(size)}`, mib(best.raw.get), mib(best.blob.get), fmtRatio(best.blob.get / best.raw.get)]);
    }
  } finally {
    raw.destroy();
    await blob.close();
  }
  return rows;
}

/** Peak arrayBuffers above `base` while `op` runs, sampled every 5 ms. */
async function peakAbove(base: number, op: () => Promise<unknown>): Promise<number> {
  let peak = process.memoryUsage().arrayBuffers;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 5);
  try {
    await op();
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  return peak - base;
}

async function bigPartMemory(url: string): Promise<string[][]> {
  const blob = await S3Blob.open(url);
  try {
    const size = 128 * MiB;
    let value: Uint8Array | undefined = new Uint8Array(size).fill(7);
    global.gc?.();
    const beforeSet = process.memoryUsage().arrayBuffers;
    const setExtra = await peakAbove(beforeSet, () => blob.set('big', value!));
    value = undefined;
    global.gc?.();
    const beforeGet = process.memoryUsage().arrayBuffers;
    let got: Uint8Array | undefined;
    const getPeak = await peakAbove(beforeGet, async () => (got = await blob.get('big')));
    if (got?.byteLength !== size) throw new Error('the 128 MiB part did not come back whole');
    return [
      ['set 128 MiB (multipart, 8 MiB parts, 4 in flight)', fmtBytes(setExtra), 'beyond the part (which was live before)'],
      ['get 128 MiB (streamed into one array)', fmtBytes(Math.max(0, getPeak - size)), 'beyond the 128 MiB array it returns'],
    ];
  } finally {
    await blob.close();
  }
}

async function appendRate(url: string, config: { inlineWritesSingleMaxBytes?: number }): Promise<number> {
  const client = await PersistClient.open(url, { config });
  try {
    const writer = await client.openWriter(newShardId(), { key: Codecs.string, val: Codecs.string });
    const r = await runFor(SECONDS, async (i) => {
      const res = await writer.compareAndAppend([[`k${i}`, 'v', i, 1]], i, i + 1);
      if (!res.ok) throw new Error(`compareAndAppend ${i}: upper mismatch, current ${res.current}`);
    });
    await client.flushMaintenance();
    await writer.expire();
    return r.perSecond;
  } finally {
    await client.close();
  }
}

async function main(): Promise<number> {
  if (printHelp('npm run bench:s3   (env: see the top of bench/s3.ts; TXNWAL_TEST_S3_URL for an external S3)')) return 0;
  const sections = argChoices('sections', ['a', 'b', 'c'] as const);
  log(`S3 benchmark — ${machineSummary()}`);
  log(`S3 store: ${process.env.TXNWAL_TEST_S3_URL ? 'TXNWAL_TEST_S3_URL' : 's3rver 3.7 in a child process (test/support/s3.ts)'}`);
  const pg = await startBenchPostgres();
  try {
    log(`Postgres: ${pg.origin}\n`);
    if (sections.includes('a')) {
      log(`a. blob throughput, calls interleaved op by op, best of ${ROUNDS} rounds (S3Blob / raw SDK; target >= 0.90x)`);
      log(renderTable(['operation', 'raw SDK', 'S3Blob', 'S3Blob/raw'], await blobThroughput(await freshTestS3Url())));
    }
    if (sections.includes('b')) {
      log(`\nb. buffer memory of a 128 MiB part (peak process arrayBuffers during the call)`);
      log(renderTable(['operation', 'extra', ''], await bigPartMemory(await freshTestS3Url())));
    }
    if (!sections.includes('c')) return 0;
    log(`\nc. persist compareAndAppend, one small update each, sequential, ${SECONDS} s`);
    const rows: string[][] = [];
    for (const [name, config] of [
      ['batches in Blob', { inlineWritesSingleMaxBytes: 0 }],
      ['default (inline)', {}],
    ] as const) {
      const dir = await tempDir('txnwal-bench-s3-');
      const sep = pg.url.includes('?') ? '&' : '?';
      const file = await appendRate(`${pg.url}${sep}blob=file:${dir}`, config);
      const s3 = await appendRate(`${pg.url}${sep}blob=${await freshTestS3Url()}`, config);
      rows.push([name, `${fmtRate(file)}/s`, `${fmtRate(s3)}/s`, fmtRatio(s3 / file)]);
    }
    log(renderTable(['config', 'Postgres + file', 'Postgres + S3', 'S3/file'], rows));
    log(`\n(${fmtInt(ROUNDS)} rounds; c runs each row's file backend first)`);
  } finally {
    await stopTestS3();
    log(await stopBenchPostgres(pg));
    await removeTempDirs();
  }
  return 0;
}

await runBench(main);
