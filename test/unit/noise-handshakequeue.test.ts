import { describe, expect, it } from 'vitest';
import { HandshakeBudget } from '../../noise/handshakebudget.js';
import { HandshakeQueue } from '../../noise/handshakequeue.js';
import { Ratelimiter } from '../../noise/ratelimiter.js';

const drain = <T>(q: HandshakeQueue<T>): T[] => {
  const out: T[] = [];
  for (let x = q.shift(); x !== undefined; x = q.shift()) out.push(x);
  return out;
};

describe('the handshake queue', () => {
  it('serves one message per source per round, in the order the sources arrived', () => {
    const q = new HandshakeQueue<string>(1);
    for (const m of ['a1', 'a2', 'a3']) q.push('a', m, 0);
    q.push('b', 'b1', 0);
    q.push('c', 'c1', 0);
    q.push('c', 'c2', 0);
    expect(q.size()).toBe(6);
    expect(drain(q)).toEqual(['a1', 'b1', 'c1', 'a2', 'c2', 'a3']);
    expect(q.size()).toBe(0);
  });

  it('does not let a busy source push a newcomer back: the newcomer waits one round at most', () => {
    const q = new HandshakeQueue<string>(1, { perSource: 4 });
    for (const s of ['x', 'y', 'z']) for (let i = 0; i < 4; i++) q.push(s, `${s}${i}`, 0);
    q.shift(); // x0; x goes to the back
    q.push('legit', 'L', 0);
    const order = drain(q);
    expect(order.indexOf('L')).toBe(3); // after y0, z0, x1: one round
  });

  it('serves a lane only when the lanes before it are empty', () => {
    const q = new HandshakeQueue<string>(3);
    q.push('r', 'rest', 2);
    q.push('q', 'quiet', 1);
    q.push('e', 'expected', 0);
    q.push('r', 'rest2', 2);
    expect(q.size(0)).toBe(1);
    expect(q.size(1)).toBe(2);
    expect(q.sources(2)).toBe(1);
    expect(q.shift()).toBe('expected');
    q.push('e', 'expected2', 0); // arrives later, still served before the others
    expect(drain(q)).toEqual(['expected2', 'quiet', 'rest', 'rest2']);
  });

  it('refuses what is beyond a source bound or a lane bound, and keeps what it holds', () => {
    const q = new HandshakeQueue<number>(2, { perSource: 2, maxSources: 3 });
    expect([q.push('a', 1, 0), q.push('a', 2, 0), q.push('a', 3, 0)]).toEqual([true, true, false]);
    expect([q.push('b', 4, 0), q.push('c', 5, 0), q.push('d', 6, 0)]).toEqual([true, true, false]);
    // Another lane has bounds of its own.
    expect(q.push('d', 7, 1)).toBe(true);
    expect(q.size()).toBe(5);
    expect(drain(q)).toEqual([1, 4, 5, 2, 7]);
    // Room again once drained.
    expect(q.push('d', 8, 0)).toBe(true);
  });

  it('hands back everything on clear', () => {
    const q = new HandshakeQueue<number>(2);
    q.push('a', 1, 0);
    q.push('b', 2, 1);
    q.push('b', 3, 1);
    expect(q.clear().sort()).toEqual([1, 2, 3]);
    expect(q.size()).toBe(0);
    expect(q.shift()).toBeUndefined();
  });

  it('rejects nonsense bounds and lanes', () => {
    expect(() => new HandshakeQueue(0)).toThrow(RangeError);
    expect(() => new HandshakeQueue(1, { perSource: 0 })).toThrow(RangeError);
    expect(() => new HandshakeQueue(1).push('a', 1, 1)).toThrow(RangeError);
  });
});

describe('the handshake budget', () => {
  it('allows perTurn messages per turn', () => {
    const b = new HandshakeBudget({ perTurn: 3 });
    let n = 0;
    while (b.allows(0) && n < 10) {
      b.spend(0);
      n++;
    }
    expect(n).toBe(3);
    expect(b.wait(0)).toBe(0); // the time share is not spent: a new turn may go on at once
    b.newTurn();
    expect(b.allows(0)).toBe(true);
  });

  it('limits the share of time spent, refilling at `share` ms per ms up to burstMs', () => {
    const b = new HandshakeBudget({ perTurn: 1000, share: 0.1, burstMs: 5 });
    let now = 0;
    let spent = 0;
    // Each message costs 1 ms of clock time; in 100 ms at most 5 (burst) + 100 * 0.1 = 15 ms go to them.
    while (now < 100) {
      if (b.allows(now)) {
        b.spend(1);
        spent += 1;
        now += 1;
      } else {
        const w = b.wait(now);
        expect(w).toBeGreaterThan(0);
        now += w;
      }
    }
    expect(spent).toBeGreaterThanOrEqual(14);
    expect(spent).toBeLessThanOrEqual(16);
    // After a quiet period the bucket is full again, but no fuller than the burst.
    now += 10_000;
    let burst = 0;
    while (b.allows(now)) {
      b.spend(1);
      burst++;
    }
    expect(burst).toBe(5);
  });

  it('rejects nonsense options', () => {
    expect(() => new HandshakeBudget({ perTurn: 0 })).toThrow(RangeError);
    expect(() => new HandshakeBudget({ share: 0 })).toThrow(RangeError);
    expect(() => new HandshakeBudget({ share: 1.5 })).toThrow(RangeError);
    expect(() => new HandshakeBudget({ burstMs: -1 })).toThrow(RangeError);
  });
});

describe("the rate limiter's looks that choose a lane and spare a MAC", () => {
  it('tells a quiet source (no bucket, or a full one) from a busy one, and peeks without taking', () => {
    const r = new Ratelimiter();
    const ip = Uint8Array.of(192, 0, 2, 1);
    const key = Ratelimiter.keyOf(ip);
    expect(r.isQuiet(key, 0)).toBe(true);
    expect(r.wouldAllow(key, 0)).toBe(true);
    expect(r.allow(ip, 0, key)).toBe(true);
    expect(r.isQuiet(key, 0)).toBe(false);
    for (let i = 0; i < 4; i++) expect(r.allow(ip, 0, key)).toBe(true);
    expect(r.wouldAllow(key, 0)).toBe(false);
    expect(r.wouldAllow(key, 0)).toBe(false); // peeking took nothing, and gave nothing
    expect(r.wouldAllow(key, 50)).toBe(true); // one token back after 1/20 s
    expect(r.isQuiet(key, 200)).toBe(false);
    expect(r.isQuiet(key, 250)).toBe(true); // the whole burst back
  });
});
