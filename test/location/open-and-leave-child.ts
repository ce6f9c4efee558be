/**
 * Child for the state-changes test: opens the location named by argv[2], watches and
 * publishes a hint, and then ends its script without closing anything. The wake-up
 * channel's sockets and timers must not keep the process alive, so it must exit.
 */
import { openLocation } from '../../src/location/location.js';

const location = await openLocation(process.argv[2]!);
location.stateChanges!.watch('k', () => undefined);
location.stateChanges!.publish('k', 1);
process.stdout.write(`up=${location.stateChanges!.up}\n`);
