/**
 * UDP bind in wireguard-go's style: an IPv4 socket and an IPv6 (V6ONLY) socket on one port,
 * read in batches with recvmmsg by a uv_poll_t inside the addon, written in batches with
 * sendmmsg. Sticky source: every received Endpoint carries the local address the datagram was
 * sent to (IP_PKTINFO / IPV6_PKTINFO) and its ifindex; replies to such an Endpoint leave from
 * that address. See docs/IO.md.
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
  UDP_M_HASLOCAL,
  UDP_M_IFINDEX,
  UDP_M_LEN,
  UDP_M_LOCAL,
  UDP_M_LOCAL_BYTE,
  UDP_M_OFF,
  UDP_M_PORT,
  UDP_M_STATUS,
  UDP_META_STRIDE,
  UDP_SLOT,
} from './addon.js';
import { errnoName } from './errno.js';
import { inNetns } from './netns.js';

/** Datagrams per recvmmsg / sendmmsg (and per event-loop wake-up). */
export const UDP_BATCH = 64;
const SEND_AREA = 1 << 20;
const CACHE_SIZE = 16; // received-Endpoint cache, direct-mapped
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
}

export interface UdpStats {
  rxDatagrams: number;
  txDatagrams: number;
  /** Datagrams that could not be sent (socket buffer full, unreachable, bad endpoint, ...). */
  sendErrors: number;
  /** Sends whose sticky source the kernel rejected (then sent without it). */
  stickyFailures: number;
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

export class UdpBind {
  readonly port: number;
  /** Which families are bound (an IPv6-less kernel gives only IPv4, and vice versa). */
  readonly families: { readonly v4: boolean; readonly v6: boolean };
  readonly stats: UdpStats = { rxDatagrams: 0, txDatagrams: 0, sendErrors: 0, stickyFailures: 0 };

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
  #cacheKeys = new Int32Array(CACHE_SIZE * (KEY_LAST - KEY_FIRST + 1));
  #cacheEps: (Endpoint | null)[] = new Array<Endpoint | null>(CACHE_SIZE).fill(null);
  // send side
  #sbuf = new Uint8Array(SEND_AREA);
  #smeta = new Int32Array(UDP_BATCH * UDP_META_STRIDE);
  #smeta8 = new Uint8Array(this.#smeta.buffer);
  #seps: (Endpoint | null)[] = new Array<Endpoint | null>(UDP_BATCH).fill(null);
  #scount = 0;
  #soff = 0;
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
    return new UdpBind(r[0], r[1], r[2], opts.autoFlush ?? true);
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
    this.#rbuf ??= new Uint8Array(UDP_BATCH * UDP_SLOT);
    this.#rmeta ??= new Int32Array(UDP_BATCH * UDP_META_STRIDE);
    this.#rmeta8 ??= new Uint8Array(this.#rmeta.buffer);
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
    if (onDatagram) {
      for (; i < count && !this.#closed && this.#polls.length > 0; i++) {
        const base = i * UDP_META_STRIDE;
        const off = meta[base + UDP_M_OFF]!;
        const len = meta[base + UDP_M_LEN]!;
        onDatagram(buf.subarray(off, off + len), this.#endpoint(base));
      }
    }
    this.stats.rxDatagrams += i;
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
    const slot = (port ^ meta[base + UDP_M_ADDR_BYTE / 4 + 3]! ^ meta[base + UDP_M_ADDR_BYTE / 4]!) & (CACHE_SIZE - 1);
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
    if (this.#scount === UDP_BATCH || this.#soff + len > SEND_AREA) this.flush();
    const i = this.#scount++;
    const off = this.#soff;
    this.#sbuf.set(data, off);
    this.#soff = off + ((len + 7) & ~7);
    const m = this.#smeta;
    const base = i * UDP_META_STRIDE;
    m[base + UDP_M_OFF] = off;
    m[base + UDP_M_LEN] = len;
    m[base + UDP_M_FAMILY] = t.family;
    m[base + UDP_M_PORT] = to.port;
    m[base + UDP_M_IFINDEX] = to.ifindex ?? 0;
    m[base + UDP_M_HASLOCAL] = t.local ? 1 : 0;
    m[base + UDP_M_STATUS] = 0;
    this.#smeta8.set(t.addr, base * 4 + UDP_M_ADDR_BYTE);
    if (t.local) this.#smeta8.set(t.local, base * 4 + UDP_M_LOCAL_BYTE);
    this.#seps[i] = to;
    if (!this.#flushQueued && this.#autoFlushOn) {
      this.#flushQueued = true;
      queueMicrotask(this.#autoFlush);
    }
    return true;
  }

  #autoFlush = (): void => {
    this.#flushQueued = false;
    if (this.#scount > 0) this.flush();
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
    const count = this.#scount;
    if (count === 0 || this.#closed) return 0;
    const m = this.#smeta;
    const sent = native().udpSendBatch(this.#fd4, this.#fd6, this.#sbuf, m, count);
    this.#scount = 0;
    this.#soff = 0;
    this.stats.txDatagrams += sent;
    this.stats.sendErrors += count - sent;
    for (let i = 0; i < count; i++) {
      const base = i * UDP_META_STRIDE;
      const ep = this.#seps[i]!;
      this.#seps[i] = null;
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
    this.#scount = 0;
    this.#seps.fill(null);
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
