/** Shared setup for the device tests: two Devices on a MemoryNetwork with a fake clock. */
import { deterministicRng } from '../../crypto/random.js';
import { parseCidr } from '../../noise/allowedips.js';
import type { Device, DeviceOptions } from '../../noise/device.js';
import { FakeClock, MemoryNetwork } from '../../noise/memnet.js';
import type { Endpoint } from '../../noise/types.js';
import { keypair, type KeyPair } from './keys.js';

export const EP_A: Endpoint = { address: '192.0.2.1', port: 51820, family: 4 };
export const EP_B: Endpoint = { address: '198.51.100.2', port: 51821, family: 4 };

/** IPv4 header checksum / ICMP checksum (RFC 1071). */
export function checksum(b: Uint8Array, start = 0, end = b.length): number {
  let s = 0;
  for (let i = start; i < end; i += 2) s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function ip4(s: string): number[] {
  return s.split('.').map(Number);
}

/** An IPv4 packet (protocol `proto`, default UDP-ish 17) with a valid header checksum. */
export function ipv4Packet(src: string, dst: string, payload: Uint8Array, proto = 17, id = 1): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  p[2] = p.length >>> 8;
  p[3] = p.length & 0xff;
  p[4] = id >>> 8;
  p[5] = id & 0xff;
  p[8] = 64;
  p[9] = proto;
  p.set(ip4(src), 12);
  p.set(ip4(dst), 16);
  const c = checksum(p, 0, 20);
  p[10] = c >>> 8;
  p[11] = c & 0xff;
  p.set(payload, 20);
  return p;
}

/** An ICMP echo request inside IPv4. */
export function icmpEcho(src: string, dst: string, ident: number, seq: number, data: Uint8Array): Uint8Array {
  const icmp = new Uint8Array(8 + data.length);
  icmp[0] = 8;
  icmp[4] = ident >>> 8;
  icmp[5] = ident & 0xff;
  icmp[6] = seq >>> 8;
  icmp[7] = seq & 0xff;
  icmp.set(data, 8);
  const c = checksum(icmp);
  icmp[2] = c >>> 8;
  icmp[3] = c & 0xff;
  return ipv4Packet(src, dst, icmp, 1, seq);
}

export interface PairOptions {
  psk?: Uint8Array;
  /** Whether each side knows the other's endpoint (default both). */
  aKnowsB?: boolean;
  bKnowsA?: boolean;
  a?: Partial<Omit<DeviceOptions, 'sinks'>>;
  b?: Partial<Omit<DeviceOptions, 'sinks'>>;
  keepaliveA?: number;
}

export interface Pair {
  net: MemoryNetwork;
  clock: FakeClock;
  a: Device;
  b: Device;
  ka: KeyPair;
  kb: KeyPair;
  /** Advance the clock by `ms` in steps, ticking both devices and pumping the network. */
  run(ms: number, step?: number): void;
  /** A packet from A's tunnel address 10.0.0.1 to B's 10.0.0.2 (or the reverse). */
  aToB(payload?: Uint8Array | string): Uint8Array;
  bToA(payload?: Uint8Array | string): Uint8Array;
}

export function makePair(o: PairOptions = {}): Pair {
  const clock = new FakeClock();
  const net = new MemoryNetwork();
  const ka = keypair(101);
  const kb = keypair(202);
  const a = net.attach(EP_A, { clock, rng: deterministicRng(1), ...o.a });
  const b = net.attach(EP_B, { clock, rng: deterministicRng(2), ...o.b });
  a.apply({
    privateKey: ka.priv,
    peers: [
      {
        publicKey: kb.pub,
        presharedKey: o.psk ?? null,
        ...(o.aKnowsB === false ? {} : { endpoint: EP_B }),
        ...(o.keepaliveA !== undefined ? { persistentKeepalive: o.keepaliveA } : {}),
        allowedIps: [parseCidr('10.0.0.2/32'), parseCidr('fd00::2/128')],
      },
    ],
  });
  b.apply({
    privateKey: kb.priv,
    peers: [
      {
        publicKey: ka.pub,
        presharedKey: o.psk ?? null,
        ...(o.bKnowsA === false ? {} : { endpoint: EP_A }),
        allowedIps: [parseCidr('10.0.0.1/32'), parseCidr('fd00::1/128')],
      },
    ],
  });
  const enc = new TextEncoder();
  const body = (p: Uint8Array | string | undefined) => (typeof p === 'string' ? enc.encode(p) : (p ?? enc.encode('hello')));
  return {
    net,
    clock,
    a,
    b,
    ka,
    kb,
    run(ms, step = 250) {
      for (let t = 0; t < ms; t += step) {
        clock.advance(Math.min(step, ms - t));
        a.tick();
        b.tick();
        net.pump();
      }
    },
    aToB: (p) => ipv4Packet('10.0.0.1', '10.0.0.2', body(p)),
    bToA: (p) => ipv4Packet('10.0.0.2', '10.0.0.1', body(p)),
  };
}

export const dec = new TextDecoder();
/** The payload (after a 20-byte IPv4 header) as text. */
export function payloadText(p: Uint8Array): string {
  return dec.decode(p.subarray(20));
}
