/**
 * yieldMacrotask: the one "let the event loop turn" of the library.
 *
 * It resolves on the next `setImmediate`, i.e. after the I/O callbacks and timers
 * that were already due. A microtask (`await Promise.resolve()`) would not do: code
 * that runs on a synchronous store (mem, SQLite) can finish whole operations without
 * leaving the microtask queue, starving timers and I/O; and a `setTimeout(r, 0)`
 * waits at least a millisecond for no reason.
 *
 * It lives in the lowest layer because MemConsensus needs it; upper layers get it
 * from `persist/wait.ts` next to the other waits.
 *
 * Example:
 * ```ts
 * while (queue.length > 0) {
 *   await handle(queue.shift()!);
 *   await yieldMacrotask();   // timers and I/O run between items
 * }
 * ```
 */
export function yieldMacrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
