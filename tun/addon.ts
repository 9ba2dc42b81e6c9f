/**
 * The one loader of the N-API addons (csrc/, built by node-gyp into build/Release/): wgts.node
 * (TUN, UDP, polling, namespaces; typed here) and wgts_crypto.node (OpenSSL's ChaCha20-Poly1305,
 * X25519 and BLAKE2s; typed in openssl.ts). Works from the sources (under vitest), from the
 * compiled output (dist/tun/) and from an installed package (node_modules/wireguard-ts/dist/tun/):
 * the package root is found by walking up to our package.json. The addon is optional for the
 * engine (crypto/suite.ts jsSuite runs without it) and required by the programs, which refuse
 * to start without it with `addonProblem()`'s one line.
 */

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Opaque handle of a running uv_poll_t reader. */
export interface PollHandle {
  readonly __wgtsPoll: unique symbol;
}

/** Poll modes of `pollStart`. */
export const POLL_TUN = 0;
export const POLL_UDP = 1;
/** Netlink datagrams (csrc/rtmon.c), described like TUN packets: [offset, length]. */
export const POLL_NETLINK = 3;
/** Room per netlink datagram read. */
export const RTMON_SLOT = 32768;
/** A TUN fd opened with IFF_VNET_HDR: super-packets are segmented, partial checksums completed. */
export const POLL_TUN_VNET = 2;

/** Offload bits of `tunOpen` (asked, and granted in its third result). */
export const TUN_OFF_TSO = 1;
export const TUN_OFF_USO = 2;
export const TUN_OFF_VNET = 4;
/** Granted only: the kernel takes UDP GSO packets written to a TUN (it has USO, Linux 6.2). */
export const TUN_OFF_USO_KERNEL = 8;
/** `tunWriteBatch` modes: -1 plain fd; on a vnet fd, coalescing flags (0: none). */
export const TUN_WRITE_PLAIN = -1;
export const GRO_TCP = 1;
export const GRO_UDP = 2;
/** Counters of a vnet TUN reader (`pollStart`'s last argument): indices. */
export const TUN_C_BAD = 0;
export const TUN_C_SPLIT = 1;
export const TUN_C_SEGS = 2;
export const TUN_COUNTERS = 3;
/** `gsoSplit` results below zero. */
export const GSO_EBADHDR = -1;
export const GSO_ENOROOM = -2;

/** Int32 units per TUN packet descriptor: [offset, length]. */
export const TUN_META_STRIDE = 2;
/** Largest packet a TUN read takes (also the slot size needed per read). */
export const TUN_MAX_PACKET = 65535;

/** Int32 units per UDP message descriptor, and the fields in it (see csrc/common.h). */
export const UDP_META_STRIDE = 16;
export const UDP_M_OFF = 0;
export const UDP_M_LEN = 1;
export const UDP_M_FAMILY = 2;
export const UDP_M_PORT = 3;
export const UDP_M_IFINDEX = 4;
/** 0: no local address; 1: local address present; 2 (set by send): the kernel rejected it. */
export const UDP_M_HASLOCAL = 5;
/** Int32 index of the peer address (16 bytes) and of the local address (16 bytes). */
export const UDP_M_ADDR = 6;
export const UDP_M_LOCAL = 10;
/** Byte offset of the 16-byte peer address inside a descriptor. */
export const UDP_M_ADDR_BYTE = 24;
/** Byte offset of the 16-byte local address inside a descriptor. */
export const UDP_M_LOCAL_BYTE = 40;
export const UDP_M_STATUS = 14;
/** Receive: the UDP GRO segment size of a coalesced datagram (0: a single datagram). */
export const UDP_M_GSO = 15;
/** `udpSetOffload` result bits. */
export const UDP_OFF_GSO = 1;
export const UDP_OFF_GRO = 2;
/** Datagrams per `udpSendBatch` call at most. */
export const UDP_SEND_MAX = 128;
/** Receive slot size: any UDP datagram fits. */
export const UDP_SLOT = 65536;

/** `pollNotify` event bits. */
export const NOTIFY_READABLE = 1;
export const NOTIFY_DISCONNECT = 2;

/** A connected control socket and its peer's credentials (SO_PEERCRED, SO_PEERGROUPS). */
export interface CtlPeer {
  fd: number;
  pid: number;
  uid: number;
  gid: number;
  groups: number[];
}

/** One received control packet (see tun/control.ts). */
export interface CtlPacket {
  length: number;
  fd: number;
  truncated: boolean;
  fdsRefused: boolean;
}

