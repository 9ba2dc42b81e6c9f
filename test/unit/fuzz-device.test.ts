/**
 * Fuzz: 100,000 random and mutated datagrams (mutations of real messages of every type) at a
 * live pair of devices. Every one must be dropped and counted exactly once, nothing may throw,
 * the session state must not change, and the tunnel must still carry traffic afterwards.
 */
import { describe, expect, it } from 'vitest';
import { REKEY_TIMEOUT } from '../../noise/constants.js';
import type { Device } from '../../noise/device.js';
import type { Datagram } from '../../noise/memnet.js';
import type { Endpoint } from '../../noise/types.js';
import { EP_A, EP_B, makePair, payloadText } from '../helpers/device.js';
import { xorshift32 } from '../helpers/prng.js';

/** Deterministic choices of mutations. */
function prng(seed: number) {
  const next = xorshift32(seed);
  return {
    int: (n: number) => next() % n,
    bytes: (n: number) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = next() & 0xff;
      return b;
    },
  };
}

const totalDrops = (d: Device) => Object.values(d.drops).reduce((a, b) => a + b, 0);

describe('fuzzing a live session', () => {
  it('drops and counts 100,000 random and mutated datagrams without changing state', () => {
    const p = makePair({ psk: new Uint8Array(32).fill(9), b: { underLoad: true } });
    const captured: Datagram[] = [];
    p.net.filter = (d) => {
      captured.push({ data: d.data, from: d.from, to: d.to });
      return true;
    };
    // Capture every message type: cookie reply (B under load), initiation, response,
    // transport data and keepalives in both directions.
    p.a.sendPacket(p.aToB('first'));
    p.net.pump();
    p.run(REKEY_TIMEOUT + 400, 50);
    p.b.setUnderLoad(false);
    for (let i = 0; i < 5; i++) {
      p.a.sendPacket(p.aToB(`a${i}`.repeat(i * 30)));
      p.b.sendPacket(p.bToA(`b${i}`));
    }
    p.net.pump();
    p.run(11_000, 1000); // keepalives
    p.net.filter = null;
    const types = new Set(captured.map((d) => d.data[0]));
    expect([...types].sort()).toEqual([1, 2, 3, 4]);
    expect(p.net.inbox(p.b).length).toBe(6);

    const before = [p.a.inspectPeer(p.kb.pub), p.b.inspectPeer(p.ka.pub)];
    const dropsBefore = [totalDrops(p.a), totalDrops(p.b)];
    const inboxBefore = [p.net.inbox(p.a).length, p.net.inbox(p.b).length];
    // The only output fuzz may cause is cookie replies (A is in 'auto' mode and the flood of
    // handshake messages puts it under load); nothing else may be sent.
    const sentBefore = [p.a.stats.datagramsOut - p.a.stats.cookieRepliesOut, p.b.stats.datagramsOut - p.b.stats.cookieRepliesOut];

    const r = prng(0xc0ffee);
    const spoof: Endpoint = { address: '203.0.113.7', port: 666, family: 4 };
    const N = 100_000;
    const delivered = [0, 0];
    const pick = <T>(xs: T[]) => xs[r.int(xs.length)]!;
    // Initiations cost a DH when their MACs are intact; keep their share modest so the run
    // stays within seconds, while still covering them.
    const byType = new Map<number, Datagram[]>();
    for (const d of captured) byType.set(d.data[0]!, [...(byType.get(d.data[0]!) ?? []), d]);
    const liveIndex = captured.find((d) => d.data[0] === 4 && d.to === EP_B)!.data.subarray(4, 8);

    for (let i = 0; i < N; i++) {
      let data: Uint8Array;
      const kind = r.int(100);
      if (kind < 15) {
        data = r.bytes(r.int(200));
      } else if (kind < 25) {
        // Random body behind a valid header and length for a random type.
        const t = 1 + r.int(4);
        const len = t === 1 ? 148 : t === 2 ? 92 : t === 3 ? 64 : 32 + r.int(1500);
        data = r.bytes(len);
        data[0] = t;
        data[1] = data[2] = data[3] = 0;
        if (t === 4 && r.int(2) === 0) data.set(liveIndex, 4);
      } else {
        const t = kind < 30 ? 1 : kind < 40 ? 2 : kind < 50 ? 3 : 4;
        const src = pick(byType.get(t)!).data;
        data = src.slice();
        switch (r.int(6)) {
          case 0: {
            const flips = 1 + r.int(4);
            for (let f = 0; f < flips; f++) data[r.int(data.length)]! ^= 1 << r.int(8);
            break;
          }
          case 1:
            data = data.slice(0, r.int(data.length));
            break;
          case 2: {
            const ext = new Uint8Array(data.length + 1 + r.int(64));
            ext.set(data);
            ext.set(r.bytes(ext.length - data.length), data.length);
            data = ext;
            break;
          }
          case 3:
            data[0] = r.int(7);
            if (data[0] === t) data[1 + r.int(3)] = 1 + r.int(255);
            break;
          case 4:
            data[1 + r.int(3)] = 1 + r.int(255);
            break;
          default:
            // An exact replay.
            break;
        }
      }
      const toB = r.int(4) !== 0;
      (toB ? p.b : p.a).receiveDatagram(data, r.int(2) ? spoof : toB ? EP_A : EP_B);
      delivered[toB ? 1 : 0]!++;
    }

    // Every datagram was dropped and counted once; nothing reached the TUN side; state held.
    expect(totalDrops(p.a) - dropsBefore[0]!).toBe(delivered[0]);
    expect(totalDrops(p.b) - dropsBefore[1]!).toBe(delivered[1]);
    expect(p.a.drops['internal-error'] + p.b.drops['internal-error']).toBe(0);
    expect([p.net.inbox(p.a).length, p.net.inbox(p.b).length]).toEqual(inboxBefore);
    expect([p.a.inspectPeer(p.kb.pub), p.b.inspectPeer(p.ka.pub)]).toEqual(before);
    expect([p.a.stats.datagramsOut - p.a.stats.cookieRepliesOut, p.b.stats.datagramsOut - p.b.stats.cookieRepliesOut]).toEqual(sentBefore);
    expect(p.a.underLoad).toBe(true);
    expect(p.a.drops['cookie-sent']).toBeGreaterThan(0);
    for (const reason of [
      'invalid-length',
      'invalid-type',
      'invalid-reserved',
      'invalid-mac1',
      'unknown-index',
      'invalid-tag',
      'replayed-counter',
      'stale-timestamp',
      'invalid-cookie-reply',
    ] as const) {
      expect(p.a.drops[reason] + p.b.drops[reason], reason).toBeGreaterThan(0);
    }

    // The session still carries traffic both ways, on the same endpoints.
    p.a.sendPacket(p.aToB('still alive'));
    p.b.sendPacket(p.bToA('me too'));
    p.net.pump();
    expect(p.net.inbox(p.b).slice(-1).map(payloadText)).toEqual(['still alive']);
    expect(p.net.inbox(p.a).slice(-1).map(payloadText)).toEqual(['me too']);
    expect(p.b.status().peers[0]!.endpoint).toEqual(EP_A);
    expect(p.a.status().peers[0]!.endpoint).toEqual(EP_B);
  });
});
