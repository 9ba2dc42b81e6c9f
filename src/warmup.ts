/**
 * JIT warm-up. A fresh Node process runs the engine's code interpreted at first, so the first
 * handshake and the first packets through a new daemon cost tens of milliseconds each. Running
 * two throw-away Devices through a handshake and a few hundred packets in memory right after
 * start-up has V8 compile the data path before real traffic arrives. Throw-away random keys;
 * nothing leaves the process.
 */
import { Device } from './device.js';
import { parseCidr } from './allowedips.js';
import { generatePrivateKey, publicKey } from '../crypto/x25519.js';
import type { Endpoint } from './types.js';

/** An IPv4/UDP packet of `size` bytes from `src` to `dst` (last octets of 10.255.0.0/24). */
function ipv4Packet(size: number, src: number, dst: number): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0x45;
  p[2] = size >> 8;
  p[3] = size & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set([10, 255, 0, src], 12);
  p.set([10, 255, 0, dst], 16);
  return p;
}

/**
 * Run `handshakes` fresh pairs of in-memory Devices through a handshake, and `rounds` packets
 * each way (of a few sizes) through the last pair. Returns how many packets were delivered,
 * decrypted, to the other side. The handshake code runs once per pair, so it takes a few pairs
 * before V8 optimizes it (measured: ~25, 10, then ~5 ms per handshake).
 */
export function warmUp(rounds = 400, handshakes = 5): number {
  let delivered = 0;
  for (let i = 1; i < handshakes; i++) delivered += warmPair(2);
  return delivered + warmPair(rounds);
}

function warmPair(rounds: number): number {
  let delivered = 0;
  const keys = [generatePrivateKey(), generatePrivateKey()] as const;
  const eps: Endpoint[] = [
    { address: '127.0.0.1', port: 1, family: 4 },
    { address: '127.0.0.1', port: 2, family: 4 },
  ];
  const pending: Array<[number, Uint8Array]> = [];
  const devices = [0, 1].map(
    (i) =>
      new Device({
        sinks: {
          sendDatagram: (data) => {
            pending.push([1 - i, data.slice()]);
          },
          writePacket: () => {
            delivered++;
          },
        },
      }),
  );
  devices.forEach((d, i) =>
    d.apply({
      privateKey: keys[i],
      peers: [{ publicKey: publicKey(keys[1 - i]!), endpoint: eps[1 - i]!, allowedIps: [parseCidr(`10.255.0.${2 - i}/32`)] }],
    }),
  );
  const drain = () => {
    for (let item = pending.shift(); item; item = pending.shift()) devices[item[0]]!.receiveDatagram(item[1], eps[1 - item[0]]!);
  };
  const packets = [64, 576, 1420].map((n) => [ipv4Packet(n, 1, 2), ipv4Packet(n, 2, 1)] as const);
  for (let r = 0; r < rounds; r++) {
    const [ab, ba] = packets[r % packets.length]!;
    devices[0]!.sendPacket(ab);
    drain();
    devices[1]!.sendPacket(ba);
    drain();
  }
  for (const d of devices) d.close();
  return delivered;
}
