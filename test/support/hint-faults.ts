/**
 * A Location wrapper whose wake-up channel mistreats hints on their way to watchers:
 * it drops a seeded fraction, delivers another fraction twice, and delays each by a
 * random 0..`maxDelayMs` (so hints also arrive reordered). Publishing goes straight
 * to the wrapped channel; `up` is the wrapped channel's (so readers keep their slow
 * fallback poll and have to survive the lost hints), or false with `down: true`. Counts show the faults fired.
 *
 * Example:
 * ```ts
 * const faulty = withHintFaults(await openLocation('mem://x'), { seed: 1, dropRate: 0.3, duplicateRate: 0.3, maxDelayMs: 20 });
 * const reader = await PersistClient.open(faulty);
 * ```
 */
import type { Location } from '../../src/location/location.js';
import type { StateChangeCallback, StateChanges } from '../../src/location/state-changes.js';
import { seededRandom } from '../../src/location/fault-injection.js';

export interface HintFaultOptions {
  seed: number;
  dropRate?: number;
  duplicateRate?: number;
  maxDelayMs?: number;
  /** Report the channel as down (`up` false), as while it reconnects. */
  down?: boolean;
}

export interface HintFaultCounts {
  delivered: number;
  dropped: number;
  duplicated: number;
}

export interface HintFaultLocation extends Location {
  readonly hintFaults: HintFaultCounts;
}

export function withHintFaults(inner: Location, opts: HintFaultOptions): HintFaultLocation {
  const random = seededRandom(opts.seed);
  const counts: HintFaultCounts = { delivered: 0, dropped: 0, duplicated: 0 };
  const channel = inner.stateChanges;
  if (!channel) throw new Error('withHintFaults: the wrapped location has no wake-up channel');
  const timers = new Set<NodeJS.Timeout>();
  const later = (fn: () => void): void => {
    const ms = random() * (opts.maxDelayMs ?? 0);
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const faulty: StateChanges = {
    get up() {
      return !opts.down && channel.up;
    },
    publish: (key, seqno) => channel.publish(key, seqno),
    watch(key, onChange: StateChangeCallback) {
      let watching = true;
      const stop = channel.watch(key, (seqno) => {
        if (random() < (opts.dropRate ?? 0)) {
          counts.dropped++;
          return;
        }
        const copies = random() < (opts.duplicateRate ?? 0) ? 2 : 1;
        if (copies === 2) counts.duplicated++;
        for (let i = 0; i < copies; i++) {
          later(() => {
            if (!watching) return;
            counts.delivered++;
            onChange(seqno);
          });
        }
      });
      return () => {
        watching = false;
        stop();
      };
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      await channel.close();
    },
  };
  return { ...inner, stateChanges: faulty, hintFaults: counts, close: () => inner.close() };
}
