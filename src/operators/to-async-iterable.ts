/**
 * toAsyncIterable: a pull-based view of any stream, for `for await` consumers.
 *
 * Built on ix's `from`: the source is subscribed when iteration starts, events that
 * arrive faster than they are pulled are queued in order, and leaving the loop
 * early (`break`, `return`, a thrown error) unsubscribes the source, which releases
 * its readers. A source error is thrown from the pending `next()`.
 *
 * The result is typed as a plain `AsyncIterable`, not ix's `AsyncIterableX`: ix stays
 * an implementation detail, and the published declarations do not pull in ix's,
 * which need the DOM lib (a Node consumer that checks its libraries would fail on
 * them). For ix's operators, wrap it: `AsyncIterableX.from(toAsyncIterable(s))`.
 *
 * Example:
 * ```ts
 * for await (const ev of toAsyncIterable(dataSubscribe$(client, txnsId, id, { codecs, asOf: 0 }))) {
 *   if (ev.kind === 'progress' && ev.upper > 10) break;   // releases the subscription
 * }
 * ```
 */
import { createRequire } from 'node:module';
import type * as IxAsyncIterable from 'ix/asynciterable';
import type { Observable } from 'rxjs';

// ix is loaded on the first call, not with the package: its async-iterable module
// alone is about 10 MiB of memory, which a process that never iterates should not
// pay. It is required synchronously (ix ships CommonJS too), so this function stays
// synchronous.
const requireHere = createRequire(import.meta.url);
let ix: typeof IxAsyncIterable | undefined;
const ixModule = (): typeof IxAsyncIterable => (ix ??= requireHere('ix/asynciterable') as typeof IxAsyncIterable);

/**
 * A pull-based view of any stream for `for await`: events are queued in order, and leaving the loop
 * early unsubscribes the source (releasing its readers).
 *
 * Example:
 * ```ts
 * for await (const ev of toAsyncIterable(dataSubscribe$(client, txnsId, id, { codecs, asOf: 0 }))) {
 *   if (ev.kind === 'progress' && ev.upper > 10) break;   // releases the subscription
 * }
 * ```
 */
export function toAsyncIterable<T>(source: Observable<T>): AsyncIterable<T> {
  return ixModule().from(source);
}
