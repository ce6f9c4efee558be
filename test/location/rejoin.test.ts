/**
 * Rejoin, the reconnect loop of the wake-up channels: failed attempts are retried
 * with backoff until one succeeds, never two at once, and stop() ends it.
 */
import { expect } from 'chai';
import { Rejoin } from '../../src/location/rejoin.js';

describe('Rejoin (the wake-up channels\' reconnect loop)', () => {
  it('retries failed and throwing attempts until one succeeds, then reports up once', async () => {
    const outcomes = [false, 'throw', false, true] as const;
    let attempts = 0;
    let concurrent = 0;
    let up!: () => void;
    const wentUp = new Promise<void>((r) => (up = r));
    let ups = 0;
    const rejoin = new Rejoin(
      async () => {
        concurrent++;
        expect(concurrent, 'one attempt at a time').to.equal(1);
        await new Promise((r) => setImmediate(r));
        concurrent--;
        const outcome = outcomes[attempts++];
        if (outcome === 'throw') throw new Error('refused');
        return outcome ?? true;
      },
      () => {
        ups++;
        up();
      },
      { initialMs: 1, clampMs: 4 },
    );
    // Two calls at once share one attempt.
    await Promise.all([rejoin.now(), rejoin.now()]);
    await wentUp;
    expect(attempts).to.equal(4);
    expect(ups).to.equal(1);
    await rejoin.stop();
  });

  it('stop() waits for the attempt in flight and nothing starts afterwards', async () => {
    let attempts = 0;
    let release!: (ok: boolean) => void;
    const rejoin = new Rejoin(
      () => {
        attempts++;
        return new Promise<boolean>((r) => (release = r));
      },
      () => expect.fail('stopped: must not report up'),
      { initialMs: 1, clampMs: 1 },
    );
    void rejoin.now();
    const stopped = rejoin.stop();
    release(true);
    await stopped;
    await rejoin.now();
    expect(attempts).to.equal(1);
  });
});
