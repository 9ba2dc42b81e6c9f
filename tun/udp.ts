/**
 * UDP bind in wireguard-go's style: an IPv4 socket and an IPv6 (V6ONLY) socket on one port,
 * read in batches with recvmmsg by a uv_poll_t inside the addon, written in batches with
 * sendmmsg. Sticky source: every received Endpoint carries the local address the datagram was
 * sent to (IP_PKTINFO / IPV6_PKTINFO) and its ifindex; replies to such an Endpoint leave from
 * that address. Offloads (negotiated per socket, see tun/offload.ts): UDP GSO sends a run of
 * equal-size datagrams to one endpoint as one message, UDP GRO receives a run from one source
 * as one buffer, split here; the handlers still see one datagram at a time. See docs/IO.md.
 */

import { MAX_DATAGRAM_SIZE } from '../noise/constants.js';
import { formatIp, parseIp } from '../noise/iptext.js';
import { type Endpoint, endpointOf } from '../noise/types.js';
import {
  native,
  POLL_UDP,
  type PollHandle,
  UDP_M_ADDR_BYTE,
  UDP_M_FAMILY,
  UDP_M_GSO,
  UDP_M_HASLOCAL,
  UDP_M_IFINDEX,
  UDP_M_LEN,
  UDP_M_LOCAL,
  UDP_M_LOCAL_BYTE,
  UDP_M_OFF,
  UDP_M_PORT,
  UDP_M_STATUS,
  UDP_META_STRIDE,
  UDP_OFF_GRO,
  UDP_OFF_GSO,
  UDP_SEND_MAX,
  UDP_SLOT,
} from './addon.js';
import { errnoName } from './errno.js';
import { inNetns } from './netns.js';
import { type OffloadSettings, offloadSettings } from './offload.js';

/**
 * Messages per recvmmsg (and per event-loop wake-up); with GRO each may hold many datagrams.
 * A compromise measured both ways: small, as tun.ts's TUN_BATCH, so that one batch per ready
 * socket per loop iteration shares the CPU between interfaces (ten links' slowest/fastest:
 * 0.27 at 64, 0.58 at 16, 0.72 at 8), yet large enough to drain a socket under a handshake
 * flood (kernel drops 0.9 % at 64, 1.3 % at 16, 5.9 % at 8, where the legitimate handshake
 * started to miss its first retry). docs/BENCHMARKS.md.
 */
export const UDP_BATCH = 16;
const SEND_AREA = 1 << 20;
const CACHE_BITS = 10;
const CACHE_SIZE = 1 << CACHE_BITS; // received-Endpoint cache, direct-mapped (many sources: a handshake flood)
const KEY_FIRST = UDP_M_FAMILY;
const KEY_LAST = UDP_M_LOCAL + 3; // family, port, ifindex, hasLocal, address, local address

export interface UdpBindOptions {
  /** SO_MARK on both sockets (0 = none). */
  fwmark?: number;
  /** Create the sockets in the network namespace of this process (they stay there). */
  netnsPid?: number;
  /**
   * Flush what `send` queued at the end of the current task (a queued microtask) if the owner
   * has not (default true). An owner that always calls `flush()` after its sends, as the
   * daemon does after every batch and timer, turns this off and saves a microtask per batch.
   */
  autoFlush?: boolean;
  /** Bind 127.0.0.1 and ::1 instead of every address (tests, the JIT warm-up). */
  loopback?: boolean;
  /**
   * Offloads to ask for (default: `offloadSettings()`, all but what WGTS_DISABLE_OFFLOAD
   * switches off); false for none. What the kernel granted is in `bind.offload`.
   */
  offload?: Partial<Pick<OffloadSettings, 'udpGso' | 'udpGro'>> | false;
}

/** What a UdpBind's sockets do, as negotiated with the kernel. */
export interface UdpOffload {
  /** UDP GSO on sends, per family (turned off for good when the kernel refuses it with EIO). */
  readonly gso4: boolean;
  readonly gso6: boolean;
  /** UDP GRO on receives. */
  readonly gro: boolean;
}

