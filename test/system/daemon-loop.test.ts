/**
 * A routing loop on a real daemon (bench/loop.ts sets it up in namespaces of its own and removes
 * them): the endpoint of the peer lies inside its allowed IPs and is routed into the interface
 * itself. Without a guard each 1400-byte ping laps on, fragmented and re-encrypted (hundreds of
 * MB per second, as wireguard-go does); with it, the first lap is dropped and counted.
 */
import { describe, expect, it } from 'vitest';
import { measureLoop } from '../../bench/loop.js';
import { skipReason } from '../helpers/netns.js';

const skip = skipReason('wg', 'ping');

describe.skipIf(skip)(`routing loop${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('drops our own datagrams coming back through the interface, and says how many', async () => {
    const r = await measureLoop('ts', 3);
    // Three pings of 1428 bytes and the first lap of each (two fragments of 1480 bytes in all),
    // plus whatever the kernel sends on its own (router solicitations): far below one more lap each.
    expect(r.loopedBytes).toBeGreaterThan(3 * 1428);
    expect(r.loopedBytes).toBeLessThan(3 * (1428 + 1500) + 4096);
    const m = /Routing loop: dropped (\d+) of our own datagrams/.exec(r.log);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