export interface WgtsAddon {
  /**
   * Opens /dev/net/tun as `name` (IFF_TUN | IFF_NO_PI | IFF_TUN_EXCL), non-blocking, CLOEXEC;
   * with offloads (TUN_OFF_*) also IFF_VNET_HDR and TUNSETOFFLOAD, negotiated: `granted` says
   * what the kernel took (0: a plain fd, as without offloads).
   */
  tunOpen(name: string, offloads?: number): [fd: number, name: string, granted: number];
  /** SIOCSIFMTU in the current network namespace. */
  tunSetMtu(name: string, mtu: number): void;
  /** TUNGETIFF: the device's current name, or -errno (-EBADFD once the device is gone). */
  tunProbe(fd: number): string | number;
  /** The device's current MTU (asked in whichever namespace it lives now), or -errno. */
  tunMtu(fd: number): number;
  /** A connected non-blocking SOCK_SEQPACKET pair: one packet per read and per write, like a TUN fd. */
  packetPair(): [number, number];
  /** The index of interface `name` in the current network namespace, 0 if there is none. */
  ifIndex(name: string): number;
  /** write(2): bytes written or -errno. */
  fdWrite(fd: number, data: Uint8Array): number;
  /** One packet on a vnet TUN fd, behind an all-zero virtio header: its bytes written or -errno. */
  tunWrite(fd: number, data: Uint8Array): number;
  /**
   * Writes `count` packets ((offset, length) pairs in meta) from `area`; mode TUN_WRITE_PLAIN
   * for a plain fd, else GRO_* flags for a vnet fd (coalesced; headers rewritten in `area`).
   * stats: [packets written, write calls, super-packets, last -errno]. Returns packets written.
   */
  tunWriteBatch(fd: number, area: Uint8Array, meta: Int32Array, count: number, mode: number, stats: Int32Array): number;
  /** Segments one virtio header + packet (tests, benchmarks): segments, 0 (checksum completed in place) or < 0. */
  gsoSplit(input: Uint8Array, out: Uint8Array, meta: Int32Array): number;
  /** Coalesces packets as a TUN write would (tests): outputs as (offset, length, members) in outMeta. */
  groCoalesce(area: Uint8Array, meta: Int32Array, count: number, flags: number, out: Uint8Array, outMeta: Int32Array): number;
  /** The folded ones' complement sum of data (benchmarks). */
  csum(data: Uint8Array): number;
  /** close(2): 0 or -errno. */
  fdClose(fd: number): number;
  /** Binds IPv4 and IPv6 (V6ONLY) sockets on one port: [fd4, fd6, port]; -1 for a missing family. */
  udpOpen(port: number, fwmark: number, loopback: boolean): [fd4: number, fd6: number, port: number];
  sockSetMark(fd: number, mark: number): void;
  /**
   * sendmmsg per run of one family; statuses in meta; returns how many were sent. ctl:
   * [GSO bits (1: IPv4, 2: IPv6; cleared when the kernel refuses), GSO messages, their datagrams].
   */
  udpSendBatch(fd4: number, fd6: number, data: Uint8Array, meta: Int32Array, count: number, ctl?: Int32Array): number;
  /** Probes UDP GSO and turns UDP GRO on (if asked): UDP_OFF_* bits. */
  udpSetOffload(fd: number, gro: boolean): number;
  /**
   * Starts a level-triggered uv_poll_t reader; cb(count, errno, fromPoll) once per batch.
   * fromPoll: errno is libuv's report of POLLERR on the fd (the watcher is stopped then).
   */
  pollStart(
    fd: number,
    mode: number,
    buf: Uint8Array,
    meta: Int32Array,
    maxPerWake: number,
    cb: (count: number, errno: number, fromPoll: boolean) => void,
    counters?: Int32Array,
  ): PollHandle;
  pollStop(handle: PollHandle): void;
  pollRef(handle: PollHandle, keepLoopAlive: boolean): void;
  /** A reader's wake-up, now: one batch read and delivered synchronously (exceptions propagate). */
  pollNow(handle: PollHandle): void;
  /**
   * Notify-mode watcher (reads nothing): cb(events, errno, fromPoll) with events a mask of
   * NOTIFY_READABLE | NOTIFY_DISCONNECT; level-triggered. pollStop / pollRef as for readers.
   */
  pollNotify(fd: number, cb: (events: number, errno: number, fromPoll: boolean) => void): PollHandle;
  /** rtnetlink (csrc/netlink.c); nsFd -1 is the calling thread's namespace. See tun/netlink.ts. */
  nlLinkIndex(nsFd: number, name: string): number;
  nlLinkMove(ifindex: number, nsFd: number, newName: string, precheck?: boolean): number;
  nlAddrAdd(nsFd: number, ifindex: number, address: string, prefixLength: number, nodad: boolean): void;
  nlLinkUp(nsFd: number, ifindex: number): void;
  nlLinkDel(nsFd: number, name: string): void;
  nlLinkSetMtu(nsFd: number, name: string, mtu: number): void;
  netnsCookie(nsFd: number): bigint;
  fdIdentity(fd: number): [dev: bigint, ino: bigint];
  /** Control socket (csrc/ctl.c); see tun/control.ts. */
  ctlListen(name: string, nsFd: number): number;
  ctlAccept(fd: number): CtlPeer | null;
  ctlConnect(name: string, nsFd: number): CtlPeer;
  ctlRecv(fd: number, buf: Uint8Array): CtlPacket | null;
  ctlSend(fd: number, data: Uint8Array, passFd: number): number;
  /** TUNGETDEVNETNS: a new fd of the namespace the TUN device of `tunFd` lives in now. */
  tunNetns(tunFd: number): number;
  /** A non-blocking rtnetlink socket subscribed to IPv4 and IPv6 route changes: [fd, its netlink port id]. */
  rtmonOpen(): [fd: number, portId: number];
  /** Asks for the route to `dst` (from `src`, with fwmark `mark`); the answer comes on the socket with `seq`. 0 or -errno. */
  rtmonQuery(fd: number, seq: number, family: 4 | 6, dst: Uint8Array, src: Uint8Array | null, mark: number): number;
  /** setns(2) of the calling thread into /proc/PID/ns/net; returns the previous namespace's fd. */
  netnsEnter(pid: number): number;
  /** setns(2) back to a namespace saved by netnsEnter; closes the fd. */
  netnsRestore(fd: number): void;
}

