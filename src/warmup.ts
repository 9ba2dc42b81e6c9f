/**
 * JIT warm-up. A fresh Node process runs the engine's code interpreted at first, so the first
 * handshake and the first packets through a new daemon cost tens of milliseconds each, and code
 * that stays in V8's baseline tier costs several times more per packet than optimized code,
 * most of all when it runs cold (a ping every 50 ms). Right after start-up the daemon runs
 * throw-away Devices in memory through handshakes and packets so that V8 optimizes the data
 * path before real traffic arrives. Throw-away random keys; nothing leaves the process.
 *
 * What makes optimized code survive the first real packet (measured with --trace-deopt):
 * - Every branch real traffic takes has run: IPv4 and IPv6 inside, packets with no route
 *   (the kernel's IPv6 router and multicast-listener packets when a link comes up), endpoints
 *   of the shapes the UDP layer makes (`endpointOf`).
 * - The Device's sink call sites have seen closures from two different places, so V8 compiles
 *   them as generic calls: the daemon's own sinks are then no surprise to the optimized code.
 * - The work runs in slices with pauses between them, so that the concurrent compiler can
 *   finish and install what it was asked for (one long synchronous run leaves most of it
 *   queued), and so that the event loop keeps serving the UAPI meanwhile.
 * - Last, two real Daemons (src/daemon.ts, the very class and closures the daemon runs) carry
 *   packets end to end: each over one end of a SOCK_SEQPACKET pair standing in for its TUN
 *   (`Tun.packetPair`), over UDP sockets bound to 127.0.0.1 and ::1 only. Without this the
 *   daemon's glue, the TUN and the UDP layers run baseline code for their first thousands of
 *   packets: measured, pings 50 ms apart cost ~0.75 ms instead of ~0.57.
 */
import { Device, type DeviceSinks } from './device.js';
import { Daemon } from './daemon.js';
import { Tun } from '../tun/tun.js';
import { parseCidr } from './allowedips.js';
import { createLogger } from './log.js';
import { endpointOf, type Endpoint } from './types.js';
import { generatePrivateKey, publicKey } from '../crypto/x25519.js';

/** An IPv4/UDP packet of `size` bytes from 10.255.0.`src` to 10.255.0.`dst`. */
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

/** An IPv6/UDP packet of `size` bytes from fd00::`src` to fd00::`dst` (ff02::16 if dst is 0). */
function ipv6Packet(size: number, src: number, dst: number): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0x60;
  p[4] = (size - 40) >> 8;
  p[5] = (size - 40) & 0xff;
  p[6] = 17;
  p[7] = 64;
  p[8] = 0xfd;
  p[23] = src;
  if (dst === 0) {
    p[24] = 0xff;
    p[25] = 0x02;
    p[39] = 0x16;
  } else {
    p[24] = 0xfd;
    p[39] = dst;
  }
  return p;
}

export interface WarmUpOptions {
  /** Packets each way between two real Daemons over packet pairs and loopback UDP (default 300; 0: none). */
  udpRounds?: number;
  /** Packets each way through the last pair (default 1500). */
  rounds?: number;
  /** Pairs of Devices taken through a handshake (default 8). */
  handshakes?: number;
  /** Rounds per slice (default 100); 0 runs everything at once, synchronously. */
  slice?: number;
  /** Pause between slices in ms (default 2). */
  pauseMs?: number;
}

type Pending = Array<[number, Uint8Array]>;
type Counter = { delivered: number };

// Two different places that make sinks (see the header): do not merge them.
function sinksA(to: number, pending: Pending, count: Counter): DeviceSinks {
  return {
    sendDatagram: (data) => {
      pending.push([to, data.slice()]);
    },
    writePacket: () => {
      count.delivered++;
    },
  };
}

function sinksB(to: number, pending: Pending, count: Counter): DeviceSinks {
  return {
    sendDatagram: (data) => {
      pending.push([to, data.slice()]);
    },
    writePacket: (packet) => {
      if (packet.length > 0) count.delivered++;
    },
  };
}

class Pair {
  readonly count: Counter = { delivered: 0 };
  private readonly pending: Pending = [];
  private readonly devices: [Device, Device];
  private readonly eps: [Endpoint, Endpoint];
  private readonly packets: Array<readonly [Uint8Array, Uint8Array]>;
  private readonly noRoute = [ipv4Packet(84, 1, 99), ipv6Packet(76, 1, 0)];

  constructor(v6Outer: boolean) {
    const keys = [generatePrivateKey(), generatePrivateKey()] as const;
    this.eps = v6Outer
      ? [endpointOf('::1', 1, 6, '::1', 1), endpointOf('::1', 2, 6, '::1', 1)]
      : [endpointOf('127.0.0.1', 1, 4, '127.0.0.1', 1), endpointOf('127.0.0.1', 2, 4, '127.0.0.1', 1)];
    const logger = createLogger('silent', '');
    this.devices = [
      new Device({ logger, sinks: sinksA(1, this.pending, this.count) }),
      new Device({ logger, sinks: sinksB(0, this.pending, this.count) }),
    ];
    this.devices.forEach((d, i) =>
      d.apply({
        privateKey: keys[i],
        peers: [
          {
            publicKey: publicKey(keys[1 - i]!),
            endpoint: this.eps[1 - i]!,
            allowedIps: [parseCidr(`10.255.0.${2 - i}/32`), parseCidr(`fd00::${2 - i}/128`)],
          },
        ],
      }),
    );
    this.packets = [64, 576, 1420].flatMap((n) => [
      [ipv4Packet(n, 1, 2), ipv4Packet(n, 2, 1)] as const,
      [ipv6Packet(n, 1, 2), ipv6Packet(n, 2, 1)] as const,
    ]);
  }

