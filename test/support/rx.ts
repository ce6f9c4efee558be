/**
 * Test helpers for the RxJS layers.
 *
 * - `RxDataSubscribe`: the spec's `DataSubscribe` test helper (`progress()`,
 *   `output()`, `stepPast(ts)`) built on the `dataSubscribe$` operator pipeline. It
 *   records every event as it arrives; `stepPast` waits for progress to pass a time.
 * - `Recorder`: subscribes to any Observable and records its events, completion
 *   and error, with `until(predicate)` to wait for a condition.
 * - `trackLibraryTimers()`: the timers library code created and left running, to
 *   show a torn-down subscription left nothing behind.
 */
import { createHook } from 'node:async_hooks';
import path from 'node:path';
import { expect } from 'chai';
import { Observable as RxObservable, config as rxConfig, type Observable, type Subscription } from 'rxjs';
import type { PersistClient } from '../../src/persist/client.js';
import type { ShardCodecs } from '../../src/persist/codec.js';
import type { ShardId } from '../../src/persist/shard-id.js';
import type { Update } from '../../src/persist/update.js';
import { dataSubscribe$ } from '../../src/operators/data-subscribe.js';
import type { ShardEvent } from '../../src/sources/shard-source.js';
import type { TxnsRead } from '../../src/txn/txns-read.js';
import { STRING_UNIT } from './persist.js';

/** Records an Observable's events; `until(p)` resolves once `p()` holds (rejects on error). */
export class Recorder<T> {
  readonly events: T[] = [];
  completed = false;
  error: unknown;
  private readonly sub: Subscription;
  private readonly waiters = new Set<() => void>();

  constructor(source: Observable<T>) {
    this.sub = source.subscribe({
      next: (e) => {
        this.events.push(e);
        this.wake();
      },
      error: (err) => {
        this.error = err ?? new Error('errored without a reason');
        this.wake();
      },
      complete: () => {
        this.completed = true;
        this.wake();
      },
    });
  }

  get closed(): boolean {
    return this.sub.closed;
  }

  /** Resolves once `ready()` is true; rejects if the stream errors or completes first. */
  async until(ready: () => boolean, what = 'the condition'): Promise<void> {
    for (;;) {
      if (ready()) return;
      if (this.error !== undefined) throw this.error;
      if (this.completed) throw new Error(`the stream completed before ${what}`);
      await new Promise<void>((resolve) => {
        this.waiters.add(resolve);
      });
    }
  }

  unsubscribe(): void {
    this.sub.unsubscribe();
  }

  private wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
}

/** The spec's DataSubscribe test helper, over `dataSubscribe$`. */
export class RxDataSubscribe<K = string, V = null> {
  private readonly recorder: Recorder<ShardEvent<K, V>>;

  private constructor(
    readonly asOf: number,
    source: Observable<ShardEvent<K, V>>,
  ) {
    this.recorder = new Recorder(source);
  }

  static open<K = string, V = null>(
    client: PersistClient,
    txnsId: ShardId,
    dataId: ShardId,
    opts: { asOf: number; until?: number; txnsRead?: TxnsRead; codecs?: ShardCodecs<K, V> },
  ): RxDataSubscribe<K, V> {
    const codecs = opts.codecs ?? (STRING_UNIT as unknown as ShardCodecs<K, V>);
    return new RxDataSubscribe(opts.asOf, dataSubscribe$(client, txnsId, dataId, { codecs, asOf: opts.asOf, until: opts.until, txnsRead: opts.txnsRead }));
  }

  /** The latest progress; `Infinity` once the stream completed. */
  progress(): number {
    if (this.recorder.completed) return Infinity;
    let p = 0;
    for (const e of this.recorder.events) if (e.kind === 'progress') p = e.upper;
    return p;
  }

  /** Every update received so far. */
  output(): Update<K, V>[] {
    return this.recorder.events.flatMap((e) => (e.kind === 'updates' ? e.updates : []));
  }

  /** Every event received so far. */
  events(): ShardEvent<K, V>[] {
    return this.recorder.events;
  }

  get completed(): boolean {
    return this.recorder.completed;
  }

