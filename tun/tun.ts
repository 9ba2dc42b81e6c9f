/**
 * TUN devices (IFF_TUN | IFF_NO_PI) read in batches by a uv_poll_t inside the addon: no
 * thread-pool job per packet. With offloads (IFF_VNET_HDR + TUNSETOFFLOAD, negotiated) the
 * kernel hands TCP/UDP super-packets, which the addon segments before JavaScript sees them, and
 * queued writes are coalesced into super-packets again. Either way the handlers see one IP
 * packet at a time. See docs/IO.md.
 */
import { randomBytes } from 'node:crypto';
import {
  GRO_TCP,
  GRO_UDP,
  native,
  POLL_TUN,
  POLL_TUN_VNET,
  type PollHandle,
  TUN_C_BAD,
  TUN_C_SEGS,
  TUN_C_SPLIT,
  TUN_COUNTERS,
  TUN_MAX_PACKET,
  TUN_META_STRIDE,
  TUN_OFF_TSO,
  TUN_OFF_USO,
  TUN_OFF_USO_KERNEL,
  TUN_OFF_VNET,
  TUN_WRITE_PLAIN,
} from './addon.js';
import { Errno, errnoName } from './errno.js';
import { checkIfName } from './ifname.js';
import { setMtu as ipSetMtu, linkExists, moveLink, netnsInode } from './ip.js';
import * as nl from './netlink.js';
import { type OffloadSettings, offloadSettings } from './offload.js';

export const DEFAULT_MTU = 1420;
/**
 * Reads per event-loop wake-up at most. Small, because a read can be a 64 KiB super-packet:
 * every ready descriptor gets one batch per loop iteration, so the batch bounds how long one
 * interface holds the loop, which is what shares the CPU fairly between the interfaces of the
 * host service (bench/service-link.ts: ten links' slowest/fastest 0.27 with 128, 0.72 with 8)
 * and keeps the UDP side and timers served; one link's throughput is the same
 * (docs/BENCHMARKS.md).
 */
export const TUN_BATCH = 8;
/** Packets per batch after segmentation (room for the worst super-packet: WGTS_GSO_MAX_SEGS, 1400). */
const TUN_SEGS = 2048;
/** Read area: 2 MiB holds 128 packets of up to ~16 KiB, and at least 32 of 64 KiB; with
 * offloads, ~30 super-packets of 64 KiB and their segments. */
const READ_AREA = 2 << 20;
/** Queued writes (`queue`/`flush`): packets and bytes per flush at most. */
const WRITE_BATCH = 512;
const WRITE_AREA = 1 << 20;
/**
 * How often each fd is probed with TUNGETIFF: removal while the fd is not read (a read fd hears
 * of it at once, by POLLERR), and the current name. One timer probes every Tun of the process
 * in up to PROBE_SLICES slices, one slice per wake-up: a slice keeps the event loop's pause
 * short with 1000 devices, and there are never more slices than Tuns, because a wake-up costs
 * more than the probe (a timer interrupt and a VM exit on this kind of host): a daemon with its
 * one Tun wakes once per PROBE_MS, not PROBE_SLICES times.
 */
const PROBE_MS = 1000;
const PROBE_SLICES = 20;
/**
 * Every this many probes, the MTU is read too: that takes a socket made in the device's
 * namespace for one ioctl (~0.1 ms), which every idle device of a host service would otherwise
 * pay each second (bench/service.ts: 100 devices idle at 3 % of a core with it every second).
 */
const MTU_EVERY = 4;

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
  /**
   * Offloads to ask for (default: `offloadSettings()`, i.e. all but what WGTS_DISABLE_OFFLOAD
   * switches off); false for none. What the kernel granted is in `tun.offload`.
   */
  offload?: Partial<Pick<OffloadSettings, 'tso' | 'uso' | 'tunGro'>> | false;
}

export interface TunStats {
  rxPackets: number;
  txPackets: number;
  writeErrors: number;
  /** Super-packets the kernel handed over, and the segments made of them (in rxPackets). */
  rxSuperPackets: number;
  rxSegments: number;
  /** Reads dropped because their virtio header did not describe the packet. */
  rxBadOffload: number;
  /** Write calls, and the super-packets among them (coalesced from txPackets). */
  txWrites: number;
  txSuperPackets: number;
}

/** What a Tun's fd does, as negotiated with the kernel. */
export interface TunOffload {
  /** The fd carries a virtio_net_hdr per packet (IFF_VNET_HDR). */
  readonly vnet: boolean;
  /** The kernel hands TCP / UDP super-packets. */
  readonly tso: boolean;
  readonly uso: boolean;
  /** Queued writes are coalesced: TCP, and UDP (kernels that take UDP GSO packets). */
  readonly tcpGro: boolean;
  readonly udpGro: boolean;
}

