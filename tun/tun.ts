/**
 * TUN devices (IFF_TUN | IFF_NO_PI) read in batches by a uv_poll_t inside the addon: no
 * thread-pool job per packet. See docs/IO.md.
 */
import { randomBytes } from 'node:crypto';
import { native, POLL_TUN, type PollHandle, TUN_MAX_PACKET, TUN_META_STRIDE } from './addon.js';
import { Errno, errnoName } from './errno.js';
import { checkIfName } from './ifname.js';
import { setMtu as ipSetMtu, linkExists, moveLink, netnsInode } from './ip.js';
import * as nl from './netlink.js';

export const DEFAULT_MTU = 1420;
/** Packets read per event-loop wake-up at most (fairness towards the UDP side and timers). */
export const TUN_BATCH = 128;
/** Read area: 2 MiB holds 128 packets of up to ~16 KiB, and at least 32 of 64 KiB. */
const READ_AREA = 2 << 20;
/** How often the fd is probed with TUNGETIFF (removal detection when the fd stays silent). */
const PROBE_MS = 250;

export interface TunOptions {
  /** Create the device in the network namespace of this process (moved there atomically). */
  netnsPid?: number;
  /**
   * Create the device in the network namespace this descriptor refers to (an fd of
   * /proc/PID/ns/net, e.g. received from a client): no pid is resolved, no process run. The fd
   * stays the caller's; closing it after create() leaves the namespace's life to its processes.
   */
  netnsFd?: number;
  /** MTU to set at creation (default 1420). It may be changed later with `ip link set mtu`. */
  mtu?: number;
}

export interface TunStats {
  rxPackets: number;
  txPackets: number;
  writeErrors: number;
}

export class Tun {
  #fd: number;
  #name: string;
  #poll: PollHandle | null = null;
  #buf: Uint8Array | null = null;
  #meta: Int32Array | null = null;
  #onPacket: ((pkt: Uint8Array) => void) | null = null;
  #onBatchEnd: (() => void) | null = null;
  #removedCbs: ((reason: string) => void)[] = [];
  #removed: string | null = null;
  #mtu = 0;
  #mtuCbs: ((mtu: number) => void)[] = [];
  #probe: NodeJS.Timeout | null;
  #closed = false;
  #ref = true;
  readonly netnsPid: number | undefined;
  readonly stats: TunStats = { rxPackets: 0, txPackets: 0, writeErrors: 0 };

  private constructor(fd: number, name: string, netnsPid: number | undefined, mtu: number, probe = true) {
    this.#fd = fd;
    this.#mtu = mtu;
    this.#name = name;
    this.netnsPid = netnsPid;
    this.#probe = probe ? setInterval(() => this.#check(), PROBE_MS) : null;
    this.#probe?.unref();
  }

  /**
   * Two Tuns over the ends of a SOCK_SEQPACKET pair (one packet per read and per write, as on a
   * TUN fd): what one writes, the other reads. No device, no privileges and no removal probe;
   * the same code as a real TUN otherwise. The JIT warm-up and tests use them.
   */
  static packetPair(names: [string, string] = ['pkt0', 'pkt1'], mtu = DEFAULT_MTU): [Tun, Tun] {
    const [a, b] = native().packetPair();
    return [new Tun(a, names[0], undefined, mtu, false), new Tun(b, names[1], undefined, mtu, false)];
  }

  /**
   * Creates TUN device `name`. With `netnsPid`, the device is created under a temporary unique
   * name here, then moved into /proc/<pid>/ns/net and renamed to `name` in one request. Throws a
   * clear Error if the name exists (there) or the pid is invalid; nothing is left behind then.
   */
  static create(name: string, opts: TunOptions = {}): Tun {
    checkIfName(name);
    const mtu = opts.mtu ?? DEFAULT_MTU;
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new Error(`invalid MTU: ${String(mtu)}`);
    const addon = native();
    if (opts.netnsFd !== undefined) {
      if (opts.netnsPid !== undefined) throw new Error(`TUN ${name}: netnsPid and netnsFd are exclusive`);
      return Tun.#createByFd(name, opts.netnsFd, mtu);
    }
    let pid = opts.netnsPid;
    if (pid !== undefined && netnsInode(pid) === netnsInode('self')) pid = undefined; // already there
    if (pid === undefined) {
      const [fd, actual] = openTun(name, '');
      try {
        addon.tunSetMtu(actual, mtu);
      } catch (e) {
        addon.fdClose(fd);
        throw new Error(`TUN ${name}: cannot set MTU ${mtu}: ${(e as Error).message}`);
      }
      return new Tun(fd, actual, undefined, mtu);
    }
    if (linkExists(name, { netnsPid: pid })) {
      throw new Error(`TUN ${name}: a device of that name already exists in the network namespace of pid ${pid}`);
    }
    const tmp = tempName();
    const [fd, actual] = openTun(tmp, name);
    try {
      addon.tunSetMtu(actual, mtu);
      moveLink(actual, pid, name);
    } catch (e) {
      addon.fdClose(fd); // not persistent: closing the last fd deletes the device
      throw new Error(`TUN ${name}: cannot move it into the network namespace of pid ${pid}: ${(e as Error).message}`);
    }
    return new Tun(fd, name, pid, mtu);
  }

