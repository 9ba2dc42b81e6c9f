/**
 * Routing loops: a packet from the TUN side that is one of the device's own datagrams coming
 * back (or a fragment of one, or one that went through another device of the process and
 * leads back) is dropped as 'routing-loop'; nested WireGuard using the same port is not.
 */
import { describe, expect, it } from 'vitest';
import { deterministicRng } from '../../crypto/random.js';
import type { Device } from '../../noise/device.js';
import { OwnDatagrams } from '../../noise/loopguard.js';
import type { Datagram } from '../../noise/memnet.js';
import { ipv4Packet, ipv6Packet } from '../../noise/packets.js';
import { EP_A, makePair, type Pair, payloadText } from '../helpers/device.js';

const PORT = EP_A.port;

function udp(sport: number, dport: number, payload: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + payload.length);
  u[0] = sport >>> 8;
  u[1] = sport & 0xff;
  u[2] = dport >>> 8;
  u[3] = dport & 0xff;
  u[4] = u.length >>> 8;
  u[5] = u.length & 0xff;
  u.set(payload, 8);
  return u;
}

/** Our datagram as the TUN would give it back: to an address routed to the peer (10.0.0.2). */
const looped = (d: Uint8Array, sport = PORT) => ipv4Packet('10.0.0.1', '10.0.0.2', udp(sport, 51821, d));

/** A session A-B, A bound to PORT; returns a transport datagram A sent to B. */
function established(o: Parameters<typeof makePair>[0] = {}): { p: Pair; sent: Datagram[] } {
  const p = makePair(o);
  p.a.setBoundPort(PORT);
  const sent: Datagram[] = [];
  p.net.filter = (d) => {
    if (d.from === EP_A) sent.push(d);
    return true;
  };
  p.a.sendPacket(p.aToB('hello'));
  p.net.pump();
  expect(p.net.inbox(p.b).map(payloadText)).toEqual(['hello']);
  return { p, sent };
}

const transportOf = (sent: Datagram[]) => sent.filter((d) => d.data[0] === 4).at(-1)!.data;
const outCount = (d: Device) => d.stats.datagramsOut;

