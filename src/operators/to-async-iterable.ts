/**
 * toAsyncIterable: a pull-based view of any stream, for `for await` consumers.
 *
 * Built on ix's `from`: the source is subscribed when iteration starts, events that
 * arrive faster than they are pulled are queued in order, and leaving the loop
 * early (`break`, `return`, a thrown error) unsubscribes the source, which releases
 * its readers. A source error is thrown from the pending `next()`.
 *
 * Example:
 * ```ts
 * for await (const ev of toAsyncIterable(dataSubscribe$(client, txnsId, id, { codecs, asOf: 0 }))) {
 *   if (ev.kind === 'progress' && ev.upper > 10) break;   // releases the subscription
 * }
 * ```
 */
import { from, type AsyncIterableX } from 'ix/asynciterable';
import type { Observable } from 'rxjs';

export function toAsyncIterable<T>(source: Observable<T>): AsyncIterableX<T> {
  return from(source);
}
