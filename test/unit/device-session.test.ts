import { describe, expect, it } from 'vitest';
import { KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REJECT_AFTER_TIME, REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME, REKEY_TIMEOUT } from '../../noise/constants.js';
import type { Datagram } from '../../noise/memnet.js';
import { EP_A, EP_B, ipv4Packet, makePair, payloadText } from '../helpers/device.js';

const typeOf = (d: Datagram) => d.data[0]!;

describe.each([false, true])('two devices in memory (psk: %s)', (withPsk) => {
  const psk = withPsk ? new Uint8Array(32).fill(0x5a) : undefined;

  it('handshake, then data both ways; counters and last-handshake time', () => {
    const p = makePair({ psk });
    const seen: number[] = [];
    p.net.filter = (d) => {
      seen.push(d.data.length);
      return true;
    };
    p.a.sendPacket(p.aToB('ping'));
    p.net.pump();
    // initiation, response, then the staged packet under the new session
    expect(seen.slice(0, 2)).toEqual([148, 92]);
    expect(p.net.inbox(p.b).map(payloadText)).toEqual(['ping']);
    p.b.sendPacket(p.bToA('pong'));
    p.net.pump();
    expect(p.net.inbox(p.a).map(payloadText)).toEqual(['pong']);

    const sa = p.a.status().peers[0]!;
    const sb = p.b.status().peers[0]!;
    expect(sa.txBytes).toBe(sb.rxBytes);
    expect(sb.txBytes).toBe(sa.rxBytes);
    expect(sa.txBytes).toBe(148 + 32 + 32); // initiation + "ping" (25 B padded to 32) + 32
    expect(sa.lastHandshakeSec).toBe(Math.floor(p.clock.wall() / 1000));
    expect(sb.lastHandshakeSec).toBe(Math.floor(p.clock.wall() / 1000));
    expect(sa.presharedKey === null).toBe(!withPsk);
    expect(p.a.inspectPeer(p.kb.pub)!.currentIsInitiator).toBe(true);
    expect(p.b.inspectPeer(p.ka.pub)!.currentIsInitiator).toBe(false);
    expect(Object.values(p.a.drops).reduce((x, y) => x + y)).toBe(0);
    expect(Object.values(p.b.drops).reduce((x, y) => x + y)).toBe(0);
  });

  it('fails the handshake when only one side has the preshared key', () => {
    const p = makePair({ psk });
    p.b.apply({ peers: [{ publicKey: p.ka.pub, presharedKey: withPsk ? null : new Uint8Array(32).fill(1), allowedIps: [] }] });
    p.a.sendPacket(p.aToB('x'));
    p.net.pump();
    expect(p.net.inbox(p.b)).toEqual([]);
    expect(p.a.drops['invalid-response']).toBe(1);
  });
});

