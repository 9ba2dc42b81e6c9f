/**
 * A device under a handshake flood: what passes the MAC checks waits in a fair queue served from
 * tick() within a budget, messages it has reason to expect go first, then quiet sources, then
 * the rest; transport data never waits; every input is counted once.
 */
import { describe, expect, it } from 'vitest';
import { deterministicRng } from '../../crypto/random.js';
import { REKEY_TIMEOUT } from '../../noise/constants.js';
import { CookieState } from '../../noise/cookie.js';
import type { Device } from '../../noise/device.js';
import type { Datagram } from '../../noise/memnet.js';
import { parseCookieReply, writeU32 } from '../../noise/messages.js';
import type { Endpoint } from '../../noise/types.js';
import { EP_A, EP_B, makePair, type Pair, payloadText } from '../helpers/device.js';

const typeOf = (d: Datagram) => d.data[0]!;
const totalDrops = (d: Device) => Object.values(d.drops).reduce((a, b) => a + b, 0);

/**
 * A flooding source that holds B's cookie: initiations with random bodies and valid mac1 and
 * mac2 (each costs B a Diffie-Hellman, then fails as 'invalid-initiation').
 */
class Flooder {
  private readonly cookie: CookieState;
  private readonly rng: ReturnType<typeof deterministicRng>;
  private index = 0;
  sent = 0;

  constructor(
    private readonly p: Pair,
    private readonly n: number,
    readonly from: Endpoint = { address: `198.18.0.${n}`, port: 40000 + n, family: 4 },
  ) {
    this.cookie = new CookieState(p.kb.pub);
    this.rng = deterministicRng(n + 1000);
  }

  private message(): Uint8Array {
    const m = this.rng(new Uint8Array(148));
    m[0] = 1;
    m[1] = m[2] = m[3] = 0;
    writeU32(m, 4, this.n * 1000 + this.index++);
    this.cookie.addMacs(m, this.p.clock.now());
    return m;
  }

  /** Send one initiation without mac2 and take the cookie from B's reply. */
  solicit(): void {
    this.p.b.receiveDatagram(this.message(), this.from);
    const i = this.p.net.queue.findIndex((d) => d.to === this.from && typeOf(d) === 3);
    expect(i).toBeGreaterThanOrEqual(0);
    const [reply] = this.p.net.queue.splice(i, 1);
    const parsed = parseCookieReply(reply!.data);
    if (typeof parsed === 'string' || !this.cookie.consumeReply(parsed, this.p.clock.now())) throw new Error('no cookie');
  }

  /** Send `n` initiations with a valid mac2. */
  flood(n: number): void {
    for (let i = 0; i < n; i++) {
      this.p.b.receiveDatagram(this.message(), this.from);
      this.sent++;
    }
  }
}

/** A's initiation retried with the cookie B gave it (B under load): the datagram, not yet delivered. */
function legitInitiationWithCookie(p: Pair): Datagram {
  p.a.sendPacket(p.aToB('hello'));
  p.net.pump(); // initiation, cookie reply, consumed by A
  expect(p.a.stats.cookieRepliesIn).toBe(1);
  p.clock.advance(REKEY_TIMEOUT + 400);
  p.a.tick();
  const i = p.net.queue.findIndex((d) => d.to === EP_B && typeOf(d) === 1);
  expect(i).toBeGreaterThanOrEqual(0);
  const [d] = p.net.queue.splice(i, 1);
  expect(d!.data.subarray(132).some((b) => b !== 0)).toBe(true);
  return d!;
}

