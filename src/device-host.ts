/**
 * One WireGuard interface on real I/O: the sans-I/O Device wired to its TUN, its UDP bind and
 * its timers, all on the event loop. The per-interface daemon (daemon.ts) wraps one in a UAPI
 * socket; the JIT warm-up (warmup.ts) runs throw-away ones over packet pairs, so that the code
 * real traffic runs is the code it compiled.
 *
 * Data path (no thread-pool job per packet):
 *   TUN batch  -> Device.sendPacket()      -> UdpBind.send() ... UdpBind.flush() (sendmmsg)
 *   UDP batch  -> Device.receiveDatagram() -> Tun.queue() / UdpBind.send() ... flush()
 *   timer      -> Device.tick()            -> UdpBind.send() ... flush()
 * Device sees one inner packet per call either way; the TUN and UDP layers segment what the
 * kernel hands over in super-packets, and coalesce what a batch queued (docs/IO.md).
 * Every path that can send ends in flush(), so the UDP binds are opened with autoFlush off.
 */
import type { CryptoSuite } from '../crypto/suite.js';
import { Device } from '../noise/device.js';
import { OwnDatagrams } from '../noise/loopguard.js';
import type { DeviceMetrics } from '../noise/metrics.js';
import type { Scratch } from '../noise/scratch.js';
import type { DeviceChange, DeviceStatus, Endpoint, Logger } from '../noise/types.js';
import { Errno } from '../tun/errno.js';
import type { RouteMonitor } from '../tun/rtmon.js';
import { DEFAULT_MTU, type Tun } from '../tun/tun.js';
import type { UdpBind, UdpBindOptions } from '../tun/udp.js';
import { KeepWarm } from './keep-warm.js';
import { StickyRoutes } from './sticky-routes.js';

/**
 * The UDP ports of every interface of this process: a packet from one's TUN that is another's
 * datagram is nesting, or, if it leads back, a routing loop (noise/loopguard.ts).
 */
const OWN_DATAGRAMS = new OwnDatagrams();

/** Sticky endpoints not seen before get their route check this often at most. */
const STICKY_CHECK_MS = 1000;

/**
 * The longest the timer sleeps: the engine's deadlines are exact (every batch and every change
 * recomputes the next one), so this is a safety net, and the rate at which an idle device
 * wakes. bench/service.ts measures what idle devices cost (docs/BENCHMARKS.md).
 */
const MAX_TICK_MS = 1000;

/** The OS side of a DeviceHost. */
export interface DeviceHostIo {
  /** The interface's TUN (a device, or a packet pair); the host starts, writes and closes it. */
  readonly tun: Tun;
  /** Bind the UDP port (called for the first bind and for every port change). Throws with `.code`. */
  openUdp(port: number, options: UdpBindOptions): UdpBind;
  /**
   * A route monitor in the UDP sockets' namespace, so that sticky sources follow route changes
   * (sticky-routes.ts). Without one they are given up only when a send fails. Throws with `.code`.
   */
  openRouteMonitor?(): RouteMonitor;
}

export interface DeviceHostOptions {
  /** For log lines and messages. */
  readonly name: string;
  readonly logger: Logger;
  readonly crypto: CryptoSuite;
  /** The TUN's MTU at creation: the engine pads up to it (default 1420). */
  readonly mtu?: number;
  /** The engine's data-path buffers, shared by every interface of a process (default: its own). */
  readonly scratch?: Scratch;
  /** The keep-warm tick input batches feed (default: the process's, see keep-warm.ts). */
  readonly keepWarm?: KeepWarm;
}

export class DeviceHost {
  readonly name: string;
  private readonly logger: Logger;
  private readonly io: DeviceHostIo;
  private readonly device: Device;
  private udp: UdpBind | null = null;
  private listenPort = 0;
  private fwmark = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = Number.POSITIVE_INFINITY;
  private immediate: NodeJS.Immediate | null = null;
  /** Inside Tun.readNow from afterBatch: the nested batch's afterBatch only sends. */
  private readingNow = false;
  private closed = false;
  private readonly routes: RouteMonitor | null = null;
  private readonly sticky: StickyRoutes | null = null;
  private routesChanged = false;
  private stopRoutes: (() => void) | null = null;
  private lastStickyCheck = Number.NEGATIVE_INFINITY;
  private readonly closeWaiters: Array<(reason: string) => void> = [];
  private readonly keepWarm: KeepWarm;