describe('sessions over time', () => {
  it('keeps the responder keypair as "next" until the first transport message confirms it', () => {
    const p = makePair();
    const held: Datagram[] = [];
    p.net.filter = (d) => {
      if (d.to === EP_B && typeOf(d) === 4) {
        held.push(d);
        return false;
      }
      return true;
    };
    p.a.sendPacket(p.aToB());
    p.net.pump();
    let sb = p.b.inspectPeer(p.ka.pub)!;
    expect(sb.keypairs).toEqual({ previous: false, current: false, next: true });
    // B cannot send on an unconfirmed keypair: its packet is staged and it would initiate,
    // but it just responded, so it waits.
    p.b.sendPacket(p.bToA('early'));
    expect(p.b.inspectPeer(p.ka.pub)!.stagedPackets).toBe(1);
    p.net.filter = null;
    for (const d of held) p.net.queue.push(d);
    p.net.pump();
    sb = p.b.inspectPeer(p.ka.pub)!;
    expect(sb.keypairs).toEqual({ previous: false, current: true, next: false });
    expect(p.net.inbox(p.a).map(payloadText)).toEqual(['early']);
  });

  it('sends a keepalive KEEPALIVE_TIMEOUT after receiving data with nothing to send', () => {
    const p = makePair();
    p.a.sendPacket(p.aToB());
    p.net.pump();
    const toA: number[] = [];
    p.net.filter = (d) => {
      if (d.to === EP_A) toA.push(d.data.length);
      return true;
    };
    p.run(KEEPALIVE_TIMEOUT - 500);
    expect(toA).toEqual([]);
    p.run(1000);
    expect(toA).toEqual([32]);
    expect(p.a.stats.keepalivesIn).toBe(1);
    expect(p.net.inbox(p.a)).toEqual([]); // keepalives are not delivered to the TUN side
    p.run(30_000);
    expect(toA).toEqual([32]);
  });

  it('starts a new handshake when data sent gets no answer for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT', () => {
    const p = makePair();
    p.a.sendPacket(p.aToB());
    p.net.pump();
    // B's keepalive after KEEPALIVE_TIMEOUT answers A's first packet.
    p.run(KEEPALIVE_TIMEOUT + 1000);
    // B goes silent.
    const fromA: number[] = [];
    p.net.filter = (d) => {
      if (d.to === EP_B) fromA.push(typeOf(d));
      return d.to !== EP_A;
    };
    p.a.sendPacket(p.aToB('are you there'));
    p.run(KEEPALIVE_TIMEOUT + REKEY_TIMEOUT - 500, 100);
    expect(fromA).toEqual([4]);
    p.run(1000, 100);
    expect(fromA).toEqual([4, 1]);
  });

  it('rekeys after REKEY_AFTER_TIME (initiator) and traffic continues', () => {
    const p = makePair();
    p.a.sendPacket(p.aToB('0'));
    p.net.pump();
    const types: number[] = [];
    p.net.filter = (d) => {
      types.push(typeOf(d));
      return true;
    };
    // Traffic every 10 s in both directions, for a bit over REKEY_AFTER_TIME.
    for (let t = 0; t < REKEY_AFTER_TIME + 20_000; t += 10_000) {
      p.run(10_000, 500);
      p.a.sendPacket(p.aToB(`a${t}`));
      p.b.sendPacket(p.bToA(`b${t}`));
      p.net.pump();
    }
    expect(types.filter((t) => t === 1).length).toBe(1);
    expect(types.filter((t) => t === 2).length).toBe(1);
    const sa = p.a.inspectPeer(p.kb.pub)!;
    expect(sa.keypairs.previous).toBe(true);
    expect(sa.keypairs.current).toBe(true);
    expect(p.net.inbox(p.b).length).toBe(1 + Math.ceil((REKEY_AFTER_TIME + 20_000) / 10_000));
    expect(p.net.inbox(p.a).length).toBe(Math.ceil((REKEY_AFTER_TIME + 20_000) / 10_000));
    expect(p.a.drops['replayed-counter'] + p.b.drops['replayed-counter']).toBe(0);
  });

  it('never sends on a keypair older than REJECT_AFTER_TIME', () => {
    const p = makePair();
    p.a.sendPacket(p.aToB());
    p.net.pump();
    // The network dies; A keeps its session but cannot rekey.
    const sent: Datagram[] = [];
    p.net.filter = (d) => {
      sent.push(d);
      return false;
    };
    p.run(REJECT_AFTER_TIME - 1000, 1000);
    sent.length = 0;
    p.a.sendPacket(p.aToB('old key still valid'));
    p.net.pump();
    // (A also tries to rekey: its session is older than REKEY_AFTER_TIME.)
    expect(sent.map(typeOf)).toEqual([4, 1]);
    const late = sent[0]!;
    p.run(2000, 1000);
    sent.length = 0;
    p.a.sendPacket(p.aToB('too late'));
    p.net.pump();
    expect(sent.map(typeOf).filter((t) => t === 4)).toEqual([]);
    expect(p.a.inspectPeer(p.kb.pub)!.stagedPackets).toBe(1);
    // And B does not accept transport messages on its expired keypair either.
    p.b.receiveDatagram(late.data, late.from);
    expect(p.b.drops['expired-keypair']).toBe(1);
    expect(p.net.inbox(p.b).length).toBe(1);
  });

  it('zeroes all keys after 3 * REJECT_AFTER_TIME without a new session', () => {
    const p = makePair();
    p.a.sendPacket(p.aToB());
    p.net.pump();
    p.net.filter = () => false;
    p.run(3 * REJECT_AFTER_TIME - 5000, 5000);
    expect(p.a.inspectPeer(p.kb.pub)!.keypairs.current).toBe(true);
    p.run(10_000, 1000);
    for (const [d, k] of [
      [p.a, p.kb.pub],
      [p.b, p.ka.pub],
    ] as const) {
      const s = d.inspectPeer(k)!;
      expect(s.keypairs).toEqual({ previous: false, current: false, next: false });
      expect(s.handshake).toBe('zeroed');
    }
  });

  it('retransmits the initiation every REKEY_TIMEOUT(+jitter) and gives up after REKEY_ATTEMPT_TIME', () => {
    const p = makePair();
    const times: number[] = [];
    p.net.filter = (d) => {
      if (typeOf(d) === 1) times.push(p.clock.now());
      return false;
    };
    p.a.sendPacket(p.aToB());
    p.run(REKEY_ATTEMPT_TIME + 30_000, 50);
    expect(times.length).toBe(MAX_TIMER_HANDSHAKES + 2);
    for (let i = 1; i < times.length; i++) {
      const gap = times[i]! - times[i - 1]!;
      expect(gap).toBeGreaterThanOrEqual(REKEY_TIMEOUT);
      expect(gap).toBeLessThanOrEqual(REKEY_TIMEOUT + 333 + 50);
    }
    expect(p.a.drops['handshake-gave-up']).toBe(1);
    expect(p.a.inspectPeer(p.kb.pub)!.stagedPackets).toBe(0);
    p.run(60_000, 1000);
    expect(times.length).toBe(MAX_TIMER_HANDSHAKES + 2);
    // New traffic starts a new attempt.
    p.a.sendPacket(p.aToB());
    p.net.pump();
    expect(times.length).toBe(MAX_TIMER_HANDSHAKES + 3);
  });

  it('sends persistent keepalives, starting with a handshake as soon as it is enabled', () => {
    const p = makePair();
    const types: Array<[number, number]> = [];
    p.net.filter = (d) => {
      if (d.to === EP_B) types.push([typeOf(d), d.data.length]);
      return true;
    };
    p.a.apply({ peers: [{ publicKey: p.kb.pub, persistentKeepalive: 25, allowedIps: [] }] });
    p.net.pump();
    expect(types).toEqual([
      [1, 148],
      [4, 32],
    ]);
    types.length = 0;
    p.run(25_000 * 4 + 100, 100);
    expect(types.filter(([t, n]) => t === 4 && n === 32).length).toBe(4);
    // Turning it off stops them.
    p.a.apply({ peers: [{ publicKey: p.kb.pub, persistentKeepalive: 0, allowedIps: [] }] });
    types.length = 0;
    p.run(60_000, 500);
    expect(types.filter(([t]) => t === 4).length).toBe(0);
  });

  it('answers on the endpoint of the latest authenticated packet (roaming; one side without endpoint)', () => {
    const p = makePair({ bKnowsA: false });
    p.a.sendPacket(p.aToB('hi'));
    p.net.pump();
    expect(p.b.status().peers[0]!.endpoint).toEqual(EP_A);
    const moved = { address: '203.0.113.9', port: 40000, family: 4 as const };
    p.net.move(p.a, moved);
    p.a.sendPacket(p.aToB('from elsewhere'));
    p.net.pump();
    expect(p.b.status().peers[0]!.endpoint).toEqual(moved);
    p.b.sendPacket(p.bToA('back'));
    p.net.pump();
    expect(p.net.inbox(p.a).map(payloadText)).toEqual(['back']);
    // An unauthenticated datagram from a third address does not move the endpoint.
    const spoof = { address: '203.0.113.66', port: 1, family: 4 as const };
    p.b.receiveDatagram(new Uint8Array(148).fill(1, 0, 1), spoof);
    const bogus = new Uint8Array(64);
    bogus[0] = 4;
    p.b.receiveDatagram(bogus, spoof);
    expect(p.b.status().peers[0]!.endpoint).toEqual(moved);
    // A different local address (sticky source) is a different endpoint too.
    const sticky = { ...moved, localAddress: '198.51.100.2' };
    p.net.move(p.a, sticky);
    p.a.sendPacket(p.aToB('sticky'));
    p.net.pump();
    expect(p.b.status().peers[0]!.endpoint).toEqual(sticky);
  });

  it('rejects replayed transport messages', () => {
    const p = makePair();
    const captured: Datagram[] = [];
    p.net.filter = (d) => {
      if (typeOf(d) === 4 && d.to === EP_B) captured.push(d);
      return true;
    };
    p.a.sendPacket(p.aToB('once'));
    p.a.sendPacket(p.aToB('twice'));
    p.net.pump();
    expect(p.net.inbox(p.b).length).toBe(2);
    for (const d of captured) p.b.receiveDatagram(d.data, d.from);
    expect(p.net.inbox(p.b).length).toBe(2);
    expect(p.b.drops['replayed-counter']).toBe(2);
  });

  it('enforces allowed IPs both ways', () => {
    const p = makePair();
    p.a.sendPacket(p.aToB());
    p.net.pump();
    p.a.sendPacket(ipv4Packet('10.0.0.1', '10.9.9.9', new Uint8Array(8)));
    expect(p.a.drops['no-route']).toBe(1);
    p.a.sendPacket(new Uint8Array([0x60, 0, 0]));
    expect(p.a.drops['invalid-outbound-packet']).toBe(1);
    // A's peer B routes 10.0.0.0/8 for this test, but B only allows 10.0.0.1 from A.
    p.a.apply({ peers: [{ publicKey: p.kb.pub, allowedIps: [{ family: 4, bytes: new Uint8Array([10, 0, 0, 0]), prefix: 8 }] }] });
    p.a.sendPacket(ipv4Packet('10.0.0.50', '10.0.0.2', new Uint8Array(8)));
    p.net.pump();
    expect(p.b.drops['disallowed-source']).toBe(1);
    expect(p.net.inbox(p.b).length).toBe(1);
  });
});
