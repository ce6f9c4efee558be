/**
 * resolveConfig: the defaults with the caller's overrides, every field checked
 * (issue 10: `storageRetry.attempts: NaN` retried forever).
 */
import { expect } from 'chai';
import { defaultConfig, resolveConfig } from '../../src/persist/config.js';
import { InvalidArgument } from '../../src/persist/errors.js';

describe('persist: config', () => {
  it('retry params may be given in part; the rest keep their defaults', () => {
    const cfg = resolveConfig({ storageRetry: { attempts: 2 } as never, listenPoll: { initialMs: 1 } as never });
    expect(cfg.storageRetry).to.deep.equal({ ...defaultConfig().storageRetry, attempts: 2 });
    expect(cfg.listenPoll).to.deep.equal({ ...defaultConfig().listenPoll, initialMs: 1 });
  });

  it('an explicit undefined means the default', () => {
    expect(resolveConfig({ rollupThreshold: undefined }).rollupThreshold).to.equal(defaultConfig().rollupThreshold);
  });

  it('refuses NaN, non-integers, out-of-range numbers, wrong kinds and unknown fields, naming the field', () => {
    expect(() => resolveConfig({ storageRetry: { attempts: NaN } as never })).to.throw(
      InvalidArgument,
      'config.storageRetry.attempts must be a safe integer >= 1, got NaN',
    );
    expect(() => resolveConfig({ storageRetry: { attempts: 0 } as never })).to.throw(InvalidArgument, /attempts must be a safe integer >= 1, got 0/);
    expect(() => resolveConfig({ rollupThreshold: 1.5 })).to.throw(InvalidArgument, /rollupThreshold must be a safe integer >= 1, got 1.5/);
    expect(() => resolveConfig({ readerLeaseDurationMs: 0 })).to.throw(InvalidArgument, /readerLeaseDurationMs must be a finite number > 0/);
    expect(() => resolveConfig({ listenPoll: { multiplier: 0.5 } as never })).to.throw(InvalidArgument, /listenPoll.multiplier .*>= 1/);
    expect(() => resolveConfig({ compaction: 'yes' as never })).to.throw(InvalidArgument, /config.compaction must be true or false, got a string "yes"/);
    expect(() => resolveConfig({ logger: console as never })).to.not.throw();
    expect(() => resolveConfig({ logger: {} as never })).to.throw(InvalidArgument, /config.logger must be a pino Logger/);
    expect(() => resolveConfig({ rolupThreshold: 4 } as never)).to.throw(InvalidArgument, /config.rolupThreshold is not a persist config field/);
    expect(() => resolveConfig({ storageRetry: { tries: 4 } as never })).to.throw(InvalidArgument, /storageRetry.tries is not a field/);
    expect(() => resolveConfig(5 as never)).to.throw(InvalidArgument, /config must be an options object/);
  });
});
