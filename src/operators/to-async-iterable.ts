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
import { from } from 'ix/asynciterable';
import type { Observable } from 'rxjs';

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
  return from(source);
}
