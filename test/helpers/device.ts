/** Shared setup for the device tests: two Devices on a MemoryNetwork with a fake clock. */
import { deterministicRng } from '../../crypto/random.js';
import type { Device, DeviceOptions } from '../../noise/device.js';
import { parseCidr } from '../../noise/iptext.js';
import { FakeClock, MemoryNetwork } from '../../noise/memnet.js';
import type { Endpoint } from '../../noise/types.js';
import { type KeyPair, keypair } from './keys.js';

export const EP_A: Endpoint = { address: '192.0.2.1', port: 51820, family: 4 };
export const EP_B: Endpoint = { address: '198.51.100.2', port: 51821, family: 4 };

import { ipv4Packet } from '../../noise/packets.js';

export { icmpEcho, ipChecksum as checksum, ipv4Packet } from '../../noise/packets.js';

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
