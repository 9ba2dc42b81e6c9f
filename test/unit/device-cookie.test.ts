import { describe, expect, it } from 'vitest';
import { REKEY_TIMEOUT, UNDER_LOAD_HANDSHAKES_PER_SECOND } from '../../noise/constants.js';
import type { Datagram } from '../../noise/memnet.js';
import { EP_A, EP_B, makePair, payloadText } from '../helpers/device.js';

const typeOf = (d: Datagram) => d.data[0]!;

describe('cookies and rate limiting under load', () => {
  it('round-trips a cookie when the responder is forced under load', () => {
    const p = makePair({ b: { underLoad: true } });
    const inits: Uint8Array[] = [];
    const types: number[] = [];
    p.net.filter = (d) => {
      types.push(typeOf(d));
      if (typeOf(d) === 1) inits.push(d.data);
      return true;
    };
    p.a.sendPacket(p.aToB('behind a cookie'));
    p.net.pump();
    expect(types).toEqual([1, 3]);
    expect(p.b.drops['cookie-sent']).toBe(1);
    expect(p.b.stats.cookieRepliesOut).toBe(1);
    expect(p.a.stats.cookieRepliesIn).toBe(1);
    expect(p.net.inbox(p.b)).toEqual([]);
    expect(inits[0]!.subarray(132).every((b) => b === 0)).toBe(true);
    // The retransmission carries mac2 and is accepted.
    p.run(REKEY_TIMEOUT + 400, 50);
    expect(inits.length).toBe(2);
    expect(inits[1]!.subarray(132).some((b) => b !== 0)).toBe(true);
    expect(p.net.inbox(p.b).map(payloadText)).toEqual(['behind a cookie']);
    expect(types.slice(2, 4)).toEqual([1, 2]);
    expect(p.b.drops['cookie-sent']).toBe(1);
  });

  it('rate-limits handshakes per source IP under load (burst 5)', () => {
    const p = makePair({ b: { underLoad: true } });
    let withCookie: Datagram | null = null;
    p.net.filter = (d) => {
      if (typeOf(d) === 1 && d.data.subarray(132).some((b) => b !== 0)) withCookie = d;
      return true;
    };
    p.a.sendPacket(p.aToB());
    p.net.pump();
    p.run(REKEY_TIMEOUT + 400, 50);
    expect(withCookie).not.toBeNull();
    const d = withCookie as unknown as Datagram;
    // Let the source's bucket refill to its burst of 5 (tokens return at 20 per second).
    p.clock.advance(500);
    for (let i = 0; i < 10; i++) p.b.receiveDatagram(d.data, d.from);
    // Five pass the limiter (and fail as replays of a consumed initiation); five are refused.
    expect(p.b.drops['stale-timestamp']).toBe(5);
    expect(p.b.drops.ratelimited).toBe(5);
    p.clock.advance(100);
    for (let i = 0; i < 3; i++) p.b.receiveDatagram(d.data, d.from);
    expect(p.b.drops['stale-timestamp']).toBe(7);
    expect(p.b.drops.ratelimited).toBe(6);
    // A source without the cookie gets a cookie reply, not a handshake.
    p.b.receiveDatagram(d.data, { ...EP_A, port: EP_A.port + 1 });
    expect(p.b.drops['cookie-sent']).toBe(2);
  });

  it("'auto' goes under load at a high handshake rate and recovers after it stops", () => {
    const p = makePair();
    p.a.sendPacket(p.aToB());
    p.net.pump();
    expect(p.b.underLoad).toBe(false);
    const junk = new Uint8Array(148);
    junk[0] = 1;
    for (let i = 0; i < UNDER_LOAD_HANDSHAKES_PER_SECOND; i++) {
      p.clock.advance(1);
      p.b.receiveDatagram(junk, EP_A);
    }
    expect(p.b.drops['invalid-mac1']).toBe(UNDER_LOAD_HANDSHAKES_PER_SECOND);
    expect(p.b.underLoad).toBe(true);
    // A genuine initiation now gets a cookie reply.
    p.run(125_000, 1000); // past REKEY_AFTER_TIME, so A rekeys on its next packet
    p.clock.advance(1);
    for (let i = 0; i < UNDER_LOAD_HANDSHAKES_PER_SECOND; i++) p.b.receiveDatagram(junk, EP_A);
    const types: number[] = [];
    p.net.filter = (d) => {
      types.push(typeOf(d));
      return true;
    };
    p.a.sendPacket(p.aToB());
    p.net.pump();
    expect(types).toContain(3);
    p.clock.advance(2000);
    expect(p.b.underLoad).toBe(false);
  });

  it('drops cookie replies nobody asked for', () => {
    const p = makePair();
    p.a.sendPacket(p.aToB());
    p.net.pump();
    const reply = new Uint8Array(64);
    reply[0] = 3;
    p.a.receiveDatagram(reply, EP_B);
    expect(p.a.drops['unknown-index']).toBe(1);
  });
});
