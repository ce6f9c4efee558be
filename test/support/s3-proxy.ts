/**
 * A tiny HTTP proxy to put in front of a test S3 server, deciding per request whether
 * to pass it on, fail it, or sit on it. Fault tests point an S3Blob's endpoint at the
 * proxy instead of the server.
 *
 * Per request the proxy asks `rule(request, n)` (n counts from 1) for one of:
 * - `'forward'`: pass it to the server and the answer back;
 * - `'fail'`: answer 500 InternalError without telling the server (nothing happened);
 * - `'deny'`: answer 403 AccessDenied without telling the server (a refusal);
 * - `'forward-then-fail'`: pass it on, wait for the server's answer, then answer 500
 *   instead (it happened, but the client cannot know);
 * - `'hold'`: read the request and never answer (until `close()`), so the client's
 *   inactivity timeout fires.
 * The proxy keeps counts of each outcome and of request body bytes it passed on;
 * `whenForwardedBytes(n)` resolves once that many have gone through, so a test can act
 * "in the middle of a write" on an event rather than after a sleep.
 *
 * Example:
 * ```ts
 * const proxy = await startS3Proxy(server.port, (req, n) => (n % 10 === 0 ? 'fail' : 'forward'));
 * const blob = await S3Blob.open(server.url('p', proxy.endpoint));
 * ```
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ProxyAction = 'forward' | 'fail' | 'deny' | 'forward-then-fail' | 'hold';
export type ProxyRule = (req: http.IncomingMessage, n: number) => ProxyAction;

export interface S3Proxy {
  readonly endpoint: string;
  rule: ProxyRule;
  readonly counts: Record<ProxyAction, number>;
  /** Request body bytes passed on to the server so far. */
  readonly forwardedBytes: number;
  whenForwardedBytes(n: number): Promise<void>;
  close(): Promise<void>;
}

const INTERNAL_ERROR =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>' +
  '<Message>We encountered an internal error. Please try again. (injected by the test proxy)</Message></Error>';

const ACCESS_DENIED =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied (injected by the test proxy)</Message></Error>';

function answer(res: http.ServerResponse, status: number, body: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function fail500(res: http.ServerResponse): void {
  answer(res, 500, INTERNAL_ERROR);
}

export async function startS3Proxy(serverPort: number, rule: ProxyRule = () => 'forward'): Promise<S3Proxy> {
  const counts: Record<ProxyAction, number> = { forward: 0, fail: 0, deny: 0, 'forward-then-fail': 0, hold: 0 };
  let n = 0;
  let forwardedBytes = 0;
  const byteWaiters: { n: number; resolve: () => void }[] = [];
  const held: http.ServerResponse[] = [];

  const server = http.createServer((req, res) => {
    const action = proxy.rule(req, ++n);
    counts[action] += 1;
    if (action === 'fail' || action === 'deny' || action === 'hold') {
      req.resume();
      req.on('end', () => {
        if (action === 'fail') fail500(res);
        else if (action === 'deny') answer(res, 403, ACCESS_DENIED);
        else held.push(res);
      });
      return;
    }
    const upstream = http.request(
      { host: '127.0.0.1', port: serverPort, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (action === 'forward-then-fail') {
          answer.resume();
          answer.on('end', () => fail500(res));
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    // A server that dies mid-request: drop the client's connection too, as a real
    // store's load balancer would.
    upstream.on('error', () => res.destroy());
    req.on('data', (chunk: Buffer) => {
      forwardedBytes += chunk.byteLength;
      for (const w of byteWaiters.filter((w) => forwardedBytes >= w.n)) {
        byteWaiters.splice(byteWaiters.indexOf(w), 1);
        w.resolve();
      }
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  const port = (server.address() as AddressInfo).port;

  const proxy: S3Proxy = {
    endpoint: `http://127.0.0.1:${port}`,
    rule,
    counts,
    get forwardedBytes() {
      return forwardedBytes;
    },
    whenForwardedBytes: (bytes) =>
      forwardedBytes >= bytes ? Promise.resolve() : new Promise((resolve) => byteWaiters.push({ n: bytes, resolve })),
    async close() {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
