/**
 * operatorObserver: the one way an operator in this folder subscribes to its source.
 *
 * RxJS hands an exception thrown inside a bare `{ next, complete }` observer to its
 * unhandled-error hook (`config.onUnhandledError`), not to the operator's subscriber:
 * the consumer is never told and the stream simply stops. An operator built on this
 * helper is correct by construction instead (it has the shape of RxJS's internal
 * `createOperatorSubscriber`): every exception thrown while the operator handles a
 * value, a completion or a source error goes to `destination.error`.
 *
 * Rules, stated once for every operator here:
 * - `next` is required; `error` and `complete` default to forwarding unchanged.
 * - A handler never runs after the destination closed (errored, completed or
 *   unsubscribed), so a late value from a source that is still tearing down is
 *   ignored rather than delivered to a closed subscriber.
 * - Erroring the destination runs the operator's teardown, which unsubscribes the
 *   source, as for any RxJS error.
 *
 * Example:
 * ```ts
 * (source) => new Observable<number>((subscriber) =>
 *   source.subscribe(operatorObserver(subscriber, { next: (x) => subscriber.next(parse(x)) })));
 * // parse throwing → subscriber.error(thatException), and the source is unsubscribed
 * ```
 */
import type { Observer, Subscriber } from 'rxjs';

export interface OperatorHandlers<T> {
  next: (value: T) => void;
  error?: (err: unknown) => void;
  complete?: () => void;
}

/** An observer of the source whose handlers route their own exceptions to `destination.error`. */
export function operatorObserver<T>(destination: Subscriber<unknown>, handlers: OperatorHandlers<T>): Observer<T> {
  const guarded =
    <A extends unknown[]>(fn: (...args: A) => void) =>
    (...args: A): void => {
      if (destination.closed) return;
      try {
        fn(...args);
      } catch (err) {
        destination.error(err);
      }
    };
  return {
    next: guarded(handlers.next),
    error: guarded(handlers.error ?? ((err: unknown) => destination.error(err))),
    complete: guarded(handlers.complete ?? (() => destination.complete())),
  };
}