export interface UdpStats {
  rxDatagrams: number;
  txDatagrams: number;
  /** Datagrams that could not be sent (socket buffer full, unreachable, bad endpoint, ...). */
  sendErrors: number;
  /** Sends whose sticky source the kernel rejected (then sent without it). */
  stickyFailures: number;
  /** GSO sends, and the datagrams that left in them (in txDatagrams). */
  txGsoSends: number;
  txGsoDatagrams: number;
  /** Received buffers that the kernel had coalesced (GRO), split into rxDatagrams. */
  rxGroBuffers: number;
}

/** Error thrown by `UdpBind.open`, with the errno name in `code` (e.g. 'EADDRINUSE'). */
export interface UdpBindError extends Error {
  code: string;
}

interface Target {
  family: 4 | 6;
  addr: Uint8Array; // 16 bytes (IPv4 in the first 4)
  local: Uint8Array | null;
}

/**
 * The data areas every UdpBind of the process shares (as tun.ts's Tun areas): receive batches
 * are handed over whole, one at a time, before the next read; the received-Endpoint cache holds
 * sources whatever bind they came to (Endpoints are immutable); and queued sends belong to one
 * bind until it flushes (a bind that sends while another's datagrams wait flushes those first).
 */
const shared = {
  rbuf: null as Uint8Array | null,
  rmeta: null as Int32Array | null,
  rmeta8: null as Uint8Array | null,
  cacheKeys: new Int32Array(CACHE_SIZE * (KEY_LAST - KEY_FIRST + 1)),
  cacheEps: new Array<Endpoint | null>(CACHE_SIZE).fill(null),
  sbuf: null as Uint8Array | null,
  smeta: null as Int32Array | null,
  smeta8: null as Uint8Array | null,
  seps: new Array<Endpoint | null>(UDP_SEND_MAX).fill(null),
  /** The bind whose datagrams are queued, their number and the bytes they take. */
  owner: null as UdpBind | null,
  count: 0,
  off: 0,
};

function sendAreas(): void {
  shared.sbuf ??= new Uint8Array(SEND_AREA);
  shared.smeta ??= new Int32Array(UDP_SEND_MAX * UDP_META_STRIDE);
  shared.smeta8 ??= new Uint8Array(shared.smeta.buffer);
}

export class UdpBind {
  readonly port: number;
  /** Which families are bound (an IPv6-less kernel gives only IPv4, and vice versa). */
  readonly families: { readonly v4: boolean; readonly v6: boolean };
  readonly stats: UdpStats = { rxDatagrams: 0, txDatagrams: 0, sendErrors: 0, stickyFailures: 0, txGsoSends: 0, txGsoDatagrams: 0, rxGroBuffers: 0 };
  #ctl = new Int32Array(3); // [GSO bits, GSO sends, their datagrams], updated by the addon
  #gro = false;

  #fd4: number;
  #fd6: number;
  #polls: PollHandle[] = [];
  #closed = false;
  #ref = true;
  // receive side (shared by both sockets: batches are delivered one at a time)
  #rbuf: Uint8Array | null = null;
  #rmeta: Int32Array | null = null;
  #rmeta8: Uint8Array | null = null;
  #onDatagram: ((data: Uint8Array, from: Endpoint) => void) | null = null;
  #onBatchEnd: (() => void) | null = null;
  #cacheKeys = shared.cacheKeys;
  #cacheEps = shared.cacheEps;
  #flushQueued = false;
  readonly #autoFlushOn: boolean;
  #targets = new WeakMap<Endpoint, Target>();
  #lastEp: Endpoint | null = null;
  #lastTarget: Target | null = null;
  #onSticky: ((ep: Endpoint) => void) | null = null;
  #onError: ((err: Error) => void) | null = null;

  private constructor(fd4: number, fd6: number, port: number, autoFlush: boolean) {
    this.#autoFlushOn = autoFlush;
    this.#fd4 = fd4;
    this.#fd6 = fd6;
    this.port = port;
    this.families = { v4: fd4 >= 0, v6: fd6 >= 0 };
  }

