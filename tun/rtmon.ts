/**
 * Route monitor: an rtnetlink socket (csrc/rtmon.c) that tells when IPv4 or IPv6 routes change
 * and answers route lookups (RTM_GETROUTE), read on the event loop by the addon's poller. The
 * daemon uses it to give up a sticky source address as soon as the route to the peer changes
 * (as wireguard-go's routineRouteListener), instead of waiting for a send to fail. It lives in
 * the namespace it was opened in: the one of the UDP sockets whose routes matter.
 */
import { formatIp, parseIp } from '../noise/iptext.js';
import { native, POLL_NETLINK, type PollHandle, RTMON_SLOT, TUN_META_STRIDE } from './addon.js';
import { Errno } from './errno.js';

// linux/netlink.h, linux/rtnetlink.h
const NLMSG_ERROR = 2;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const NLMSG_HDRLEN = 16;
const RTMSG_LEN = 12;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PREFSRC = 7;
const RTA_TABLE = 15;

/** What the kernel answered to a route lookup. */
export interface RouteAnswer {
  /** Output interface index (0: none, e.g. an unreachable route). */
  readonly oif: number;
  /** The source address the kernel would choose (absent when the lookup gave one). */
  readonly prefsrc: string | null;
  readonly gateway: string | null;
  readonly table: number;
}

/** One netlink message, as far as the monitor cares. */
export type NetlinkMessage =
  | { readonly kind: 'route'; readonly seq: number; readonly pid: number; readonly route: RouteAnswer; readonly dst: string | null }
  | { readonly kind: 'error'; readonly seq: number; readonly pid: number; readonly errno: number }
  | { readonly kind: 'other'; readonly type: number; readonly seq: number; readonly pid: number };

const u16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const align4 = (n: number) => (n + 3) & ~3;

/**
 * The netlink messages in `b[off, off + len)`: route messages with the attributes the monitor
 * uses, error answers (errno positive; 0 is an acknowledgement), and the rest by type. Stops at
 * the first malformed header; never reads outside the range.
 */
export function parseNetlink(b: Uint8Array, off: number, len: number): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  const end = Math.min(b.length, off + len);
  let p = off;
  while (p + NLMSG_HDRLEN <= end) {
    const mlen = u32(b, p);
    if (mlen < NLMSG_HDRLEN || p + mlen > end) break;
    const type = u16(b, p + 4);
    const seq = u32(b, p + 8);
    const pid = u32(b, p + 12);
    const body = p + NLMSG_HDRLEN;
    if (type === NLMSG_ERROR && mlen >= NLMSG_HDRLEN + 4) {
      const e = b[body]! | (b[body + 1]! << 8) | (b[body + 2]! << 16) | (b[body + 3]! << 24);
      out.push({ kind: 'error', seq, pid, errno: -e });
    } else if ((type === RTM_NEWROUTE || type === RTM_DELROUTE) && mlen >= NLMSG_HDRLEN + RTMSG_LEN) {
      const family = b[body] === 2 ? 4 : b[body] === 10 ? 6 : 0;
      const alen = family === 4 ? 4 : 16;
      let oif = 0;
      let prefsrc: string | null = null;
      let gateway: string | null = null;
      let dst: string | null = null;
      let table = b[body + 4]!;
      let a = body + RTMSG_LEN;
      const mend = p + mlen;
      while (a + 4 <= mend) {
        const alenAttr = u16(b, a);
        const atype = u16(b, a + 2) & 0x3fff;
        if (alenAttr < 4 || a + alenAttr > mend) break;
        const data = a + 4;
        const dlen = alenAttr - 4;
        if (atype === RTA_OIF && dlen === 4) oif = u32(b, data);
        else if (atype === RTA_TABLE && dlen === 4) table = u32(b, data);
        else if (family !== 0 && dlen === alen) {
          if (atype === RTA_PREFSRC) prefsrc = formatIp(family, b, data);
          else if (atype === RTA_GATEWAY) gateway = formatIp(family, b, data);
          else if (atype === RTA_DST) dst = formatIp(family, b, data);
        }
        a += align4(alenAttr);
      }
      out.push({ kind: 'route', seq, pid, route: { oif, prefsrc, gateway, table }, dst });
    } else {
      out.push({ kind: 'other', type, seq, pid });
    }
    p += align4(mlen);
  }
  return out;
}

/** A lookup's result: the route, or the errno the kernel refused it with (ETIMEDOUT: no answer). */
export type LookupResult = RouteAnswer | number;

const LOOKUP_TIMEOUT_MS = 2000;
export const ETIMEDOUT = Errno.ETIMEDOUT;
const BATCH = 16;