  private drain(): void {
    for (let item = this.pending.shift(); item; item = this.pending.shift()) {
      const d = this.devices[item[0]]!;
      d.receiveDatagram(item[1], this.eps[1 - item[0]]!);
      d.tick();
    }
  }

  /** Round r: one packet each way (the first ones wait for the handshake), and a no-route one. */
  round(r: number): void {
    const [ab, ba] = this.packets[r % this.packets.length]!;
    const [a, b] = this.devices;
    a.sendPacket(ab);
    a.tick();
    this.drain();
    b.sendPacket(ba);
    b.tick();
    this.drain();
    if (r % 16 === 0) a.sendPacket(this.noRoute[(r >> 4) & 1]!);
  }

  close(): void {
    for (const d of this.devices) d.close();
  }
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Take `handshakes` fresh pairs of in-memory Devices through a handshake (and two packets), and
 * the last pair through `rounds` packets each way, of a few sizes, both IP families inside and
 * outside. Resolves with how many packets were delivered, decrypted, to the other side.
 */
export async function warmUp(opts: WarmUpOptions = {}): Promise<number> {
  const rounds = opts.rounds ?? 1500;
  const handshakes = Math.max(1, opts.handshakes ?? 8);
  const slice = opts.slice ?? 100;
  const pauseMs = opts.pauseMs ?? 2;
  let delivered = 0;
  let sinceYield = 0;
  const step = async (n: number): Promise<void> => {
    sinceYield += n;
    if (slice > 0 && sinceYield >= slice) {
      sinceYield = 0;
      await pause(pauseMs);
    }
  };
  for (let i = 1; i < handshakes; i++) {
    const p = new Pair(i % 2 === 0);
    p.round(0);
    p.round(1);
    p.close();
    delivered += p.count.delivered;
    await step(10);
  }
  const p = new Pair(false);
  try {
    for (let r = 0; r < rounds; r++) {
      p.round(r);
      await step(1);
    }
  } finally {
    p.close();
  }
  delivered += p.count.delivered;
  const udpRounds = opts.udpRounds ?? 300;
  if (udpRounds > 0) delivered += await warmDaemons(udpRounds);
  return delivered;
}

/**
 * `rounds` packets each way between two real Daemons (the class the daemon runs), each over one
 * end of a packet pair standing in for its TUN, talking over UDP sockets bound to loopback only:
 * half the rounds over IPv4, half over IPv6 (if ::1 exists). The other ends of the pairs play the
 * kernel. This compiles the daemon's own glue, the TUN and UDP layers with the very closures
 * real traffic will use. Resolves with the packets delivered; 0 if it cannot set up (no addon,
 * no loopback). Stops quietly if a packet is lost (loopback does not lose them).
 */
async function warmDaemons(rounds: number): Promise<number> {
  const logger = createLogger('silent', '');
  const tuns: Tun[] = [];
  const daemons: Daemon[] = [];
  let delivered = 0;
  let wake: (() => void) | null = null;
  try {
    const pairs = [Tun.packetPair(['warm0', 'host0']), Tun.packetPair(['warm1', 'host1'])];
    for (const [t, h] of pairs) tuns.push(t, h);
    const hosts = pairs.map(([, h]) => h);
    for (const [t] of pairs) daemons.push(Daemon.overTun(t, { logger, udpLoopback: true }));
    const keys = [generatePrivateKey(), generatePrivateKey()] as const;
    const configure = (v6: boolean): boolean =>
      daemons.every(
        (d, i) =>
          d.configure({
            peers: [
              {
                publicKey: publicKey(keys[1 - i]!),
                endpoint: endpointOf(v6 ? '::1' : '127.0.0.1', daemons[1 - i]!.port, v6 ? 6 : 4),
                allowedIps: [parseCidr(`10.255.0.${2 - i}/32`), parseCidr(`fd00::${2 - i}/128`)],
              },
            ],
          }) === 0,
      );
    // Ports first (the peers' endpoints need them), then the peers.
    if (!daemons.every((d, i) => d.configure({ privateKey: keys[i], listenPort: 0, peers: [] }) === 0) || !configure(false)) return 0;
    const arrived = () => {
      delivered++;
      const w = wake;
      wake = null;
      if (w) w();
    };
    hosts[0]!.start(arrived, () => {});
    hosts[1]!.start(arrived, () => {});
    const packets = [64, 1420].flatMap((n) => [
      [ipv4Packet(n, 1, 2), ipv4Packet(n, 2, 1)] as const,
      [ipv6Packet(n, 1, 2), ipv6Packet(n, 2, 1)] as const,
    ]);
    /** Write a packet into host side i ("the kernel") and wait until it comes out on the other. */
    const carry = (i: number, pkt: Uint8Array): Promise<boolean> => {
      const got = new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 500);
        wake = () => {
          clearTimeout(t);
          resolve(true);
        };
      });
      hosts[i]!.write(pkt);
      return got;
    };
    for (let r = 0; r < rounds; r++) {
      if (r === rounds >> 1 && !configure(true)) break;
      const [ab, ba] = packets[r % packets.length]!;
      if (!(await carry(0, ab)) || !(await carry(1, ba))) break;
    }
  } catch {
    // No addon, no loopback, no socket: the warm-up simply does less.
  } finally {
    wake = null;
    for (const d of daemons) d.close('warm-up done');
    for (const t of tuns) t.close();
  }
  return delivered;
}