  /**
   * Binds UDP `port` on IPv4 and IPv6 (0 = a free port for both; see `.port`). Throws an Error
   * with `.code` (e.g. 'EADDRINUSE') on failure.
   */
  static open(port: number, opts: UdpBindOptions = {}): UdpBind {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`invalid UDP port: ${String(port)}`);
    const mark = opts.fwmark ?? 0;
    checkMark(mark);
    let r: [number, number, number];
    try {
      const lo = opts.loopback === true;
      r = opts.netnsPid !== undefined ? inNetns(opts.netnsPid, () => native().udpOpen(port, mark, lo)) : native().udpOpen(port, mark, lo);
    } catch (e) {
      const err = e as Error & { code?: unknown };
      const code = typeof err.code === 'string' ? err.code : 'EUNKNOWN';
      const out = new Error(`UDP port ${port}: ${err.message}`) as UdpBindError;
      out.code = code;
      throw out;
    }
    const bind = new UdpBind(r[0], r[1], r[2], opts.autoFlush ?? true);
    bind.#negotiate(opts.offload);
    return bind;
  }

  /** Asks each socket for the offloads wanted; what a kernel lacks stays off. */
  #negotiate(opt: UdpBindOptions['offload']): void {
    if (opt === false) return;
    const env = offloadSettings();
    const gso = opt?.udpGso ?? env.udpGso;
    const gro = opt?.udpGro ?? env.udpGro;
    if (!gso && !gro) return;
    let bits = 0;
    let groOn = this.#fd4 >= 0 || this.#fd6 >= 0;
    for (const [fd, bit] of [
      [this.#fd4, 1],
      [this.#fd6, 2],
    ] as const) {
      if (fd < 0) continue;
      const got = native().udpSetOffload(fd, gro);
      if (gso && (got & UDP_OFF_GSO) !== 0) bits |= bit;
      if ((got & UDP_OFF_GRO) === 0) groOn = false;
    }
    this.#ctl[0] = bits;
    this.#gro = gro && groOn;
  }

  /** The offloads in use now. */
  get offload(): UdpOffload {
    const bits = this.#ctl[0]!;
    return { gso4: (bits & 1) !== 0, gso6: (bits & 2) !== 0, gro: this.#gro };
  }

  /**
   * Starts receiving. `onDatagram` gets each datagram (a view valid only during the call) and
   * its source; Endpoint objects are reused for consecutive datagrams of the same source and
   * may be kept. `onBatchEnd` follows each batch.
   */
  start(onDatagram: (data: Uint8Array, from: Endpoint) => void, onBatchEnd: () => void): void {
    if (this.#closed) throw new Error('UDP bind closed');
    if (this.#polls.length) throw new Error('UDP bind already started');
    this.#onDatagram = onDatagram;
    this.#onBatchEnd = onBatchEnd;
    shared.rbuf ??= new Uint8Array(UDP_BATCH * UDP_SLOT);
    shared.rmeta ??= new Int32Array(UDP_BATCH * UDP_META_STRIDE);
    shared.rmeta8 ??= new Uint8Array(shared.rmeta.buffer);
    this.#rbuf = shared.rbuf;
    this.#rmeta = shared.rmeta;
    this.#rmeta8 = shared.rmeta8;
    sendAreas();
    const addon = native();
    for (const fd of [this.#fd4, this.#fd6]) {
      if (fd < 0) continue;
      const h = addon.pollStart(fd, POLL_UDP, this.#rbuf, this.#rmeta, UDP_BATCH, this.#onBatch);
      if (!this.#ref) addon.pollRef(h, false);
      this.#polls.push(h);
    }
  }

  /** Stops receiving (the sockets stay bound). */
  stop(): void {
    for (const h of this.#polls) native().pollStop(h);
    this.#polls = [];
  }

  /** Called with an Endpoint whose sticky source the kernel rejected (address gone): clear it. */
  onStickyFailure(cb: (ep: Endpoint) => void): void {
    this.#onSticky = cb;
  }

  /** Receive-side socket errors (rare: the socket keeps being read unless it failed for good). */
  onError(cb: (err: Error) => void): void {
    this.#onError = cb;
  }

  #onBatch = (count: number, errno: number, fromPoll: boolean): void => {
    const buf = this.#rbuf!;
    const meta = this.#rmeta!;
    const onDatagram = this.#onDatagram;
    let i = 0;
    let n = 0;
    if (onDatagram) {
      for (; i < count && !this.#closed && this.#polls.length > 0; i++) {
        const base = i * UDP_META_STRIDE;
        const off = meta[base + UDP_M_OFF]!;
        const len = meta[base + UDP_M_LEN]!;
        const gso = meta[base + UDP_M_GSO]!;
        if (gso === 0) {
          onDatagram(buf.subarray(off, off + len), this.#endpoint(base));
          n++;
          continue;
        }
        // A GRO buffer: datagrams of `gso` bytes from one source, the last one maybe shorter.
        const ep = this.#endpoint(base);
        const end = off + len;
        this.stats.rxGroBuffers++;
        for (let o = off; o < end && !this.#closed && this.#polls.length > 0; o += gso) {
          onDatagram(buf.subarray(o, Math.min(o + gso, end)), ep);
          n++;
        }
      }
    }
    this.stats.rxDatagrams += n;
    if (i > 0 && this.#onBatchEnd) this.#onBatchEnd();
    if (errno !== 0) {
      const err = new Error(fromPoll ? 'UDP socket: POLLERR (no longer read)' : `UDP receive: ${errnoName(errno)}`) as UdpBindError;
      err.code = errnoName(errno);
      if (this.#onError) this.#onError(err);
    }
  };

  /** The Endpoint of descriptor `base`, from the cache when the same source was seen. */
  #endpoint(base: number): Endpoint {
    const meta = this.#rmeta!;
    const port = meta[base + UDP_M_PORT]!;
    // A multiplicative hash of all the address words: IPv4 addresses of one subnet differ in
    // their last byte, which is the top byte of the little-endian word.
    const w = base + UDP_M_ADDR_BYTE / 4;
    const slot = Math.imul(port ^ meta[w]! ^ meta[w + 1]! ^ meta[w + 2]! ^ meta[w + 3]!, 0x9e3779b1) >>> (32 - CACHE_BITS);
    const keys = this.#cacheKeys;
    const kb = slot * (KEY_LAST - KEY_FIRST + 1);
    const cached = this.#cacheEps[slot];
    if (cached) {
      let same = true;
      for (let k = KEY_FIRST; k <= KEY_LAST; k++) {
        if (keys[kb + k - KEY_FIRST] !== meta[base + k]) {
          same = false;
          break;
        }
      }
      if (same) return cached;
    }
    const m8 = this.#rmeta8!;
    const family = meta[base + UDP_M_FAMILY] === 6 ? 6 : 4;
    const a = base * 4 + UDP_M_ADDR_BYTE;
    const l = base * 4 + UDP_M_LOCAL_BYTE;
    const address = formatIp(family, m8, a);
    const ifindex = meta[base + UDP_M_IFINDEX]!;
    const ep = endpointOf(address, port, family, meta[base + UDP_M_HASLOCAL] !== 0 ? formatIp(family, m8, l) : undefined, ifindex);
    for (let k = KEY_FIRST; k <= KEY_LAST; k++) keys[kb + k - KEY_FIRST] = meta[base + k]!;
    this.#cacheEps[slot] = ep;
    return ep;
  }

  /**
   * Queues `data` (copied) for `to`. Sent by `flush()`, when the batch is full, or (unless
   * `autoFlush` is off) at the end of the current event-loop task (a queued microtask) at the
   * latest. Returns false if the datagram was rejected at once (too big, bad endpoint, family
   * not bound).
   */
  send(data: Uint8Array, to: Endpoint): boolean {
    if (this.#closed) return false;
    const len = data.length;
    const t = to === this.#lastEp ? this.#lastTarget! : this.#target(to);
    if (t === null || len > MAX_DATAGRAM_SIZE || (t.family === 4 ? this.#fd4 : this.#fd6) < 0) {
      this.stats.sendErrors++;
      return false;
    }
    const a = shared;
    if (a.owner !== this) {
      a.owner?.flush();
      a.owner = this;
    }
    if (a.count === UDP_SEND_MAX || a.off + len > SEND_AREA) this.flush();
    if (a.sbuf === null) sendAreas();
    a.owner = this; // again: a flush above gave the area up
    const i = a.count++;
    const off = a.off;
    a.sbuf!.set(data, off);
    a.off = off + ((len + 7) & ~7);
    const m = a.smeta!;
    const base = i * UDP_META_STRIDE;
    m[base + UDP_M_OFF] = off;
    m[base + UDP_M_LEN] = len;
    m[base + UDP_M_FAMILY] = t.family;
    m[base + UDP_M_PORT] = to.port;
    m[base + UDP_M_IFINDEX] = to.ifindex ?? 0;
    m[base + UDP_M_HASLOCAL] = t.local ? 1 : 0;
    m[base + UDP_M_STATUS] = 0;
    const m8 = a.smeta8!;
    m8.set(t.addr, base * 4 + UDP_M_ADDR_BYTE);
    if (t.local) m8.set(t.local, base * 4 + UDP_M_LOCAL_BYTE);
    a.seps[i] = to;
    if (!this.#flushQueued && this.#autoFlushOn) {
      this.#flushQueued = true;
      queueMicrotask(this.#autoFlush);
    }
    return true;
  }

  #autoFlush = (): void => {
    this.#flushQueued = false;
    this.flush();
  };

  #target(to: Endpoint): Target | null {
    let t = this.#targets.get(to);
    if (t === undefined) {
      const addr = parseIp(to.address);
      if (addr === null || addr.family !== to.family || !Number.isInteger(to.port) || to.port <= 0 || to.port > 65535) return null;
      let local: Uint8Array | null = null;
      if (to.localAddress !== undefined) {
        const l = parseIp(to.localAddress);
        if (l !== null && l.family === addr.family) local = bytes16(l.bytes);
      }
      t = { family: addr.family, addr: bytes16(addr.bytes), local };
      this.#targets.set(to, t);
    }
    this.#lastEp = to;
    this.#lastTarget = t;
    return t;
  }

  /** Sends what `send` queued (sendmmsg). Returns how many datagrams left. */
  flush(): number {
    const a = shared;
    if (a.owner !== this) return 0;
    a.owner = null;
    const count = a.count;
    a.count = 0;
    a.off = 0;
    if (count === 0 || this.#closed) return 0;
    const m = a.smeta!;
    const ctl = this.#ctl;
    const sent = native().udpSendBatch(this.#fd4, this.#fd6, a.sbuf!, m, count, ctl);
    this.stats.txDatagrams += sent;
    if (ctl[1] !== 0) {
      this.stats.txGsoSends += ctl[1]!;
      this.stats.txGsoDatagrams += ctl[2]!;
      ctl[1] = ctl[2] = 0;
    }
    this.stats.sendErrors += count - sent;
    for (let i = 0; i < count; i++) {
      const base = i * UDP_META_STRIDE;
      const ep = a.seps[i]!;
      a.seps[i] = null;
      if (m[base + UDP_M_HASLOCAL] === 2) {
        this.stats.stickyFailures++;
        if (this.#onSticky) this.#onSticky(ep);
      }
    }
    return sent;
  }

  /** Changes SO_MARK on both sockets (0 clears it). */
  setFwmark(mark: number): void {
    checkMark(mark);
    if (this.#closed) throw new Error('UDP bind closed');
    if (this.#fd4 >= 0) native().sockSetMark(this.#fd4, mark);
    if (this.#fd6 >= 0) native().sockSetMark(this.#fd6, mark);
  }

  /** Lets the process exit while the sockets are being read. */
  unref(): this {
    this.#ref = false;
    for (const h of this.#polls) native().pollRef(h, false);
    return this;
  }

  ref(): this {
    this.#ref = true;
    for (const h of this.#polls) native().pollRef(h, true);
    return this;
  }

  /** Stops receiving and closes both sockets; queued datagrams are dropped. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.stop();
    this.#closed = true;
    if (shared.owner === this) {
      shared.owner = null;
      shared.count = 0;
      shared.off = 0;
      shared.seps.fill(null);
    }
    if (this.#fd4 >= 0) native().fdClose(this.#fd4);
    if (this.#fd6 >= 0) native().fdClose(this.#fd6);
    this.#fd4 = this.#fd6 = -1;
  }
}

function checkMark(mark: number): void {
  if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) throw new RangeError(`invalid fwmark: ${String(mark)}`);
}

/** The address in the 16-byte field the addon reads (IPv4 in the first 4 bytes). */
function bytes16(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out.set(b);
  return out;
}