  /** Waits until `progress() > ts`. */
  stepPast(ts: number): Promise<void> {
    return this.recorder.until(() => this.progress() > ts, `progress passed ${ts}`);
  }

  close(): void {
    this.recorder.unsubscribe();
  }
}

/**
 * Tracks the timers (`setTimeout` / `setInterval`) that library code under `src/`
 * creates while tracking is on. `pending()` lists those neither fired nor cleared,
 * by the stack that created them: after a stream is torn down it must be empty.
 */
export function trackLibraryTimers(): { pending(): string[]; stop(): void } {
  const timers = new Map<object, string>();
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      if (type !== 'Timeout') return;
      const stack = new Error().stack ?? '';
      if (!stack.includes(`${path.sep}src${path.sep}`)) return;
      timers.set(resource as object, stack.split('\n').slice(3, 9).join('\n'));
    },
  });
  hook.enable();
  return {
    pending: () => [...timers].filter(([t]) => !(t as { _destroyed?: boolean })._destroyed).map(([, s]) => s),
    stop: () => hook.disable(),
  };
}

/**
 * The standard lifecycle checks every operator gets (as RxJS's own operators do):
 * unsubscribing downstream tears the source down, a source error arrives unchanged,
 * an exception thrown by the operator's own work (fed `opts.breaking`, input that
 * makes it throw) reaches the subscriber's `error` and tears the source down instead
 * of going to RxJS's unhandled-error hook, and a completing source completes the
 * output (or, where the operator documents it, errors because its result would be
 * incomplete).
 */
export function describeOperatorLifecycle<I, O>(
  name: string,
  operator: () => (source: Observable<I>) => Observable<O>,
  opts: { sample: I[]; breaking: I[]; onEarlyComplete: 'complete' | 'error' },
): void {
  describe(`${name}: lifecycle`, () => {
    it('unsubscribing downstream unsubscribes the source', () => {
      let tornDown = 0;
      const source = new RxObservable<I>((s) => {
        for (const e of opts.sample) s.next(e);
        return () => tornDown++;
      });
      const sub = source.pipe(operator()).subscribe();
      expect(tornDown).to.equal(0);
      sub.unsubscribe();
      expect(tornDown).to.equal(1);
    });

    it('a source error arrives downstream unchanged', () => {
      const boom = new Error('boom');
      let got: unknown;
      const source = new RxObservable<I>((s) => {
        for (const e of opts.sample) s.next(e);
        s.error(boom);
      });
      source.pipe(operator()).subscribe({ error: (e) => (got = e) });
      expect(got).to.equal(boom);
    });

    it("an error thrown by the operator's own work reaches the subscriber's error", () => {
      const unhandled: unknown[] = [];
      const before = rxConfig.onUnhandledError;
      rxConfig.onUnhandledError = (err) => unhandled.push(err);
      try {
        let tornDown = 0;
        let got: unknown;
        const source = new RxObservable<I>((s) => {
          for (const e of opts.breaking) s.next(e);
          return () => tornDown++;
        });
        source.pipe(operator()).subscribe({ error: (e) => (got = e) });
        expect(got, 'the exception arrived as an error').to.be.instanceOf(Error);
        expect(tornDown, 'the source was unsubscribed').to.equal(1);
        expect(unhandled, 'nothing went to the unhandled-error hook').to.deep.equal([]);
      } finally {
        rxConfig.onUnhandledError = before;
      }
    });

    it(`a completing source ${opts.onEarlyComplete === 'complete' ? 'completes the output' : 'errors the output (its result would be incomplete)'}`, () => {
      let completed = false;
      let errored: unknown;
      new RxObservable<I>((s) => {
        for (const e of opts.sample) s.next(e);
        s.complete();
      })
        .pipe(operator())
        .subscribe({ complete: () => (completed = true), error: (e) => (errored = e) });
      if (opts.onEarlyComplete === 'complete') {
        expect(errored).to.equal(undefined);
        expect(completed).to.equal(true);
      } else {
        expect(completed).to.equal(false);
        expect(errored).to.be.instanceOf(Error);
      }
    });
  });
}
