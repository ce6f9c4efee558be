/**
 * Serving metrics over HTTP for Prometheus: a handler to mount in your own
 * `node:http` server, or a small server of its own.
 *
 * - `metricsHandler(source)` → `(req, res) => void`: answers GET and HEAD with the
 *   registry's text exposition and its Content-Type (prom-client's
 *   `registry.contentType`, `text/plain; version=0.0.4; charset=utf-8`); other
 *   methods get 405. It does not look at the path: route to it yourself.
 * - `serveMetrics(source, { port, host, path })` listens on `host:port` (host
 *   default `127.0.0.1`, so nothing is exposed beyond the machine unless you say so;
 *   port 0 picks a free one) and serves the handler at `path` (default `/metrics`),
 *   404 elsewhere. It resolves once listening, with the URL and `close()`.
 *
 * `source` is a Database (its registry), a {@link Metrics} object or a prom-client
 * Registry. A scrape that fails (a collector threw) gets a 500 with the error's
 * message, never an unhandled rejection.
 *
 * Example:
 * ```ts
 * const db = await openDatabase('file:./data');
 * const server = await serveMetrics(db, { port: 9464 });
 * console.log(server.url);    // http://127.0.0.1:9464/metrics
 * // … later
 * await server.close();
 * await db.close();
 * ```
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { invalidArgument, optionalString, optionsObject } from '../persist/argument-checks.js';
import { Metrics } from '../persist/metrics.js';

/**
 * What metrics can be served from: anything with a registry (a Database has `metricsRegistry`).
 *
 * ```ts
 * metricsHandler(db);                              // a Database
 * metricsHandler(Metrics.forRegistry(registry));   // a Metrics object
 * metricsHandler(registry);                        // a prom-client Registry
 * ```
 */
export type MetricsSource =
  | Registry
  | Metrics
  | {
      /** The registry to serve (a Database's, the one its `metrics` option names). */
      readonly metricsRegistry: Registry;
    };

/**
 * Where {@link serveMetrics} listens.
 *
 * ```ts
 * const options: ServeMetricsOptions = { port: 9464, host: '0.0.0.0', path: '/metrics' };
 * ```
 */
export interface ServeMetricsOptions {
  /** The TCP port (0: any free port; read it from the result). */
  port: number;
  /** The interface to listen on (default `127.0.0.1`; `0.0.0.0` or `::` for every interface). */
  host?: string;
  /** The path the metrics are served at (default `/metrics`). */
  path?: string;
}

/**
 * A running metrics server, as {@link serveMetrics} resolves it.
 *
 * ```ts
 * const server = await serveMetrics(registry, { port: 0 });
 * const text = await (await fetch(server.url)).text();
 * await server.close();
 * ```
 */
export interface MetricsServer {
  /** The scrape URL, e.g. `http://127.0.0.1:9464/metrics`. */
  readonly url: string;
  /** The port listened on (the chosen one when `port` was 0). */
  readonly port: number;
  /** The underlying server (for tests and for tuning timeouts). */
  readonly server: Server;
  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void>;
}

function registryOf(source: unknown, what: string): Registry {
  if (source instanceof Registry) return source;
  if (source instanceof Metrics) return source.registry;
  const r = (source as { metricsRegistry?: unknown } | null)?.metricsRegistry;
  if (typeof source === 'object' && source !== null && r instanceof Registry) return r;
  throw invalidArgument(what, 'a Database, a Metrics object or a prom-client Registry', source);
}

/**
 * A `node:http` request handler serving the registry of `source`: GET and HEAD get the
 * text exposition, other methods 405; it ignores the path (route to it yourself).
 *
 * ```ts
 * import { createServer } from 'node:http';
 * const metrics = metricsHandler(db);
 * const server = createServer((req, res) => (req.url === '/metrics' ? metrics(req, res) : app(req, res)));
 * server.listen(8080);
 * ```
 */
export function metricsHandler(source: MetricsSource): (req: IncomingMessage, res: ServerResponse) => void {
  const registry = registryOf(source, 'metricsHandler source');
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`method ${req.method ?? '?'} not allowed: metrics are read with GET\n`);
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType, 'Content-Length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`collecting metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  };
}

/**
 * Serves the metrics of `source` at `http://host:port/path` (host default `127.0.0.1`,
 * path default `/metrics`, port 0 picks a free one); resolves once listening.
 *
 * ```ts
 * const server = await serveMetrics(db, { port: 9464 });
 * console.log(server.url);   // http://127.0.0.1:9464/metrics
 * await server.close();
 * ```
 */
export async function serveMetrics(source: MetricsSource, options: ServeMetricsOptions): Promise<MetricsServer> {
  const handle = metricsHandler(source);
  const opts = optionsObject(options, 'serveMetrics options');
  const port = opts.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalidArgument('serveMetrics option port', 'a TCP port, an integer 0–65535 (0: any free port)', port);
  }
  const host = optionalString(opts.host, 'serveMetrics option host') ?? '127.0.0.1';
  const path = optionalString(opts.path, 'serveMetrics option path') ?? '/metrics';
  if (!path.startsWith('/')) throw invalidArgument('serveMetrics option path', "a path starting with '/' (e.g. '/metrics')", path);
  const server = createServer((req, res) => {
    const at = (req.url ?? '/').split('?')[0];
    if (at !== path) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`not found: metrics are at ${path}\n`);
      return;
    }
    handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => reject(new Error(`serveMetrics could not listen on ${host}:${port}: ${err.message}`, { cause: err }));
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${bound}${path}`,
    port: bound,
    server,
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive connections would hold close() open (and the process alive).
        server.closeAllConnections();
      })),
  };
}