/** The npm package name: the root's package.json says it, and the rebuild advice names it. */
const PACKAGE_NAME = 'wireguard-ts';

function isPackageRoot(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === PACKAGE_NAME;
  } catch {
    return false;
  }
}

/** The package root: the nearest ancestor directory whose package.json is wireguard-ts's. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (isPackageRoot(dir)) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the ${PACKAGE_NAME} package root (its package.json) above ${dirname(fileURLToPath(import.meta.url))}`);
    dir = up;
  }
}

/** The addons, by file name in build/Release. */
export type AddonName = 'wgts' | 'wgts_crypto';

/** Environment overrides of an addon's path (e.g. a build with sanitizers, for debugging). */
const OVERRIDE: Record<AddonName, string> = { wgts: 'WGTS_ADDON', wgts_crypto: 'WGTS_CRYPTO_ADDON' };

/** Where an addon is (or would be) loaded from. */
export function addonPath(name: AddonName): string {
  return process.env[OVERRIDE[name]] || join(packageRoot(), 'build', 'Release', `${name}.node`);
}

/** How to build the addon again, and what to install first (the install script's advice too, csrc/install.mjs). */
const REBUILD = `'npm rebuild ${PACKAGE_NAME}' (in a clone of the repository: 'npm run build')`;
export const ADDON_REBUILD_ADVICE = `install python3, make and g++, then run ${REBUILD}`;

const loaded = new Map<AddonName, unknown>();

/**
 * Load an addon once. Throws an Error whose message is one line saying what is wrong and how to
 * rebuild, when the addon was not built or cannot be loaded (e.g. built for another Node.js).
 */
export function loadAddon<T>(name: AddonName): T {
  const hit = loaded.get(name);
  if (hit !== undefined) return hit as T;
  let path: string;
  try {
    path = addonPath(name);
  } catch (e) {
    throw new Error(`the native addon cannot be found (${(e as Error).message})`);
  }
  if (!existsSync(path)) throw new Error(`the native addon is not built (${path} is missing): ${ADDON_REBUILD_ADVICE}`);
  let mod: T;
  try {
    mod = createRequire(import.meta.url)(path) as T;
  } catch (e) {
    const why = String((e as Error).message).split('\n')[0];
    throw new Error(`the native addon ${path} cannot be loaded (${why}): rebuild it with ${REBUILD}`);
  }
  loaded.set(name, mod);
  return mod;
}

/**
 * Null when the TUN/UDP addon loads; otherwise the one-line reason, with what to install and how
 * to rebuild. The daemon, the cwg device commands and the host service check it before anything
 * else and exit 1 with it.
 */
export function addonProblem(): string | null {
  try {
    loadAddon<WgtsAddon>('wgts');
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** The TUN/UDP addon, loaded on first use. Throws a clear Error when it was not built. */
export function native(): WgtsAddon {
  return loadAddon<WgtsAddon>('wgts');
}
