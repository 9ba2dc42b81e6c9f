import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { jsSuite } from '../../crypto/suite.js';
import { createLogger } from '../../src/log.js';
import { startWarmUp, warmUp } from '../../src/warmup.js';
import { addonBuilt } from '../helpers/proc.js';

describe('JIT warm-up', () => {
  it('really carries packets both ways, both families, through handshakes', async () => {
    // Every packet arrives: the first ones wait in the staged queue for the handshake. Rounds
    // 4, 12, 20, ... send one more packet a -> b (two in a row).
    expect((await warmUp({ rounds: 60, handshakes: 1, slice: 0, udpRounds: 0 })).delivered).toBe(120 + 7);
    // Each extra pair carries two rounds (one IPv4 and one IPv6 packet each way) after each of
    // its handshakes; in slices.
    expect((await warmUp({ rounds: 10, handshakes: 3, handshakesPerPair: 1, slice: 4, pauseMs: 1, udpRounds: 0 })).delivered).toBe(2 * (2 * 2) + 20 + 1);
    // A pair's later handshakes follow a peer removed and re-added on both sides: every packet
    // still arrives, so none of them met a device under load (it would answer with a cookie).
    // 24 handshakes a pair, two rounds after each (rounds 0-47: six of them carry one more).
    expect((await warmUp({ rounds: 10, handshakes: 3, slice: 4, pauseMs: 1, udpRounds: 0 })).delivered).toBe(2 * (24 * 2 * 2 + 6) + 20 + 1);
  });

  it.skipIf(!addonBuilt)('carries packets over loopback UDP too, and closes its sockets', async () => {
    const fds = readdirSync('/proc/self/fd').length;
    // 40 rounds: 20 over IPv4, 20 over IPv6 (when ::1 exists), one packet each way per round.
    const v6 = existsSync('/proc/net/if_inet6') && readFileSync('/proc/net/if_inet6', 'utf8').includes('00000000000000000000000000000001');
    expect((await warmUp({ rounds: 0, handshakes: 1, udpRounds: 40 })).delivered).toBe(v6 ? 80 : 40);
    expect(readdirSync('/proc/self/fd').length).toBe(fds);
  });

  it('hands its last objects to the caller to keep, and is off with WG_TS_WARMUP=0', async () => {
    const r = await warmUp({ rounds: 2, handshakes: 1, slice: 0, udpRounds: 0, crypto: jsSuite });
    expect(r.retained.length).toBeGreaterThan(0);
    const lines: string[] = [];
    const logger = createLogger('verbose', '', (l) => lines.push(l));
    expect(await startWarmUp(jsSuite, logger, { WG_TS_WARMUP: '0' })).toBeNull();
    expect(lines.join('')).toMatch(/JIT warm-up off \(WG_TS_WARMUP=0\)/);
  });
});
