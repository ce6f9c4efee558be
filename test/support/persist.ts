/**
 * Shared set-up for persist tests: in-memory clients, the string/unit codecs the
 * reference tests use, a sorter so update lists compare regardless of order, and
 * parts' rows in the row form.
 */
import { expect } from 'chai';
import { PersistClient, Codecs, type PersistConfig, type Update } from '../../src/persist/index.js';
import type { PartData } from '../../src/persist/part.js';

export const STRING_UNIT = { key: Codecs.string, val: Codecs.unit } as const;

/** A client on a fresh private in-memory location. */
export function memClient(config: Partial<PersistConfig> = {}): Promise<PersistClient> {
  return PersistClient.open('mem://', { config: { listenPoll: { initialMs: 1, multiplier: 2, clampMs: 20 }, ...config } });
}

export function sorted<K, V>(updates: readonly Update<K, V>[]): Update<K, V>[] {
  return [...updates].sort((a, b) => {
    const ka = JSON.stringify([a[0], a[1], a[2]]);
    const kb = JSON.stringify([b[0], b[1], b[2]]);
    return ka < kb ? -1 : ka > kb ? 1 : a[3] - b[3];
  });
}

/** A part's rows `[key, val, time, diff]` (encoded keys and values) in the row form. */
export function partDataOf(rows: Iterable<readonly [Uint8Array, Uint8Array, number, number]>): PartData {
  const data: PartData = { keys: [], vals: [], times: [], diffs: [] };
  for (const [k, v, t, d] of rows) {
    data.keys.push(k);
    data.vals.push(v);
    data.times.push(t);
    data.diffs.push(d);
  }
  return data;
}

/** Rows `[key, null, ts, 1]` for each key. */
export function rows(ts: number, ...keys: string[]): Update<string, null>[] {
  return keys.map((k) => [k, null, ts, 1] as const);
}

/** Awaits `p`, expecting it to reject with `type` (and a message matching `message`). */
export async function expectReject(p: Promise<unknown>, type: new (...a: never[]) => Error, message?: RegExp) {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'expected the promise to reject').to.be.instanceOf(type);
  if (message) expect((err as Error).message).to.match(message);
  return err as Error;
}