  /** Wires the TUN to the engine and starts reading it; the UDP port is bound by the first configure. */
  constructor(opts: DeviceHostOptions, io: DeviceHostIo) {
    this.name = opts.name;
    this.logger = opts.logger;
    this.io = io;
    this.keepWarm = opts.keepWarm ?? KeepWarm.process;
    this.device = new Device({
      logger: opts.logger,
      crypto: opts.crypto,
      mtu: opts.mtu ?? DEFAULT_MTU,
      ownDatagrams: OWN_DATAGRAMS,
      ...(opts.scratch !== undefined ? { scratch: opts.scratch } : {}),
      sinks: {
        sendDatagram: (data, to) => this.sendDatagram(data, to),
        writePacket: (packet) => {
          this.io.tun.queue(packet);
        },
      },
    });
    const tun = io.tun;
    tun.onRemoved((reason) => this.close(`interface ${this.name} removed: ${reason}`));
    tun.onMtuChange((mtu) => {
      this.device.setMtu(mtu);
      this.logger.verbose(`MTU updated: ${mtu}`);
    });
    tun.start(
      (pkt) => this.device.sendPacket(pkt),
      () => this.guarded(this.afterInput),
    );
    if (io.openRouteMonitor) {
      try {
        this.routes = io.openRouteMonitor();
        this.sticky = new StickyRoutes(this.device, this.routes, () => this.fwmark, this.logger);
        this.stopRoutes = this.routes.onChange(() => {
          // Notifications come in bursts: one check after the burst's batch.
          if (this.routesChanged) return;
          this.routesChanged = true;
          setImmediate(() => {
            this.routesChanged = false;
            if (!this.closed) void this.sticky?.routesChanged();
          });
        });
      } catch (e) {
        this.logger.error(`Route monitor unavailable (${(e as Error).message}): sticky sources follow only failed sends`);
      }
    }
    this.scheduleTick(MAX_TICK_MS);
  }

