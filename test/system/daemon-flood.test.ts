/**
 * A real daemon under a handshake flood of 150,000 initiations a second over loopback
 * (bench/flood.js: random initiations, ones with a valid mac1, and ones that solve cookies,
 * from 127.0.0.2..255), in namespaces of the test's own (bench/flood-handshake.ts sets them up
 * and removes them). A fixed rate, not the generator's fastest: on two cores the fastest flood
 * takes whatever CPU the daemon leaves, so it grows as the daemon gets cheaper, and past what
 * the daemon reads the kernel drops datagrams at random, the legitimate ones among them; the
 * test is of the daemon's admission policy, the benchmark (flood-handshake.js) of the race. A legitimate wireguard-ts peer with a fresh key completes its handshake on
 * its first or second initiation: the second one leaves REKEY_TIMEOUT plus at most 1/3 s of
 * jitter after the first, so the bound is 5.5 s and a third initiation (10 s) fails it. An
 * established tunnel keeps carrying pings meanwhile.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { measureFlood } from '../../bench/flood-handshake.js';
import { skipReason } from '../helpers/netns.js';

/**
 * Initiations a second. At full speed the generator sent 222k-243k a second on 2026-12-02 (up to
 * 260k on 12-01), and the tunnel under it lost up to 12 pings in 60 and, one run in three,
 * the legitimate peer's second initiation, with yesterday's daemon as with today's; at 150k it
 * lost none (60/60 twice, handshakes in 5.08-5.14 s).
 */
const FLOOD_RATE = 150_000;

const built = existsSync(fileURLToPath(new URL('../../dist/bench/flood.js', import.meta.url)));
const skip = skipReason('wg', 'ping') ?? (built ? null : 'needs the compiled flood generator (npm run prepare)');

describe.skipIf(skip)(`wireguard-ts under a handshake flood${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('answers a legitimate peer on its first or second initiation, and keeps an established tunnel up', async () => {
    const r = await measureFlood('ts', 3, ['--rate', String(FLOOD_RATE)]);
    const flood = r.flood as { sent: number; perSecond: number; sourcesWithCookie: number };
    // The flood was real: all kinds sent, and its sources held cookies (so it cost DHs).
    expect(flood.sent).toBeGreaterThan(100_000);
    expect(flood.sourcesWithCookie).toBeGreaterThan(200);
    for (const ms of r.handshakeMs) {
      expect(ms).not.toBeNull();
      expect(ms!).toBeLessThanOrEqual(5500);
    }
    expect(r.pingsReceived).toBeGreaterThanOrEqual(r.pingsSent * 0.9);
  }, 120_000);
});
