/**
 * JIT warm-up: the one seam between V8's tiering and the data path. A fresh Node process runs
 * the engine's code interpreted at first; code that real traffic finds in V8's baseline tier,
 * or optimized and then thrown away, costs several times more per packet, and a function
 * compiled during real traffic costs a compile on the second core, which the peer needs too.
 * `warmUp` runs throw-away interfaces through handshakes and packets right after start-up, so
 * that V8 has optimized the data path before real traffic arrives. Throw-away random keys;
 * nothing leaves the process. The daemon calls it once (src/cli/wireguard-ts.ts, off with
 * WG_TS_WARMUP=0); nothing else in the data path knows about it.
 *
 * Invariants that keep the optimized code valid for real traffic (test/system/warmup-jit.test.ts
 * fails when one breaks; bench/tunnel.sh's ping shows the cost):
 * - Every branch real traffic takes has run: IPv4 and IPv6 inside and outside, packets with no
 *   route (a link coming up sends IPv6 router and multicast-listener packets), two packets in a
 *   row, endpoints made by `endpointOf` (the shapes the UDP layer makes).
 * - Handshakes are many (24 per throw-away pair, each after both sides removed and re-added
 *   their peer): the first real ping waits for one, and in V8's baseline tier it costs ~1.5×
 *   what it costs optimized. Each is followed by packets of every kind, as a pair's later rounds
 *   carry, so that the data path is not optimized on narrower feedback than real traffic gives.
 * - The Device's sink call sites have seen closures from two places (sinksA, sinksB), so V8
 *   compiles them as generic calls and the daemon's own sinks are no surprise.
 * - The work runs in slices with pauses, so the concurrent compiler finishes and installs what
 *   it was asked for, and the event loop keeps serving meanwhile.
 * - Last, two real DeviceHosts (the class and closures the daemon runs) carry packets end to end,
 *   each over a packet pair standing in for its TUN and UDP sockets bound to loopback only, for
 *   enough rounds that nothing on that path is left just short of V8's tier-up budget.
 * - One DeviceHost is closed before the traffic ones: what close() writes for the first time
 *   happens before the code that reads it is optimized (a field's first change invalidates
 *   code that assumed it constant).
 * - The objects of the last round are returned to the caller, who keeps them for the life of
 *   the process: optimized code refers to their hidden classes, which V8 holds only while some
 *   object has them. Were they collected before the daemon's own objects exist, the collection
 *   would throw the data path's optimized code away with them.
 * - It ends with one full garbage collection, so that the warm-up's garbage does not bring on
 *   a mark-compact pause in the middle of the first real traffic.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { CryptoSuite } from '../crypto/suite.js';
import { generatePrivateKey, publicKey } from '../crypto/x25519.js';
import { UNDER_LOAD_HANDSHAKES_PER_SECOND } from '../noise/constants.js';
import { Device, type DeviceSinks } from '../noise/device.js';
import { parseCidr } from '../noise/iptext.js';
import { ipv4Packet, ipv6Packet } from '../noise/packets.js';
import { type Endpoint, endpointOf, type Logger, type PeerChange } from '../noise/types.js';
import { selectSuite } from '../tun/openssl.js';
import { RouteMonitor } from '../tun/rtmon.js';
import { Tun } from '../tun/tun.js';
import { UdpBind, type UdpBindOptions } from '../tun/udp.js';
import { DeviceHost } from './device-host.js';
import { KeepWarm } from './keep-warm.js';
import { createLogger } from './log.js';

/** An IPv4/UDP packet of `size` bytes from 10.255.0.`src` to 10.255.0.`dst`. */
const v4 = (size: number, src: number, dst: number): Uint8Array => ipv4Packet(`10.255.0.${src}`, `10.255.0.${dst}`, size - 20);

/** An IPv6/UDP packet of `size` bytes from fd00::`src` to fd00::`dst` (ff02::16 if dst is 0). */
const v6 = (size: number, src: number, dst: number): Uint8Array => ipv6Packet(`fd00::${src}`, dst === 0 ? 'ff02::16' : `fd00::${dst}`, size - 40);

export interface WarmUpOptions {
  /** The crypto suite the daemon's Device uses: the warm-up must run the same code (default as Daemon's). */
  crypto?: CryptoSuite;
  /**
   * Packets each way between two real DeviceHosts over packet pairs and loopback UDP (default
   * 1000; 0: none): enough that no function on their path is left short of V8's tier-up budget.
   */
  udpRounds?: number;
  /** Packets each way through the last pair (default 1500). */
  rounds?: number;
  /** Pairs of Devices taken through handshakes (default 8). */
  handshakes?: number;
  /**
   * Handshakes per pair (default 24), each after both sides removed and re-added their peer,
   * as `wg set` does: a real handshake then runs optimized code. Fewer than half of
   * UNDER_LOAD_HANDSHAKES_PER_SECOND, so that no device of the warm-up goes under load.
   */
  handshakesPerPair?: number;
  /** Rounds per slice (default 100); 0 runs everything at once, synchronously. */
  slice?: number;
  /** Pause between slices in ms (default 2). */
  pauseMs?: number;
  /** End with a full garbage collection (default true); see `collectGarbage`. */
  collect?: boolean;
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
  private readonly noRoute = [v4(84, 1, 99), v6(76, 1, 0)];
  private readonly peers: [PeerChange, PeerChange];