const NO_OFFLOAD: TunOffload = { vnet: false, tso: false, uso: false, tcpGro: false, udpGro: false };

/**
 * The data areas every Tun of the process shares: one reader runs at a time on the event loop
 * and hands its whole batch over before it returns, and queued writes belong to one Tun until
 * it flushes (a Tun that queues while another's writes wait flushes those first). A host
 * service with a thousand interfaces holds one set instead of a thousand.
 */
const areas = {
  read: null as Uint8Array | null,
  /** Room for a vnet reader's segments (a plain reader uses the first TUN_BATCH entries). */
  meta: null as Int32Array | null,
  write: null as Uint8Array | null,
  wmeta: null as Int32Array | null,
  /** The Tun whose writes are queued, their number and the bytes they take. */
  owner: null as Tun | null,
  count: 0,
  off: 0,
};

/** The shared areas, made on first use (a process with no TUN needs none). */
function sharedAreas(): { read: Uint8Array; meta: Int32Array } {
  areas.read ??= new Uint8Array(READ_AREA);
  areas.meta ??= new Int32Array(TUN_SEGS * TUN_META_STRIDE);
  areas.write ??= new Uint8Array(WRITE_AREA);
  areas.wmeta ??= new Int32Array(WRITE_BATCH * 2);
  return { read: areas.read, meta: areas.meta };
}

export class Tun {
  #fd: number;
  #name: string;
  #poll: PollHandle | null = null;
  #buf: Uint8Array | null = null;
  #meta: Int32Array | null = null;
  #onPacket: ((pkt: Uint8Array) => void) | null = null;
  #onBatchEnd: (() => void) | null = null;
  // The vnet reader's counters; a plain Tun keeps zeros, read all the same so that both run
  // the same code (the JIT warm-up runs plain Tuns, see src/warmup.ts).
  #counters = new Int32Array(TUN_COUNTERS);
  #wstats = new Int32Array(4);
  readonly #wmode: number;
  #removedCbs: ((reason: string) => void)[] = [];
  #removed: string | null = null;
  #mtu = 0;
  #mtuCbs: ((mtu: number) => void)[] = [];
  /** Probes so far, from a phase that spreads the MTU reads of many Tuns (see MTU_EVERY). */
  #probes: number;
  #closed = false;
  #ref = true;
  readonly netnsPid: number | undefined;
  readonly stats: TunStats = { rxPackets: 0, txPackets: 0, writeErrors: 0, rxSuperPackets: 0, rxSegments: 0, rxBadOffload: 0, txWrites: 0, txSuperPackets: 0 };
  readonly offload: TunOffload;

  private constructor(fd: number, name: string, netnsPid: number | undefined, mtu: number, probe = true, offload: TunOffload = NO_OFFLOAD) {
    this.#fd = fd;
    this.offload = offload;
    this.#wmode = !offload.vnet ? TUN_WRITE_PLAIN : (offload.tcpGro ? GRO_TCP : 0) | (offload.udpGro ? GRO_UDP : 0);
    this.#mtu = mtu;
    this.#name = name;
    this.netnsPid = netnsPid;
    this.#probes = Tun.#phase++;
    if (probe) Tun.#watch(this);
  }

  /** Every Tun the shared probe watches, and its timer (unref'd: it keeps no process alive). */
  static readonly #probed = new Set<Tun>();
  static #timer: NodeJS.Timeout | null = null;
  static #turn = 0;
  static #phase = 0;

  /** Slices of the shared probe for the Tuns watched now: one per Tun, PROBE_SLICES at most. */
  static #slices(): number {
    return Math.max(1, Math.min(PROBE_SLICES, Tun.#probed.size));
  }

  static #arm(): void {
    Tun.#timer = setTimeout(Tun.#probeSlice, PROBE_MS / Tun.#slices());
    Tun.#timer.unref();
  }

  static #watch(t: Tun): void {
    Tun.#probed.add(t);
    if (Tun.#timer === null) Tun.#arm();
  }

  static #unwatch(t: Tun): void {
    Tun.#probed.delete(t);
    if (Tun.#probed.size === 0 && Tun.#timer !== null) {
      clearTimeout(Tun.#timer);
      Tun.#timer = null;
    }
  }

