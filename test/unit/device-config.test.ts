import { describe, expect, it } from 'vitest';
import { deterministicRng } from '../../crypto/random.js';
import { MAX_STAGED_PACKETS } from '../../noise/constants.js';
import { Device, type DeviceSinks } from '../../noise/device.js';
import { formatCidr, parseCidr } from '../../noise/iptext.js';
import { FakeClock } from '../../noise/memnet.js';
import type { Endpoint } from '../../noise/types.js';
import { EP_A, EP_B, ipv4Packet, makePair, payloadText } from '../helpers/device.js';
import { keypair } from '../helpers/keys.js';

describe('device configuration', () => {
  it('reports its configuration; applies remove, update_only, replace_allowed_ips, replace_peers', () => {
    const p = makePair({ psk: new Uint8Array(32).fill(3) });
    const s = p.a.status();
    expect(s.privateKey).toEqual(p.ka.priv);
    expect(p.a.publicKey).toEqual(p.ka.pub);
    expect(s.peers.length).toBe(1);
    expect(s.peers[0]!.publicKey).toEqual(p.kb.pub);
    expect(s.peers[0]!.presharedKey).toEqual(new Uint8Array(32).fill(3));
    expect(s.peers[0]!.allowedIps.map(formatCidr)).toEqual(['10.0.0.2/32', 'fd00::2/128']);
    expect(s.peers[0]!.endpoint).toEqual(EP_B);
    expect(s.peers[0]!.lastHandshakeSec).toBe(0);

    const kc = keypair(303);
    p.a.apply({ peers: [{ publicKey: kc.pub, updateOnly: true, allowedIps: [] }] });
    expect(p.a.status().peers.length).toBe(1);
    p.a.apply({ listenPort: 4242, fwmark: 7, peers: [{ publicKey: kc.pub, allowedIps: [parseCidr('10.0.0.0/24')] }] });
    expect(p.a.status().listenPort).toBe(4242);
    expect(p.a.status().fwmark).toBe(7);
    expect(p.a.status().peers.length).toBe(2);
    // 10.0.0.2/32 is still B's (longest prefix), the rest of 10.0.0.0/24 goes to C (no endpoint).
    p.a.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.3', new Uint8Array(4)));
    expect(p.a.drops['no-endpoint']).toBe(1);
    p.a.apply({ peers: [{ publicKey: kc.pub, replaceAllowedIps: true, allowedIps: [parseCidr('10.1.0.0/16')] }] });
    expect(p.a.status().peers[1]!.allowedIps.map(formatCidr)).toEqual(['10.1.0.0/16']);
    p.a.apply({ peers: [{ publicKey: kc.pub, remove: true, allowedIps: [] }] });
    expect(p.a.status().peers.length).toBe(1);
    p.a.sendPacket(ipv4Packet('10.0.0.1', '10.1.2.3', new Uint8Array(4)));
    expect(p.a.drops['no-route']).toBe(1);
    p.a.apply({ replacePeers: true, peers: [] });
    expect(p.a.status().peers).toEqual([]);
    p.a.apply({ privateKey: null, peers: [] });
    expect(p.a.status().privateKey).toBeNull();
    expect(p.a.publicKey).toBeNull();
  });

  it("ignores a peer with the device's own key, and removes one when the key changes to it", () => {
    const p = makePair();
    p.a.apply({ peers: [{ publicKey: p.ka.pub, allowedIps: [parseCidr('10.9.0.0/16')] }] });
    expect(p.a.status().peers.length).toBe(1);
    p.a.apply({ privateKey: p.kb.priv, peers: [] });
    expect(p.a.status().peers.length).toBe(0);
  });

  it('renegotiates after a private key change', () => {
    const p = makePair();
    p.a.sendPacket(p.aToB('one'));
    p.net.pump();
    const kn = keypair(404);
    p.a.apply({ privateKey: kn.priv, peers: [] });
    p.b.apply({ replacePeers: true, peers: [{ publicKey: kn.pub, endpoint: EP_A, allowedIps: [parseCidr('10.0.0.1/32')] }] });
    p.a.sendPacket(p.aToB('two'));
    p.net.pump();
    expect(p.net.inbox(p.b).map(payloadText)).toEqual(['one', 'two']);
    expect(p.a.status().peers[0]!.txBytes).toBeGreaterThan(148 * 2);
  });

  it('drops handshakes without a private key, and everything after close()', () => {
    const p = makePair();
    p.b.apply({ privateKey: null, peers: [] });
    p.a.sendPacket(p.aToB());
    p.net.pump();
    expect(p.b.drops['no-private-key']).toBe(1);
    p.a.close();
    p.a.close();
    p.a.sendPacket(p.aToB());
    p.a.receiveDatagram(new Uint8Array(32), EP_B);
    expect(p.a.drops.closed).toBe(2);
    expect(p.a.status().peers).toEqual([]);
    expect(p.a.tick()).toBe(Infinity);
  });

  it('bounds the queue of packets waiting for a handshake, dropping the oldest', () => {
    const p = makePair();
    p.net.filter = () => false;
    for (let i = 0; i < MAX_STAGED_PACKETS + 3; i++) p.a.sendPacket(p.aToB(`${i}`));
    expect(p.a.inspectPeer(p.kb.pub)!.stagedPackets).toBe(MAX_STAGED_PACKETS);
    expect(p.a.drops['staged-overflow']).toBe(3);
    p.net.filter = null;
    p.net.queue.length = 0;
    p.run(6000, 100);
    const got = p.net.inbox(p.b).map(payloadText);
    expect(got.length).toBe(MAX_STAGED_PACKETS);
    expect(got[0]).toBe('3');
  });

  it('carries IPv6, trims inner packets to their IP length, and drops malformed ones', () => {
    const p = makePair();
    const v6 = new Uint8Array(40 + 8);
    v6[0] = 0x60;
    v6[5] = 8; // payload length
    v6[6] = 17;
    v6[7] = 64;
    v6.set(parseCidr('fd00::1/128').bytes, 8);
    v6.set(parseCidr('fd00::2/128').bytes, 24);
    p.a.sendPacket(v6);
    p.net.pump();
    expect(p.net.inbox(p.b)).toEqual([v6]);
    const padded = new Uint8Array(60);
    padded.set(p.aToB('trim me'));
    p.a.sendPacket(padded);
    p.net.pump();
    expect(p.net.inbox(p.b)[1]!.length).toBe(27);
    const lying = p.aToB('x');
    lying[3] = 200; // total length beyond the packet
    p.a.sendPacket(lying);
    const badIhl = p.aToB('y');
    badIhl[0] = 0x44;
    p.a.sendPacket(badIhl);
    p.net.pump();
    expect(p.b.drops['invalid-inner-packet']).toBe(2);
    expect(p.net.inbox(p.b).length).toBe(2);
  });

  /** A pair with a session and an MTU of 1420 on a, and the sizes of a's datagrams from now on. */
  function paddingPair(): { p: ReturnType<typeof makePair>; sizes: number[] } {
    const p = makePair({ a: { mtu: 1420 } });
    const sizes: number[] = [];
    p.a.sendPacket(p.aToB());
    p.net.pump();
    p.net.filter = (d) => {
      sizes.push(d.data.length);
      return true;
    };
    return { p, sizes };
  }

  it('clamps padding to the MTU', () => {
    const { p, sizes } = paddingPair();
    p.a.sendPacket(p.aToB(new Uint8Array(1400))); // 1420 bytes: 1424 would exceed the MTU
    p.a.sendPacket(p.aToB(new Uint8Array(1398))); // 1418 → 1420
    p.a.sendPacket(p.aToB(new Uint8Array(1380))); // 1400 → 1408
    p.net.pump();
    expect(sizes).toEqual([1452, 1452, 1440]);
    expect(p.net.inbox(p.b).map((x) => x.length)).toEqual([25, 1420, 1418, 1400]);
  });

  it('follows MTU changes (setMtu) in its padding, as the kernel pads to the current MTU', () => {
    const { p, sizes } = paddingPair();
    p.a.sendPacket(p.aToB(new Uint8Array(1478))); // 1498 bytes: above the MTU, no padding
    p.a.setMtu(9000);
    p.a.sendPacket(p.aToB(new Uint8Array(1478))); // now padded to 1504
    p.a.setMtu(1402);
    p.a.sendPacket(p.aToB(new Uint8Array(1380))); // 1400 → 1408 would exceed 1402: 1402
    p.net.pump();
    expect(sizes).toEqual([32 + 1498, 32 + 1504, 32 + 1402]);
    expect(p.net.inbox(p.b).map((x) => x.length)).toEqual([25, 1498, 1498, 1400]);
  });

  it('survives sinks that throw, and works with sinks wired directly (re-entrantly)', () => {
    const clock = new FakeClock();
    const ka = keypair(1);
    const kb = keypair(2);
    const got: string[] = [];
    let a!: Device;
    let b!: Device;
    const wire = (self: Endpoint, other: () => Device, name: string): DeviceSinks => ({
      sendDatagram: (data) => other().receiveDatagram(data, self),
      writePacket: (pkt) => {
        got.push(`${name}:${payloadText(pkt)}`);
        // Answer synchronously from inside the sink: re-entrant use of the devices.
        if (name === 'b' && payloadText(pkt) === 'ping') b.sendPacket(ipv4Packet('10.0.0.2', '10.0.0.1', new TextEncoder().encode('pong')));
        if (name === 'a' && payloadText(pkt) === 'pong') throw new Error('TUN is gone');
      },
    });
    a = new Device({ clock, rng: deterministicRng(5), sinks: wire(EP_A, () => b, 'a') });
    b = new Device({ clock, rng: deterministicRng(6), sinks: wire(EP_B, () => a, 'b') });
    a.apply({ privateKey: ka.priv, peers: [{ publicKey: kb.pub, endpoint: EP_B, allowedIps: [parseCidr('10.0.0.2/32')] }] });
    b.apply({ privateKey: kb.priv, peers: [{ publicKey: ka.pub, allowedIps: [parseCidr('10.0.0.1/32')] }] });
    a.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', new TextEncoder().encode('ping')));
    expect(got).toEqual(['b:ping', 'a:pong']);
    expect(a.drops['sink-error']).toBe(1);
  });
});