  /**
   * Runs `fn`; an exception escaping it (a bug: the engine itself never throws on input) closes
   * this interface alone, with the error as the reason, so that nothing else on the event loop
   * (other interfaces of the service) is affected.
   */
  private guarded(fn: () => void): void {
    try {
      fn.call(this);
    } catch (e) {
      this.logger.error(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      this.close(`internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** The UDP port bound (0 before the first configuration that binds one). */
  get port(): number {
    return this.listenPort;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The configuration and counters, as a UAPI get reports them. */
  status(): DeviceStatus {
    return { ...this.device.status(), listenPort: this.listenPort, fwmark: this.fwmark };
  }

  /** The engine's counters (src/metrics/), with the UDP port actually bound. */
  metrics(): DeviceMetrics & { listenPort: number } {
    return { ...this.device.metrics(), listenPort: this.listenPort };
  }

  /** Calls `cb` synchronously with the reason as the host shuts down (at once if it has). */
  onClose(cb: (reason: string) => void): void {
    if (this.closed) cb('closed');
    else this.closeWaiters.push(cb);
  }

  /** Resolves with the reason when the host has shut down. */
  closedPromise(): Promise<string> {
    return new Promise((resolve) => {
      if (this.closed) resolve('closed');
      else this.closeWaiters.push(resolve);
    });
  }

  /**
   * Apply a validated configuration change (a UAPI set transaction): the port first (it can
   * fail, and then nothing changes), then the rest at once. Returns 0 or a positive errno.
   */
  configure(change: DeviceChange): number {
    if (this.closed) return Errno.EIO;
    const wantsPort = change.listenPort !== undefined && (change.listenPort !== this.listenPort || !this.udp);
    const needsBind = !this.udp && (wantsPort || change.privateKey?.some((b) => b !== 0));
    if (wantsPort || needsBind) {
      const port = change.listenPort ?? this.listenPort;
      let bind: UdpBind;
      try {
        bind = this.io.openUdp(port, { fwmark: change.fwmark ?? this.fwmark, autoFlush: false });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        this.logger.error(`UDP bind to port ${port} failed: ${(e as Error).message}`);
        return code === 'EADDRINUSE' ? Errno.EADDRINUSE : Errno.EIO;
      }
      this.udp?.close();
      this.udp = bind;
      this.listenPort = bind.port;
      this.device.setBoundPort(bind.port);
      bind.onStickyFailure((ep) => this.device.clearEndpointSource(ep));
      bind.onError((e) => this.logger.error(`UDP receive: ${e.message}`));
      bind.start(
        (data, from) => this.device.receiveDatagram(data, from),
        () => this.guarded(this.afterInput),
      );
      this.logger.verbose(`UDP bind has been updated (port ${bind.port})`);
    }
    if (change.fwmark !== undefined && change.fwmark !== this.fwmark) {
      this.fwmark = change.fwmark;
      this.udp?.setFwmark(change.fwmark);
    }
    this.device.apply(change);
    this.afterBatch();
    return 0;
  }

  private sendDatagram(data: Uint8Array, to: Endpoint): void {
    this.udp?.send(data, to);
  }

  /** Writes and sends what was queued; returns the packets written to the TUN. */
  private flush(): number {
    const written = this.io.tun.flush();
    this.udp?.flush();
    return written;
  }

  /** After a batch read from the TUN or the UDP socket: traffic flows, so the process stays warm. */
  private afterInput(): void {
    this.keepWarm.touch();
    this.afterBatch();
  }

  /**
   * After an input batch: send what it produced, then run the timers it may have made due, and
   * send what they produced. The batch's packets go first: the timers' work (and, under load,
   * the queued handshakes tick() processes) is not on their latency path.
   * Packets written to the TUN are often answered by the kernel within the write (a ping's echo,
   * the ACK of a local TCP stack): the TUN is read at once, so that the answer is encrypted and
   * sent in this turn of the event loop rather than the next. That nested batch ends here too,
   * where it only sends: it writes nothing to the TUN, so it reads no further, and the timers
   * run once, in the outer batch (each tick() is a new turn of the handshake budget, so a
   * second one would let a flood's queued handshakes hold the event loop twice as long).
   */
  private afterBatch(): void {
    const written = this.flush();
    // The nested batch returns here having sent. No operation of its own: every one it runs has
    // run in the warm-up (src/warmup.ts), whose packet pairs never answer within a write.
    if (this.readingNow) return;
    if (written > 0) {
      this.readingNow = true;
      try {
        this.io.tun.readNow();
      } finally {
        this.readingNow = false;
      }
    }
    const next = this.device.tick();
    this.flush();
    if (next === 0) this.soon();
    else if (performance.now() + next < this.timerDue) this.scheduleTick(next);
  }

  /**
   * The engine has queued handshakes it may process now (tick() returned 0): tick again in the
   * loop's next check phase, after the poll phase has read what else arrived, so that queued
   * handshakes never hold up the sockets.
   */
  private soon(): void {
    if (this.immediate === null && !this.closed) this.immediate = setImmediate(this.onImmediate);
  }

  private readonly onImmediate = (): void => {
    this.immediate = null;
    this.guarded(this.afterBatch);
  };

  /** Arm the timer for `ms` from now (at most MAX_TICK_MS). */
  private scheduleTick(ms: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    const delay = Math.max(1, Math.min(ms, MAX_TICK_MS));
    this.timerDue = performance.now() + delay;
    this.timer = setTimeout(this.onTimer, delay);
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.timerDue = Number.POSITIVE_INFINITY;
    this.guarded(this.timerTick);
  };

  private timerTick(): void {
    const next = this.device.tick();
    this.flush();
    if (this.sticky !== null) {
      const now = performance.now();
      if (now - this.lastStickyCheck >= STICKY_CHECK_MS) {
        this.lastStickyCheck = now;
        void this.sticky.checkNew();
      }
    }
    if (next === 0) this.soon();
    this.scheduleTick(next === 0 ? MAX_TICK_MS : next);
  }

  /**
   * Shut down: close the UDP port and the TUN, zero the keys. Idempotent. The closed UdpBind
   * stays referenced: it sends nothing, and keeping it keeps its hidden class (see warmup.ts).
   */
  close(reason = 'shutting down'): void {
    if (this.closed) return;
    this.closed = true;
    this.logger.verbose(`Device closing: ${reason}`);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    this.udp?.close();
    this.stopRoutes?.();
    this.routes?.release();
    this.io.tun.close();
    this.device.close();
    for (const w of this.closeWaiters.splice(0)) w(reason);
  }
}