  constructor(v6Outer: boolean, crypto: CryptoSuite) {
    const keys = [generatePrivateKey(), generatePrivateKey()] as const;
    this.eps = v6Outer
      ? [endpointOf('::1', 1, 6, '::1', 1), endpointOf('::1', 2, 6, '::1', 1)]
      : [endpointOf('127.0.0.1', 1, 4, '127.0.0.1', 1), endpointOf('127.0.0.1', 2, 4, '127.0.0.1', 1)];
    const logger = createLogger('silent', '');
    this.devices = [
      new Device({ logger, crypto, sinks: sinksA(1, this.pending, this.count) }),
      new Device({ logger, crypto, sinks: sinksB(0, this.pending, this.count) }),
    ];
    const peer = (i: number): PeerChange => ({
      publicKey: publicKey(keys[1 - i]!),
      endpoint: this.eps[1 - i]!,
      allowedIps: [parseCidr(`10.255.0.${2 - i}/32`), parseCidr(`fd00::${2 - i}/128`)],
    });
    this.peers = [peer(0), peer(1)];
    for (const [i, d] of this.devices.entries()) d.apply({ privateKey: keys[i], peers: [this.peers[i]!] });
    this.packets = [64, 576, 1420].flatMap((n) => [[v4(n, 1, 2), v4(n, 2, 1)] as const, [v6(n, 1, 2), v6(n, 2, 1)] as const]);
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
    // Now and then two in a row, so that b also receives data while a keepalive is already due.
    if (r % 8 === 4) a.sendPacket(ab);
    this.drain();
    b.sendPacket(ba);
    b.tick();
    this.drain();
    if (r % 16 === 0) a.sendPacket(this.noRoute[(r >> 4) & 1]!);
  }

  /** Both sides forget their peer and learn it again: the next round starts with a handshake. */
  forget(): void {
    for (const [i, d] of this.devices.entries()) {
      const p = this.peers[i]!;
      d.apply({ peers: [{ publicKey: p.publicKey, remove: true, allowedIps: [] }] });
      d.apply({ peers: [p] });
    }
  }