  /**
   * One slice of the shared probe: every slices-th Tun (a Tun may leave the set meanwhile, and
   * the number of slices follows the set's size, so each Tun is probed about once per PROBE_MS).
   */
  static #probeSlice = (): void => {
    Tun.#timer = null; // a Tun watched from a probe's callback arms the next slice itself
    const slices = Tun.#slices();
    const slice = Tun.#turn++ % slices;
    let k = 0;
    for (const t of Tun.#probed) if (k++ % slices === slice) t.#check();
    if (Tun.#timer === null && Tun.#probed.size > 0) Tun.#arm();
  };

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
    const want = wantedOffload(opts.offload);
    if (opts.netnsFd !== undefined) {
      if (opts.netnsPid !== undefined) throw new Error(`TUN ${name}: netnsPid and netnsFd are exclusive`);
      return Tun.#createByFd(name, opts.netnsFd, mtu, want);
    }
    let pid = opts.netnsPid;
    if (pid !== undefined && netnsInode(pid) === netnsInode('self')) pid = undefined; // already there
    if (pid === undefined) {
      const [fd, actual, granted] = openTun(name, '', want.bits);
      try {
        addon.tunSetMtu(actual, mtu);
      } catch (e) {
        addon.fdClose(fd);
        throw new Error(`TUN ${name}: cannot set MTU ${mtu}: ${(e as Error).message}`);
      }
      return new Tun(fd, actual, undefined, mtu, true, grantedOffload(granted, want.gro));
    }
    if (linkExists(name, { netnsPid: pid })) {
      throw new Error(`TUN ${name}: a device of that name already exists in the network namespace of pid ${pid}`);
    }
    const tmp = tempName();
    const [fd, actual, granted] = openTun(tmp, name, want.bits);
    try {
      addon.tunSetMtu(actual, mtu);
      moveLink(actual, pid, name);
    } catch (e) {
      addon.fdClose(fd); // not persistent: closing the last fd deletes the device
      throw new Error(`TUN ${name}: cannot move it into the network namespace of pid ${pid}: ${(e as Error).message}`);
    }
    return new Tun(fd, name, pid, mtu, true, grantedOffload(granted, want.gro));
  }

  /**
   * Under a temporary name here, MTU set, then moved and renamed in one netlink request
   * (tun/netlink.ts moveLink: EEXIST, with nothing left anywhere, when the name is taken there).
   * The Error keeps the errno name in `code`.
   */
  static #createByFd(name: string, nsFd: number, mtu: number, want: { bits: number; gro: boolean }): Tun {
    const addon = native();
    const [fd, actual, granted] = openTun(tempName(), name, want.bits);
    try {
      addon.tunSetMtu(actual, mtu);
      nl.moveLink(nl.linkIndex(nl.CURRENT_NETNS, actual), nsFd, name);
    } catch (e) {
      addon.fdClose(fd); // not persistent: closing the last fd deletes the device wherever it is
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'EEXIST' ? 'a device of that name already exists there' : (e as Error).message;
      throw Object.assign(new Error(`TUN ${name}: cannot create it in the network namespace of fd ${nsFd}: ${why}`), { code });
    }
    return new Tun(fd, name, undefined, mtu, true, grantedOffload(granted, want.gro));
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
    const { read, meta } = sharedAreas();
    this.#buf = read;
    this.#meta = meta;
    // The counters are the vnet reader's; the plain reader ignores them.
    this.#poll = native().pollStart(this.#fd, this.offload.vnet ? POLL_TUN_VNET : POLL_TUN, this.#buf, this.#meta, TUN_BATCH, this.#onBatch, this.#counters);
    if (!this.#ref) native().pollRef(this.#poll, false);
  }