describe('a device under a handshake flood', () => {
  it('queues what its budget does not allow, serves it from tick(), and says so in its return value', () => {
    const p = makePair({ b: { underLoad: true, handshakeBudget: { perTurn: 2 } } });
    const f = new Flooder(p, 1);
    f.solicit();
    f.flood(5); // the burst of the rate limiter: 2 at once, 3 queued
    expect(p.b.drops['invalid-initiation']).toBe(2);
    expect(p.b.queuedHandshakes).toBe(3);
    expect(p.b.tick()).toBe(0); // 2 more now; one is left: come back soon
    expect(p.b.drops['invalid-initiation']).toBe(4);
    expect(p.b.tick()).toBeGreaterThan(0); // the last one; nothing waits
    expect(p.b.drops['invalid-initiation']).toBe(5);
    expect(p.b.queuedHandshakes).toBe(0);
  });

  it("serves a peer's expected source before quiet ones, and quiet ones before busy ones", () => {
    // B knows A's endpoint: A's retry goes ahead of everything.
    const p = makePair({ b: { underLoad: true, handshakeBudget: { perTurn: 1 } } });
    const legit = legitInitiationWithCookie(p);
    const flood = Array.from({ length: 10 }, (_, i) => new Flooder(p, i + 1));
    for (const f of flood) f.solicit();
    p.b.tick();
    for (const f of flood) f.flood(3); // one processed at once, the rest queued
    const queued = p.b.queuedHandshakes;
    expect(queued).toBe(29);
    p.b.receiveDatagram(legit.data, legit.from);
    p.b.tick(); // one message this turn: A's
    expect(p.b.stats.handshakesIn).toBe(1);
    expect(p.net.queue.some((d) => d.to === EP_A && typeOf(d) === 2)).toBe(true);
    expect(p.b.queuedHandshakes).toBe(queued);
  });

  it('serves a roaming peer (no known endpoint) from its quiet source ahead of busy flooders', () => {
    const p = makePair({ bKnowsA: false, b: { underLoad: true, handshakeBudget: { perTurn: 1 } } });
    const legit = legitInitiationWithCookie(p);
    const flood = Array.from({ length: 10 }, (_, i) => new Flooder(p, i + 1));
    for (const f of flood) f.solicit();
    // The flooders have been at it for a while: their rate-limit buckets are not full.
    for (const f of flood) f.flood(2);
    while (p.b.queuedHandshakes > 0) p.b.tick();
    p.clock.advance(60);
    for (const f of flood) f.flood(3);
    const queued = p.b.queuedHandshakes;
    expect(queued).toBeGreaterThanOrEqual(10);
    p.b.receiveDatagram(legit.data, legit.from);
    p.b.tick();
    expect(p.b.stats.handshakesIn).toBe(1);
    expect(p.b.queuedHandshakes).toBe(queued);
    // The session completes and carries the staged packet.
    p.net.pump();
    expect(p.net.inbox(p.b).map(payloadText)).toContain('hello');
  });

  it('carries transport data at once while handshakes wait', () => {
    const p = makePair({ b: { handshakeBudget: { perTurn: 1 } } });
    p.a.sendPacket(p.aToB('before'));
    p.net.pump();
    p.b.setUnderLoad(true);
    const flood = Array.from({ length: 5 }, (_, i) => new Flooder(p, i + 1));
    for (const f of flood) {
      f.solicit();
      f.flood(4);
    }
    expect(p.b.queuedHandshakes).toBeGreaterThan(0);
    const waiting = p.b.queuedHandshakes;
    p.a.sendPacket(p.aToB('during'));
    p.net.pump();
    expect(p.net.inbox(p.b).map(payloadText)).toEqual(['before', 'during']);
    expect(p.b.queuedHandshakes).toBe(waiting);
  });

  it('bounds the queue per source and counts every input once', () => {
    const p = makePair({ b: { underLoad: true, handshakeBudget: { perTurn: 1 }, handshakeQueue: { perSource: 2, maxSources: 3 } } });
    const flood = Array.from({ length: 5 }, (_, i) => new Flooder(p, i + 1));
    const before = totalDrops(p.b);
    const inBefore = p.b.stats.datagramsIn;
    for (const f of flood) {
      f.solicit();
      p.clock.advance(300); // a full bucket again
      f.flood(5);
    }
    // The first message processed at once. Then a source's first message goes to the lane of
    // quiet sources and its others to the last lane (its bucket is no longer full): each lane
    // takes 3 sources, 2 messages each; the rest is refused.
    expect(p.b.queuedHandshakes).toBe(3 + 3 * 2);
    expect(p.b.drops['handshake-queue-full']).toBe(5 * 5 - 1 - 9);
    while (p.b.tick() === 0);
    expect(p.b.queuedHandshakes).toBe(0);
    expect(totalDrops(p.b) - before).toBe(p.b.stats.datagramsIn - inBefore);
    expect(p.b.drops['invalid-initiation']).toBe(10);
  });

  it('sends at most the rate limit of cookie replies to one source, and nothing for replies not owed', () => {
    const p = makePair({ b: { underLoad: true } });
    const f = new Flooder(p, 7);
    // Initiations without mac2 (a CookieState that never got a cookie): a cookie reply each, up to the burst of 5.
    const noCookie = new CookieState(p.kb.pub);
    for (let i = 0; i < 10; i++) {
      const m = deterministicRng(i)(new Uint8Array(148));
      m[0] = 1;
      m[1] = m[2] = m[3] = 0;
      noCookie.addMacs(m, 0);
      p.b.receiveDatagram(m, f.from);
    }
    expect(p.b.stats.cookieRepliesOut).toBe(5);
    expect(p.b.drops['cookie-sent']).toBe(5);
    expect(p.b.drops['cookie-ratelimited']).toBe(5);
    // Another source has buckets of its own.
    const g = new Flooder(p, 8);
    g.solicit();
    expect(p.b.stats.cookieRepliesOut).toBe(6);
  });

  it('drops what is queued when it closes, counted as closed', () => {
    const p = makePair({ b: { underLoad: true, handshakeBudget: { perTurn: 1 } } });
    const f = new Flooder(p, 1);
    f.solicit();
    f.flood(4);
    expect(p.b.queuedHandshakes).toBe(3);
    const closed = p.b.drops.closed;
    p.b.close();
    expect(p.b.drops.closed - closed).toBe(3);
    expect(p.b.tick()).toBe(Number.POSITIVE_INFINITY);
  });
});
