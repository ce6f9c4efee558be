/**
 * One `/events` stream: a snapshot first, then deltas, at most one frame per
 * `minIntervalMs`, to one page.
 *
 * Invariants:
 * - The first frame is `event: snapshot` with the state at connection time; every
 *   later frame is `event: delta` with everything that changed since the frame
 *   before it (deltas arriving between two frames are merged with `mergeDeltas`, so
 *   a slow page gets fewer frames but never misses a change).
 * - While the socket is backed up nothing is written: deltas keep merging into the
 *   one pending frame, so memory per client stays bounded (at most every balance,
 *   every collection and a minute of samples).
 * - `end()` and the page going away both release the timers; `end()` is idempotent.
 *
 * Example:
 * ```ts
 * const client = openSseClient(req, res, model.snapshot(), { minIntervalMs: 100, heartbeatMs: 15_000, onEnd });
 * client.push({ frontier: 1006, balances: { 'b0-acct001': 993 } });
 * client.end();
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mergeDeltas, type Delta, type Snapshot } from './protocol.js';

export interface SseClient {
  /** Queues a delta; it goes out with the next frame. */
  push(delta: Delta): void;
  /** Sends a failure event and ends the stream. */
  fail(message: string): void;
  /** Ends the stream from the server side. */
  end(): void;
}

export function openSseClient(
  req: IncomingMessage,
  res: ServerResponse,
  snapshot: Snapshot,
  opts: { minIntervalMs: number; heartbeatMs: number; onEnd: () => void },
): SseClient {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    // Reverse proxies (nginx) buffer responses by default, which would hold frames back.
    'x-accel-buffering': 'no',
  });
  // How long a page waits before reconnecting after the stream drops.
  res.write('retry: 2000\n\n');
  res.write(frame('snapshot', snapshot));

  let pending: Delta | undefined;
  let lastSent = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let ended = false;

  const flush = (): void => {
    timer = undefined;
    if (ended || pending === undefined) return;
    // Backed up: keep merging; 'drain' flushes.
    if (res.writableNeedDrain) return;
    const delta = pending;
    pending = undefined;
    lastSent = performance.now();
    res.write(frame('delta', delta));
  };
  const schedule = (): void => {
    if (timer || ended) return;
    timer = setTimeout(flush, Math.max(0, opts.minIntervalMs - (performance.now() - lastSent)));
  };
  res.on('drain', schedule);

  // A backed-up socket is not idle, and a heartbeat must not go before a pending frame.
  const heartbeat = setInterval(() => res.writableNeedDrain || res.write(': heartbeat\n\n'), opts.heartbeatMs);

  function cleanUp(): void {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    clearTimeout(timer);
    opts.onEnd();
  }
  function end(): void {
    cleanUp();
    if (!res.writableEnded) res.end();
  }
  // 'close' fires when the page goes away as well as after we end the response.
  res.on('close', cleanUp);
  req.on('error', cleanUp);

  return {
    push(delta) {
      if (ended) return;
      pending = pending === undefined ? delta : mergeDeltas(pending, delta);
      schedule();
    },
    fail(message) {
      if (!ended && !res.writableEnded) res.write(frame('failure', { message }));
      end();
    },
    end,
  };
}

function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