  /**
   * Reads now, synchronously, what the fd holds: one batch, to the reader `start` set, as a
   * wake-up would deliver it (nothing when there is nothing). For the caller that has just
   * written packets the kernel answers within the write (an echo, a local TCP stack's ACK): the
   * answer goes out in the same turn instead of after a trip through the event loop.
   */
  readNow(): void {
    if (this.#poll !== null) native().pollNow(this.#poll);
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
      this.#readCounters();
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

  /** The addon's counters of the vnet reader, moved into `stats` (and zeroed: Int32 would wrap). */
  #readCounters(): void {
    const c = this.#counters;
    if (c[TUN_C_SPLIT] === 0 && c[TUN_C_BAD] === 0) return;
    this.stats.rxSuperPackets += c[TUN_C_SPLIT]!;
    this.stats.rxSegments += c[TUN_C_SEGS]!;
    this.stats.rxBadOffload += c[TUN_C_BAD]!;
    c[TUN_C_SPLIT] = c[TUN_C_SEGS] = c[TUN_C_BAD] = 0;
  }

  /**
   * Writes one IP packet now; synchronous, never blocks. False if dropped (device down,
   * removed, malformed packet, ...); `stats.writeErrors` counts those.
   */
  write(pkt: Uint8Array): boolean {
    if (this.#closed || this.#removed !== null) {
      this.stats.writeErrors++;
      return false;
    }
    const n = this.offload.vnet ? native().tunWrite(this.#fd, pkt) : native().fdWrite(this.#fd, pkt);
    this.stats.txWrites++;
    if (n < 0) {
      this.stats.writeErrors++;
      if (n === -Errno.EBADFD) this.#check(`write failed: ${errnoName(n)}`);
      return false;
    }
    this.stats.txPackets++;
    return true;
  }

  /**
   * Queues one IP packet (copied) for `flush()`, which writes the queue coalesced into
   * super-packets where offloads allow (one write per flow run instead of one per packet). A
   * full queue flushes by itself. Returns false if the packet cannot be written at all.
   */
  queue(pkt: Uint8Array): boolean {
    const len = pkt.length;
    if (this.#closed || this.#removed !== null || len > TUN_MAX_PACKET) {
      this.stats.writeErrors++;
      return false;
    }
    const a = areas;
    if (a.owner !== this) {
      a.owner?.flush();
      a.owner = this;
    }
    if (a.count === WRITE_BATCH || a.off + len > WRITE_AREA) this.flush();
    if (a.write === null) sharedAreas();
    const off = a.off;
    a.write!.set(pkt, off);
    const i = a.count++ * 2;
    const meta = a.wmeta!;
    meta[i] = off;
    meta[i + 1] = len;
    a.off = off + ((len + 15) & ~15);
    a.owner = this; // again: a flush above gave the area up
    return true;
  }

  /** Writes what `queue` queued. Returns the packets written. */
  flush(): number {
    const a = areas;
    if (a.owner !== this) return 0;
    const count = a.count;
    a.owner = null;
    if (count === 0) return 0;
    a.count = 0;
    a.off = 0;
    if (this.#closed || this.#removed !== null) {
      this.stats.writeErrors += count;
      return 0;
    }
    const st = this.#wstats;
    const ok = native().tunWriteBatch(this.#fd, a.write!, a.wmeta!, count, this.#wmode, st);
    this.stats.txPackets += ok;
    this.stats.txWrites += st[1]!;
    this.stats.txSuperPackets += st[2]!;
    if (ok < count) {
      this.stats.writeErrors += count - ok;
      if (st[3] === -Errno.EBADFD) this.#check(`write failed: ${errnoName(st[3])}`);
    }
    return ok;
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
   * every fourth probe (every 4 s); `onMtuChange` hears about changes (`ip link set mtu`).
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
    Tun.#unwatch(this);
    native().fdClose(this.#fd);
    this.#fd = -1;
    this.#removedCbs = [];
    this.#mtuCbs = [];
    if (areas.owner === this) {
      areas.owner = null;
      areas.count = 0;
      areas.off = 0;
    }
  }

  /** Probes the fd with TUNGETIFF; a failure means the device is gone. */
  #check(hint?: string): void {
    if (this.#closed || this.#removed !== null) return;
    const r = native().tunProbe(this.#fd);
    if (typeof r === 'string') {
      this.#name = r;
      if (hint === undefined) {
        if (++this.#probes % MTU_EVERY === 0) this.#readMtu();
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
    Tun.#unwatch(this);
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

/** The tunOpen bits and the coalescing wanted, from TunOptions.offload and the environment. */
function wantedOffload(opt: TunOptions['offload']): { bits: number; gro: boolean } {
  if (opt === false) return { bits: 0, gro: false };
  const env = offloadSettings();
  const tso = opt?.tso ?? env.tso;
  const uso = opt?.uso ?? env.uso;
  const gro = opt?.tunGro ?? env.tunGro;
  return { bits: (tso ? TUN_OFF_TSO : 0) | (uso ? TUN_OFF_USO : 0) | (gro ? TUN_OFF_VNET : 0), gro };
}

function grantedOffload(granted: number, gro: boolean): TunOffload {
  if ((granted & TUN_OFF_VNET) === 0) return NO_OFFLOAD;
  return {
    vnet: true,
    tso: (granted & TUN_OFF_TSO) !== 0,
    uso: (granted & TUN_OFF_USO) !== 0,
    tcpGro: gro,
    udpGro: gro && (granted & TUN_OFF_USO_KERNEL) !== 0,
  };
}

function openTun(name: string, finalName: string, offloads: number): [number, string, number] {
  try {
    return native().tunOpen(name, offloads);
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