  /**
   * Under a temporary name here, MTU set, then moved and renamed in one netlink request
   * (tun/netlink.ts moveLink: EEXIST, with nothing left anywhere, when the name is taken there).
   * The Error keeps the errno name in `code`.
   */
  static #createByFd(name: string, nsFd: number, mtu: number): Tun {
    const addon = native();
    const [fd, actual] = openTun(tempName(), name);
    try {
      addon.tunSetMtu(actual, mtu);
      nl.moveLink(nl.linkIndex(nl.CURRENT_NETNS, actual), nsFd, name);
    } catch (e) {
      addon.fdClose(fd); // not persistent: closing the last fd deletes the device wherever it is
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'EEXIST' ? 'a device of that name already exists there' : (e as Error).message;
      throw Object.assign(new Error(`TUN ${name}: cannot create it in the network namespace of fd ${nsFd}: ${why}`), { code });
    }
    return new Tun(fd, name, undefined, mtu);
  }

  /** The device's name (kept up to date if someone renames it). */
  get name(): string {
    return this.#name;
  }

  /** The file descriptor (for diagnostics; do not close it). */
  get fd(): number {
    return this.#fd;
  }

  /** The reason the device went away, or null while it exists. */
  get removed(): string | null {
    return this.#removed;
  }

  /**
   * Starts reading. `onPacket` gets each packet (a view valid only during the call), then
   * `onBatchEnd` once per batch (the place to flush UDP sends).
   */
  start(onPacket: (pkt: Uint8Array) => void, onBatchEnd: () => void): void {
    if (this.#closed) throw new Error(`TUN ${this.#name}: closed`);
    if (this.#poll) throw new Error(`TUN ${this.#name}: already started`);
    if (this.#removed !== null) throw new Error(`TUN ${this.#name}: device removed (${this.#removed})`);
    this.#onPacket = onPacket;
    this.#onBatchEnd = onBatchEnd;
    this.#buf ??= new Uint8Array(READ_AREA);
    this.#meta ??= new Int32Array(TUN_BATCH * TUN_META_STRIDE);
    this.#poll = native().pollStart(this.#fd, POLL_TUN, this.#buf, this.#meta, TUN_BATCH, this.#onBatch);
    if (!this.#ref) native().pollRef(this.#poll, false);
  }

  /** Stops reading (the device stays); `start` may be called again. */
  stop(): void {
    if (this.#poll) native().pollStop(this.#poll);
    this.#poll = null;
  }

  #onBatch = (count: number, errno: number, fromPoll: boolean): void => {
    const buf = this.#buf;
    const meta = this.#meta;
    const onPacket = this.#onPacket;
    if (buf && meta && onPacket) {
      let i = 0;
      for (; i < count && this.#poll !== null; i++) {
        const off = meta[i * TUN_META_STRIDE]!;
        const len = meta[i * TUN_META_STRIDE + 1]!;
        onPacket(buf.subarray(off, off + len));
      }
      this.stats.rxPackets += i;
      if (i > 0 && this.#onBatchEnd) this.#onBatchEnd();
    }
    if (errno !== 0) {
      // The addon stopped watching the fd: a TUN fd only fails like this when the device is gone
      // (read: EBADFD; poll: POLLERR, reported by libuv as EBADF).
      if (this.#poll) native().pollStop(this.#poll);
      this.#poll = null;
      this.#check(fromPoll ? 'POLLERR on the fd' : `read failed: ${errnoName(errno)}`);
    }
  };

  /**
   * Writes one IP packet; synchronous, never blocks. False if dropped (device down, removed,
   * malformed packet, ...); `stats.writeErrors` counts those.
   */
  write(pkt: Uint8Array): boolean {
    if (this.#closed || this.#removed !== null) {
      this.stats.writeErrors++;
      return false;
    }
    const n = native().fdWrite(this.#fd, pkt);
    if (n < 0) {
      this.stats.writeErrors++;
      if (n === -Errno.EBADFD) this.#check(`write failed: ${errnoName(n)}`);
      return false;
    }
    this.stats.txPackets++;
    return true;
  }

  /**
   * Called once (asynchronously) when the device disappears: `ip link del`, or destruction of
   * the network namespace it lives in. Registered after the fact, it is called at once.
   */
  onRemoved(cb: (reason: string) => void): void {
    if (this.#removed !== null) {
      const reason = this.#removed;
      setImmediate(() => cb(reason));
      return;
    }
    this.#removedCbs.push(cb);
  }

  /**
   * The device's MTU as last seen, wherever it lives now: set at creation, then read again on
   * every probe (every 250 ms); `onMtuChange` hears about changes (`ip link set mtu`).
   */
  get mtu(): number {
    return this.#mtu;
  }

  /** Called with the new MTU when the probe sees it change. */
  onMtuChange(cb: (mtu: number) => void): void {
    this.#mtuCbs.push(cb);
  }

  #readMtu(): void {
    const m = native().tunMtu(this.#fd);
    if (m <= 0 || m === this.#mtu) return;
    this.#mtu = m;
    for (const cb of this.#mtuCbs) cb(m);
  }

  /**
   * Sets the MTU in the device's namespace (reads already take 64 KiB): with iproute2 for a
   * device created by pid, otherwise by netlink in the namespace the device lives in now
   * (TUNGETDEVNETNS).
   */
  setMtu(mtu: number): void {
    if (this.netnsPid !== undefined) {
      ipSetMtu(this.#name, mtu, { netnsPid: this.netnsPid });
      return;
    }
    if (this.#closed) throw new Error(`TUN ${this.#name}: closed`);
    const ns = native().tunNetns(this.#fd);
    try {
      nl.setLinkMtu(ns, this.#name, mtu);
    } finally {
      native().fdClose(ns);
    }
  }

  /** Lets the process exit while the device is being read (like socket.unref()). */
  unref(): this {
    this.#ref = false;
    if (this.#poll) native().pollRef(this.#poll, false);
    return this;
  }

  ref(): this {
    this.#ref = true;
    if (this.#poll) native().pollRef(this.#poll, true);
    return this;
  }

  /** Stops reading and closes the fd, which deletes the device. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.stop();
    if (this.#probe) clearInterval(this.#probe);
    this.#probe = null;
    native().fdClose(this.#fd);
    this.#fd = -1;
    this.#removedCbs = [];
    this.#mtuCbs = [];
  }

  /** Probes the fd with TUNGETIFF; a failure means the device is gone. */
  #check(hint?: string): void {
    if (this.#closed || this.#removed !== null) return;
    const r = native().tunProbe(this.#fd);
    if (typeof r === 'string') {
      this.#name = r;
      if (hint === undefined) {
        this.#readMtu();
        return;
      }
      // A read/write error although the device still exists: report it, the fd is unusable.
    }
    const reason =
      typeof r === 'string'
        ? `${hint ?? 'error'} (device ${r} still present)`
        : `device ${this.#name} removed (TUNGETIFF: ${errnoName(r)}${hint ? `; ${hint}` : ''})`;
    this.#removed = reason;
    this.stop();
    if (this.#probe) clearInterval(this.#probe);
    this.#probe = null;
    const cbs = this.#removedCbs;
    this.#removedCbs = [];
    for (const cb of cbs) setImmediate(() => cb(reason));
  }
}

/** `wgt` + our pid in base 36 (5 chars) + 7 random hex digits: 15 bytes, unique. */
export function tempName(): string {
  return `wgt${tempPrefixPid()}${randomBytes(4).toString('hex').slice(0, 7)}`;
}

/** The pid part of this process's temporary names. */
export function tempPrefixPid(): string {
  return process.pid.toString(36).padStart(5, '0').slice(-5);
}

function openTun(name: string, finalName: string): [number, string] {
  try {
    return native().tunOpen(name);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const shown = finalName || name;
    if (code === 'EBUSY' || code === 'EEXIST') throw new Error(`TUN ${shown}: a device named ${name} already exists`);
    if (code === 'ENOENT' || code === 'ENODEV') throw new Error(`TUN ${shown}: /dev/net/tun is not available (${code})`);
    if (code === 'EPERM' || code === 'EACCES') throw new Error(`TUN ${shown}: permission denied (needs CAP_NET_ADMIN)`);
    throw new Error(`TUN ${shown}: ${(e as Error).message}`);
  }
}

export { TUN_MAX_PACKET };
