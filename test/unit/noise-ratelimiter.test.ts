/**
 * The handshake rate limiter (noise/ratelimiter.ts) as tables, in the manner of the kernel's
 * selftest/ratelimiter.c: a sequence of (wait, expected verdict) for one source, checked for
 * an IPv4 and an IPv6 source while a fresh source beside each is always let through; the
 * table-full case; and which addresses share a bucket. Time is a parameter, so the table is
 * exact (no sleeping, no timing slack).
 */
import { describe, expect, it } from 'vitest';
import { RATELIMIT_ENTRY_TTL, RATELIMIT_MAX_ENTRIES, RATELIMIT_PACKETS_BURST, RATELIMIT_PACKETS_PER_SECOND } from '../../noise/constants.js';
import { parseIp } from '../../noise/iptext.js';
import { Ratelimiter } from '../../noise/ratelimiter.js';

const PER_PACKET = 1000 / RATELIMIT_PACKETS_PER_SECOND;

/** Each entry: how long to wait before the next message, and whether it may pass. */
const timings: Array<{ wait: number; allowed: boolean; what: string }> = [
  ...Array.from({ length: RATELIMIT_PACKETS_BURST }, () => ({ wait: 0, allowed: true, what: 'the burst' })),
  { wait: 0, allowed: false, what: 'one past the burst' },
  { wait: PER_PACKET - 1, allowed: false, what: 'not quite one token later' },
  { wait: 1, allowed: true, what: 'one token refilled' },
  { wait: 0, allowed: false, what: 'no token left' },
  { wait: 2 * PER_PACKET, allowed: true, what: 'two tokens refilled: the first' },
  { wait: 0, allowed: true, what: 'two tokens refilled: the second' },
  { wait: 0, allowed: false, what: 'after the two' },
  // Idle for most of the TTL: the bucket refills only up to the burst.
  { wait: RATELIMIT_ENTRY_TTL - 1, allowed: true, what: 'a refilled burst (1/5)' },
  ...Array.from({ length: RATELIMIT_PACKETS_BURST - 1 }, (_, i) => ({ wait: 0, allowed: true, what: `a refilled burst (${i + 2}/5)` })),
  { wait: 0, allowed: false, what: 'the refill is capped at the burst' },
];

const v4 = (s: string): Uint8Array => parseIp(s)!.bytes;

/** An IPv4 address as a number plus `n` (as the kernel's test steps saddr). */
function v4plus(base: string, n: number): Uint8Array {
  const b = v4(base);
  const x = (new DataView(b.buffer).getUint32(0) + n) >>> 0;
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, x);
  return out;
}

/** An IPv6 address with its first 32-bit word stepped by `hi` and its last 64 bits set to `lo`. */
function v6(hi: number, lo: number): Uint8Array {
  const b = new Uint8Array(16);
  const d = new DataView(b.buffer);
  d.setUint32(0, 1212 + hi);
  d.setUint32(4, 289188);
  d.setUint32(8, lo);
  d.setUint32(12, lo);
  return b;
}

describe('ratelimiter: the timings table', () => {
  it('gives one source exactly the verdicts of the table, and its neighbours always pass', () => {
    const rl = new Ratelimiter();
    let now = 5_000;
    for (const [i, t] of timings.entries()) {
      now += t.wait;
      const at = `#${i} ${t.what} (t=${now})`;
      expect(rl.allow(v4('0.0.31.246'), now), `IPv4 ${at}`).toBe(t.allowed);
      // Another IPv4 source, new each time: its own bucket.
      expect(rl.allow(v4plus('0.0.31.246', i + 1), now), `another IPv4 source ${at}`).toBe(true);
      // The same IPv6 /64 with other interface bits each time: one bucket, the same verdicts.
      expect(rl.allow(v6(0, i), now), `IPv6 ${at}`).toBe(t.allowed);
      // Another /64: its own bucket.
      expect(rl.allow(v6(i + 1, i), now), `another IPv6 /64 ${at}`).toBe(true);
    }
  });
});

describe('ratelimiter: capacity', () => {
  it(`tracks ${RATELIMIT_MAX_ENTRIES} sources and refuses a new one beyond, until entries expire`, () => {
    const rl = new Ratelimiter();
    const addr = (i: number): Uint8Array => Uint8Array.of(i >>> 24, (i >>> 16) & 255, (i >>> 8) & 255, i & 255);
    for (let i = 0; i <= RATELIMIT_MAX_ENTRIES; i++) {
      if (rl.allow(addr(i), 0) !== (i !== RATELIMIT_MAX_ENTRIES)) throw new Error(`source ${i}: wrong verdict`);
    }
    expect(rl.size).toBe(RATELIMIT_MAX_ENTRIES);
    // A known source still gets its tokens while the table is full.
    expect(rl.allow(addr(7), 0)).toBe(true);
    // Idle entries are forgotten once the TTL has passed: room for new sources again.
    expect(rl.allow(addr(RATELIMIT_MAX_ENTRIES), RATELIMIT_ENTRY_TTL + 1)).toBe(true);
    expect(rl.size).toBe(1);
  });
});

describe('ratelimiter: forgetting idle sources', () => {
  const cases: Array<{ idle: number; kept: boolean }> = [
    { idle: RATELIMIT_ENTRY_TTL - 1, kept: true },
    { idle: RATELIMIT_ENTRY_TTL, kept: true },
    { idle: RATELIMIT_ENTRY_TTL + 1, kept: false },
  ];
  for (const c of cases) {
    it(`idle ${c.idle} ms: ${c.kept ? 'kept' : 'forgotten'}`, () => {
      const rl = new Ratelimiter();
      rl.allow(v4('192.0.2.1'), 0);
      rl.allow(v4('192.0.2.2'), c.idle);
      expect(rl.size).toBe(c.kept ? 2 : 1);
    });
  }

  it('clear() forgets every source', () => {
    const rl = new Ratelimiter();
    for (let i = 0; i <= RATELIMIT_PACKETS_BURST; i++) rl.allow(v4('192.0.2.1'), 0);
    expect(rl.allow(v4('192.0.2.1'), 0)).toBe(false);
    rl.clear();
    expect(rl.size).toBe(0);
    expect(rl.allow(v4('192.0.2.1'), 0)).toBe(true);
  });
});

describe('ratelimiter: which sources share a bucket', () => {
  const cases: Array<[string, string, boolean]> = [
    ['192.0.2.1', '192.0.2.1', true],
    ['192.0.2.1', '192.0.2.2', false],
    ['10.0.0.1', '11.0.0.1', false],
    ['2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:ffff', true],
    ['2001:db8:1:2::1', '2001:db8:1:3::1', false],
    ['2001:db8::', '2001:db9::', false],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.2', true],
  ];
  for (const [a, b, same] of cases) {
    it(`${a} and ${b}: ${same ? 'one bucket' : 'two buckets'}`, () => {
      expect(Ratelimiter.keyOf(parseIp(a)!.bytes) === Ratelimiter.keyOf(parseIp(b)!.bytes)).toBe(same);
      // The verdicts agree: exhausting a's bucket stops b only when they share it.
      const rl = new Ratelimiter();
      for (let i = 0; i < RATELIMIT_PACKETS_BURST; i++) expect(rl.allow(parseIp(a)!.bytes, 0)).toBe(true);
      expect(rl.allow(parseIp(b)!.bytes, 0)).toBe(!same);
    });
  }
});