describe('routing loops', () => {
  it('drops its own transport message coming back from the TUN, counted, without sending anything', () => {
    const { p, sent } = established();
    const mine = transportOf(sent);
    const before = outCount(p.a);
    p.a.sendPacket(looped(mine));
    expect(p.a.drops['routing-loop']).toBe(1);
    expect(outCount(p.a)).toBe(before);
    // The same bytes from another port are a packet like any other (someone's UDP).
    p.a.sendPacket(looped(mine, PORT + 1));
    expect(p.a.drops['routing-loop']).toBe(1);
    expect(outCount(p.a)).toBe(before + 1);
  });

  it('drops its own handshake initiation coming back', () => {
    const p = makePair();
    p.a.setBoundPort(PORT);
    const inits: Uint8Array[] = [];
    p.net.filter = (d) => {
      if (d.data[0] === 1) inits.push(d.data);
      return false; // nothing arrives: the handshake stays pending
    };
    p.a.sendPacket(p.aToB('x'));
    p.net.pump();
    expect(inits.length).toBe(1);
    p.a.sendPacket(looped(inits[0]!));
    expect(p.a.drops['routing-loop']).toBe(1);
    expect(p.a.inspectPeer(p.kb.pub)!.stagedPackets).toBe(1); // only the first packet waits
  });

  it('drops every fragment of its own datagram, and only those', () => {
    const { p, sent } = established();
    const mine = transportOf(sent);
    const body = udp(PORT, 51821, mine);
    const first = ipv4Packet('10.0.0.1', '10.0.0.2', body.subarray(0, 24), 17, 777);
    first[6] = 0x20; // MF
    const rest = ipv4Packet('10.0.0.1', '10.0.0.2', body.subarray(24), 17, 777);
    rest[6] = 0;
    rest[7] = 3; // offset 24 bytes
    const other = ipv4Packet('10.0.0.1', '10.0.0.2', body.subarray(24), 17, 778);
    other[7] = 3;
    p.a.sendPacket(first);
    p.a.sendPacket(rest);
    expect(p.a.drops['routing-loop']).toBe(2);
    const before = outCount(p.a);
    p.a.sendPacket(other);
    expect(p.a.drops['routing-loop']).toBe(2);
    expect(outCount(p.a)).toBe(before + 1);
  });

  it('drops its own datagram over IPv6, also behind a fragment header', () => {
    const { p, sent } = established();
    const mine = transportOf(sent);
    p.a.sendPacket(ipv6Packet('fd00::1', 'fd00::2', udp(PORT, 51821, mine)));
    expect(p.a.drops['routing-loop']).toBe(1);
    // Fragment header: next header UDP, reserved, offset (in 8-byte units) << 3 | M, identification.
    const frag = (offsetUnits: number, more: boolean) => [17, 0, (offsetUnits << 3) >> 8, ((offsetUnits << 3) & 0xff) | (more ? 1 : 0), 0, 0, 0x12, 0x34];
    const body = udp(PORT, 51821, mine);
    const first = ipv6Packet('fd00::1', 'fd00::2', Uint8Array.from([...frag(0, true), ...body.subarray(0, 32)]), 44);
    const rest = ipv6Packet('fd00::1', 'fd00::2', Uint8Array.from([...frag(4, false), ...body.subarray(32)]), 44);
    p.a.sendPacket(first);
    p.a.sendPacket(rest);
    expect(p.a.drops['routing-loop']).toBe(3);
  });

  it('passes nested WireGuard on the same port: messages it did not make, or counters it has not used', () => {
    const { p, sent } = established();
    const other = established({ a: { rng: deterministicRng(77) }, b: { rng: deterministicRng(78) } });
    const theirs = transportOf(other.sent); // another session's message, from "port PORT" too
    const before = outCount(p.a);
    p.a.sendPacket(looped(theirs));
    const mine = transportOf(sent).slice();
    mine[8] = 0xff; // a counter this session has not reached
    p.a.sendPacket(looped(mine));
    expect(p.a.drops['routing-loop']).toBe(0);
    expect(outCount(p.a)).toBe(before + 2);
    // B received both, inner packets intact (they are UDP to 10.0.0.2).
    p.net.pump();
    expect(p.net.inbox(p.b).length).toBe(3);
  });

  it('finds a loop through two devices of one process, and lets one-way nesting through', () => {
    const registry = new OwnDatagrams();
    const one = established({ a: { ownDatagrams: registry } });
    const two = established({ a: { ownDatagrams: registry, rng: deterministicRng(77) }, b: { rng: deterministicRng(78) } });
    one.p.a.setBoundPort(5001);
    two.p.a.setBoundPort(5002);
    // Device one's datagram goes into device two (nesting: two carries it, as any packet).
    two.sent.length = 0;
    two.p.a.sendPacket(looped(transportOf(one.sent), 5001));
    two.p.net.pump();
    expect(two.p.a.drops['routing-loop']).toBe(0);
    const carrier = transportOf(two.sent);
    // Two's datagram, carrying one's, comes into device one: the loop is closed there.
    one.p.a.sendPacket(looped(carrier, 5002));
    expect(one.p.a.drops['routing-loop']).toBe(1);
    // A datagram of two that carries something else is nesting, not a loop.
    two.sent.length = 0;
    two.p.a.sendPacket(two.p.aToB('plain'));
    two.p.net.pump();
    const before = outCount(one.p.a);
    one.p.a.sendPacket(looped(transportOf(two.sent), 5002));
    expect(one.p.a.drops['routing-loop']).toBe(1);
    expect(outCount(one.p.a)).toBe(before + 1);
  });

  it('forgets its port when it closes', () => {
    const registry = new OwnDatagrams();
    const { p } = established({ a: { ownDatagrams: registry } });
    expect(registry.partiesOn(PORT)?.length).toBe(1);
    p.a.close();
    expect(registry.partiesOn(PORT)).toBeUndefined();
    expect(registry.size).toBe(0);
  });
});