export class RouteMonitor {
  #fd: number;
  readonly #portId: number;
  #poll: PollHandle | null = null;
  readonly #buf = new Uint8Array(BATCH * RTMON_SLOT);
  readonly #meta = new Int32Array(BATCH * TUN_META_STRIDE);
  #seq = 0;
  readonly #pending = new Map<number, { resolve: (r: LookupResult) => void; timer: NodeJS.Timeout }>();
  readonly #listeners = new Set<() => void>();
  /** Holders of this monitor (`shared()`); the socket closes when the last one releases it. */
  #refs = 1;
  static #shared: RouteMonitor | null = null;

  private constructor(fd: number, portId: number) {
    this.#fd = fd;
    this.#portId = portId;
  }

  /** Opens the monitor in the current network namespace. Throws (with `.code`) when netlink is unavailable. */
  static open(): RouteMonitor {
    const [fd, portId] = native().rtmonOpen();
    const m = new RouteMonitor(fd, portId);
    m.#poll = native().pollStart(fd, POLL_NETLINK, m.#buf, m.#meta, BATCH, m.#onBatch);
    native().pollRef(m.#poll, false);
    return m;
  }

  /**
   * The process's one monitor (opened on first use, in the current network namespace), taken
   * once more: every interface of a process watches the same routing table, so one socket
   * serves all of them. Each `shared()` is matched by a `release()`.
   */
  static shared(): RouteMonitor {
    const m = RouteMonitor.#shared;
    if (m !== null && m.#fd >= 0) {
      m.#refs++;
      return m;
    }
    RouteMonitor.#shared = RouteMonitor.open();
    return RouteMonitor.#shared;
  }

  /** Give back a `shared()` or `open()` monitor; the last release closes it. */
  release(): void {
    if (--this.#refs > 0) return;
    if (RouteMonitor.#shared === this) RouteMonitor.#shared = null;
    this.close();
  }

  /**
   * `cb` runs after route changes (once per batch of notifications, or when some were lost).
   * Returns the function that stops it.
   */
  onChange(cb: () => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /**
   * The route the kernel would take to `dst`, from `src` if given (the kernel's check of a
   * sticky source: it fails if `src` is not usable), with fwmark `mark`.
   */
  lookup(dst: string, src: string | null, mark: number): Promise<LookupResult> {
    const d = parseIp(dst);
    const s = src === null ? null : parseIp(src);
    if (this.#fd < 0 || d === null || (s !== null && s.family !== d.family)) return Promise.resolve(Errno.EINVAL);
    this.#seq = (this.#seq % 0x7fffffff) + 1;
    const seq = this.#seq;
    return new Promise((resolve) => {
      const r = native().rtmonQuery(this.#fd, seq, d.family, d.bytes, s === null ? null : s.bytes, mark >>> 0);
      if (r < 0) {
        resolve(-r);
        return;
      }
      const timer = setTimeout(() => {
        this.#pending.delete(seq);
        resolve(ETIMEDOUT);
      }, LOOKUP_TIMEOUT_MS);
      timer.unref();
      this.#pending.set(seq, { resolve, timer });
    });
  }

  #onBatch = (count: number, errno: number): void => {
    let changed = errno === Errno.ENOBUFS;
    for (let i = 0; i < count; i++) {
      const off = this.#meta[i * TUN_META_STRIDE]!;
      const len = this.#meta[i * TUN_META_STRIDE + 1]!;
      for (const m of parseNetlink(this.#buf, off, len)) {
        const waiting = m.pid === this.#portId ? this.#pending.get(m.seq) : undefined;
        if (waiting !== undefined) {
          this.#pending.delete(m.seq);
          clearTimeout(waiting.timer);
          waiting.resolve(m.kind === 'route' ? m.route : m.kind === 'error' ? m.errno || Errno.EINVAL : Errno.EINVAL);
        } else if (m.kind === 'route') {
          changed = true;
        }
      }
    }
    if (errno !== 0 && errno !== Errno.ENOBUFS) this.close();
    if (changed) for (const cb of this.#listeners) cb();
  };

  /** Stops listening; pending lookups resolve with ETIMEDOUT. Idempotent. */
  close(): void {
    if (this.#poll) native().pollStop(this.#poll);
    this.#poll = null;
    if (this.#fd >= 0) native().fdClose(this.#fd);
    this.#fd = -1;
    for (const { resolve, timer } of this.#pending.values()) {
      clearTimeout(timer);
      resolve(ETIMEDOUT);
    }
    this.#pending.clear();
  }
}
