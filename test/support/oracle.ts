/**
 * A LogicalClock behind a TimestampOracle with some of its methods replaced: how tests
 * make an oracle fail or answer stale times while the rest of it keeps time.
 *
 * ```ts
 * const clock = new LogicalClock();
 * const oracle = clockOracle(clock, { applyWrite: () => Promise.reject(new Error('down')) });
 * ```
 */
import type { LogicalClock, TimestampOracle } from '../../src/index.js';

export function clockOracle(clock: LogicalClock, replaced: Partial<TimestampOracle> = {}): TimestampOracle {
  return {
    writeTs: () => clock.writeTs(),
    peekWriteTs: () => clock.peekWriteTs(),
    readTs: () => clock.readTs(),
    applyWrite: (ts) => clock.applyWrite(ts),
    close: () => clock.close(),
    ...replaced,
  };
}