  close(): void {
    for (const d of this.devices) d.close();
  }
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What a warm-up leaves: the count of packets it delivered, and objects to keep (see the header). */
export interface WarmUpResult {
  readonly delivered: number;
  /** Closed throw-away objects (no socket, no fd, no timer): keep them for the life of the process. */
  readonly retained: readonly object[];
}

/**
 * Take `handshakes` fresh pairs of in-memory Devices through a handshake (and two packets), and
 * the last pair through `rounds` packets each way, of a few sizes, both IP families inside and
 * outside. Resolves with how many packets were delivered, decrypted, to the other side.
 */
export async function warmUp(opts: WarmUpOptions = {}): Promise<WarmUpResult> {
  const crypto = opts.crypto ?? selectSuite(undefined);
  const rounds = opts.rounds ?? 1500;
  const handshakes = Math.max(1, opts.handshakes ?? 8);
  const perPair = Math.min(Math.max(1, opts.handshakesPerPair ?? 24), UNDER_LOAD_HANDSHAKES_PER_SECOND >> 1);
  const slice = opts.slice ?? 100;
  const pauseMs = opts.pauseMs ?? 2;
  let delivered = 0;
  let sinceYield = 0;
  const retained: object[] = [];
  const step = async (n: number): Promise<void> => {
    sinceYield += n;
    if (slice > 0 && sinceYield >= slice) {
      sinceYield = 0;
      await pause(pauseMs);
    }
  };
  for (let i = 1; i < handshakes; i++) {
    const p = new Pair(i % 2 === 0, crypto);
    for (let j = 0; j < perPair; j++) {
      if (j > 0) p.forget();
      p.round(2 * j);
      p.round(2 * j + 1);
      await step(5);
    }
    p.close();
    delivered += p.count.delivered;
    await step(10);
  }
  const p = new Pair(false, crypto);
  for (let r = 0; r < rounds; r++) {
    p.round(r);
    await step(1);
  }
  // Not closed: kept (see the header). A Device holds no OS resource of its own.
  retained.push(p);
  delivered += p.count.delivered;
  const udpRounds = opts.udpRounds ?? 1000;
  if (udpRounds > 0) delivered += await warmHosts(udpRounds, crypto, retained);
  if (opts.collect ?? true) collectGarbage();
  return { delivered, retained };
}

/** The switch of the daemon's warm-up: WG_TS_WARMUP=0 turns it off. */
export const WARMUP_ENV = 'WG_TS_WARMUP';

/**
 * What a program calls once, right after it is ready: the warm-up in the background (unless
 * WG_TS_WARMUP=0), then its garbage collected. Resolves with the result, which the caller keeps
 * for the life of the process (null when off or failed).
 */
export async function startWarmUp(crypto: CryptoSuite, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<WarmUpResult | null> {
  if (env[WARMUP_ENV] === '0') {
    logger.verbose(`JIT warm-up off (${WARMUP_ENV}=0)`);
    return null;
  }
  const t = performance.now();
  try {
    const result = await warmUp({ collect: false, crypto });
    logger.verbose(`JIT warm-up took ${Math.round(performance.now() - t)} ms; collecting its garbage`);
    collectGarbage();
    return result;
  } catch (e) {
    logger.error(`JIT warm-up failed: ${(e as Error).message}`);
    return null;
  }
}

/**
 * One full, synchronous garbage collection, now, while no traffic flows: the old space then
 * starts from what is live and the next major collection is far off. V8 gives the collector
 * only to code of a context created once --expose-gc is set, hence the throw-away context.
 * Returns false if V8 refused.
 */
export function collectGarbage(): boolean {
  let gc = (globalThis as { gc?: unknown }).gc;
  if (typeof gc !== 'function') {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('typeof gc === "function" ? gc : undefined');
  }
  if (typeof gc !== 'function') return false;
  (gc as () => void)();
  return true;
}

/**
 * `rounds` packets each way between two real DeviceHosts (the class the daemon runs), each over one
 * end of a packet pair standing in for its TUN, talking over UDP sockets bound to loopback only:
 * half the rounds over IPv4, half over IPv6 (if ::1 exists). The other ends of the pairs play the
 * kernel. This compiles the daemon's own glue, the TUN and UDP layers with the very closures
 * real traffic will use. Resolves with the packets delivered; 0 if it cannot set up (no addon,
 * no loopback). Stops quietly if a packet is lost (loopback does not lose them).
 */
async function warmHosts(rounds: number, crypto: CryptoSuite, retained: object[]): Promise<number> {
  const logger = createLogger('silent', '');
  const tuns: Tun[] = [];
  const daemons: DeviceHost[] = [];
  // The daemon's own UDP factory, bound to loopback: nothing reaches or leaves the host.
  // The daemon's own I/O factories (its route monitor included), with UDP bound to loopback.
  const io = (tun: Tun) => ({
    tun,
    openUdp: (port: number, o: UdpBindOptions) => UdpBind.open(port, { ...o, loopback: true }),
    openRouteMonitor: () => RouteMonitor.shared(),
  });
  let delivered = 0;
  let wake: (() => void) | null = null;
  // Its own keep-warm tick, stopped at the end: the warm-up's traffic runs every branch of the
  // real one, but is no traffic to keep the process warm for. The first touch after a quiet
  // spell starts the tick; the traffic below touches a running one only, so the start is run
  // here, often enough for V8 to have collected type feedback for it (else real traffic's first
  // touch deoptimizes the host's batch callback: test/system/warmup-jit.test.ts).
  const keepWarm = new KeepWarm();
  for (let i = 0; i < 32; i++) {
    keepWarm.touch();
    keepWarm.stop();
  }
  try {
    // One host opened and closed first (see the header).
    const [t0, h0] = Tun.packetPair(['warm', 'host']);
    tuns.push(t0, h0);
    const first = new DeviceHost({ name: 'warm', logger, crypto, keepWarm }, io(t0));
    first.configure({ listenPort: 0, peers: [] });
    first.close('warm-up');
    const pairs = [Tun.packetPair(['warm0', 'host0']), Tun.packetPair(['warm1', 'host1'])];
    for (const [t, h] of pairs) tuns.push(t, h);
    const hosts = pairs.map(([, h]) => h);
    for (const [i, [t]] of pairs.entries()) daemons.push(new DeviceHost({ name: `warm${i}`, logger, crypto, keepWarm }, io(t)));
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
    const packets = [64, 1420].flatMap((n) => [[v4(n, 1, 2), v4(n, 2, 1)] as const, [v6(n, 1, 2), v6(n, 2, 1)] as const]);
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
    keepWarm.stop();
    for (const d of daemons) d.close('warm-up done');
    for (const t of tuns) t.close();
    retained.push(daemons, tuns);
  }
  return delivered;
}
