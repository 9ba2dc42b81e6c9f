/**
 * The daemon: one WireGuard interface. Wires the sans-I/O Device to a TUN device, a UDP bind
 * and the UAPI socket, as wireguard-go does for `wireguard-go IFNAME`.
 *
 * Data path (all on the event loop, no thread-pool job per packet):
 *   TUN batch  -> Device.sendPacket()      -> UdpBind.send() ... UdpBind.flush() (sendmmsg)
 *   UDP batch  -> Device.receiveDatagram() -> Tun.queue() / UdpBind.send() ... flush()
 *   timer      -> Device.tick()            -> UdpBind.send() ... flush()
 * Device sees one inner packet per call either way; the TUN and UDP layers segment what the
 * kernel hands over in super-packets, and coalesce what a batch queued (docs/IO.md).
 */
import { Device } from '../noise/device.js';
import { UdpBind } from '../tun/udp.js';
import { Tun } from '../tun/tun.js';
import { serveUapi, type UapiServer } from './uapi/server.js';
import { DEFAULT_SOCKET_DIR, UAPI_ERRNO, formatGet, uapiSocketPath } from './uapi/protocol.js';
import type { DeviceChange, Endpoint, Logger } from '../noise/types.js';

export const DEFAULT_RUN_DIR = DEFAULT_SOCKET_DIR;
export const DEFAULT_MTU = 1420;

const { EADDRINUSE, EIO } = UAPI_ERRNO;

/** Timers are served with this resolution at worst (boringtun uses 250 ms too). */
const MAX_TICK_MS = 250;

export interface DaemonOptions {
  ifname: string;
  /** Create the TUN here, then move it into /proc/PID/ns/net (renamed to ifname). */
  netnsPid?: number;
  runDir?: string;
  mtu?: number;
  logger: Logger;
}

/** For `Daemon.overTun`: a daemon without a UAPI socket, over a Tun made elsewhere. */
export interface DaemonOverTunOptions {
  logger: Logger;
  mtu?: number;
  /** Bind UDP to 127.0.0.1 and ::1 only (the JIT warm-up). */
  udpLoopback?: boolean;
}

/** Linux interface names: 1..15 bytes, no '/', no white space, not '.' or '..'. */
export function validateIfname(name: string): string | null {
  if (!name) return 'interface name is empty';
  if (Buffer.byteLength(name) > 15) return `interface name '${name}' is longer than 15 bytes`;
  if (name === '.' || name === '..' || /[/\s:]/.test(name) || /[\x00-\x1f\x7f]/.test(name)) {
    return `interface name '${name}' is not valid`;
  }
  return null;
}

export class Daemon {
  readonly ifname: string;
  readonly socketPath: string;
  private readonly logger: Logger;
  private readonly tun: Tun;
  private readonly device: Device;
  private udp: UdpBind | null = null;
  private listenPort = 0;
  private fwmark = 0;
  private uapi: UapiServer | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = Number.POSITIVE_INFINITY;
  private closed = false;
  private readonly udpLoopback: boolean;
  private readonly closeWaiters: Array<(reason: string) => void> = [];

  private constructor(opts: DaemonOptions & { udpLoopback?: boolean }, tun: Tun) {
    this.ifname = opts.ifname;
    this.udpLoopback = opts.udpLoopback === true;
    this.logger = opts.logger;
    this.socketPath = uapiSocketPath(opts.ifname, opts.runDir ?? DEFAULT_RUN_DIR);
    this.tun = tun;
    this.device = new Device({
      logger: opts.logger,
      mtu: opts.mtu ?? DEFAULT_MTU,
      sinks: {
        sendDatagram: (data, to) => this.sendDatagram(data, to),
        writePacket: (packet) => {
          this.tun.queue(packet);
        },
      },
    });
  }

  /** Create the TUN device and the UAPI socket. Throws with a one-line message on failure, leaving nothing behind. */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const bad = validateIfname(opts.ifname);
    if (bad) throw new Error(bad);
    const tun = Tun.create(opts.ifname, { mtu: opts.mtu ?? DEFAULT_MTU, ...(opts.netnsPid !== undefined ? { netnsPid: opts.netnsPid } : {}) });
    const d = new Daemon(opts, tun);
    try {
      d.uapi = await serveUapi(
        d.socketPath,
        {
          get: () => formatGet({ ...d.device.status(), listenPort: d.listenPort, fwmark: d.fwmark }),
          set: (change) => d.applyChange(change),
        },
        opts.logger,
      );
    } catch (e) {
      tun.close();
      throw e;
    }
    d.wire();
    opts.logger.verbose(`Device started (UAPI at ${d.socketPath})`);
    return d;
  }

  /**
   * A daemon over `tun` with no UAPI socket, configured through `configure`: the same data path
   * as `start` gives, for the JIT warm-up (src/warmup.ts) and tests. Closing it closes `tun`.
   */
  static overTun(tun: Tun, opts: DaemonOverTunOptions): Daemon {
    const d = new Daemon({ ifname: tun.name, logger: opts.logger, runDir: '/nonexistent', udpLoopback: opts.udpLoopback ?? false, ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}) }, tun);
    d.wire();
    return d;
  }

  /** Connect the TUN to the device and start the timer (one place, for start and overTun alike). */
  private wire(): void {
    const tun = this.tun;
    tun.onRemoved((reason) => this.close(`interface ${this.ifname} removed: ${reason}`));
    tun.onMtuChange((mtu) => {
      this.device.setMtu(mtu);
      this.logger.verbose(`MTU updated: ${mtu}`);
    });
    tun.start(
      (pkt) => this.device.sendPacket(pkt),
      () => this.afterBatch(),
    );
    this.scheduleTick(MAX_TICK_MS);
  }

  /** The UDP port bound (0 before the first configuration that binds one). */
  get port(): number {
    return this.listenPort;
  }

  /** Apply a validated configuration change, as a UAPI set does; returns 0 or a UAPI errno. */
  configure(change: DeviceChange): number {
    return this.applyChange(change);
  }

  /** Resolves with the reason when the daemon has shut down. */
  closedPromise(): Promise<string> {
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  /** Apply a validated UAPI set transaction: the port first (it can fail), then the rest at once. */
  private applyChange(change: DeviceChange): number {
    if (this.closed) return EIO;
    const wantsPort = change.listenPort !== undefined && (change.listenPort !== this.listenPort || !this.udp);
    const needsBind = !this.udp && (wantsPort || (change.privateKey != null && change.privateKey.some((b) => b !== 0)));
    if (wantsPort || needsBind) {
      const port = change.listenPort ?? this.listenPort;
      let bind: UdpBind;
      try {
        // autoFlush off: every path that can send (batches, timers, UAPI sets) ends in flush().
        bind = UdpBind.open(port, { fwmark: change.fwmark ?? this.fwmark, autoFlush: false, loopback: this.udpLoopback });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        this.logger.error(`UDP bind to port ${port} failed: ${(e as Error).message}`);
        return code === 'EADDRINUSE' ? EADDRINUSE : EIO;
      }
      this.udp?.close();
      this.udp = bind;
      this.listenPort = bind.port;
      bind.onStickyFailure((ep) => this.device.clearEndpointSource(ep));
      bind.onError((e) => this.logger.error(`UDP receive: ${e.message}`));
      bind.start(
        (data, from) => this.device.receiveDatagram(data, from),
        () => this.afterBatch(),
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

  private flush(): void {
    this.tun.flush();
    this.udp?.flush();
  }

  /** After an input batch: send what it produced, and run timers it may have made due. */
  private afterBatch(): void {
    const next = this.device.tick();
    this.flush();
    if (performance.now() + next < this.timerDue) this.scheduleTick(next);
  }

  /** Arm the timer for `ms` from now (at most MAX_TICK_MS, so clock jumps are caught up quickly). */
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
    const next = this.device.tick();
    this.flush();
    this.scheduleTick(next);
  };

  /** Shut down: remove the socket, close the UDP port and the TUN, zero the keys. Idempotent. */
  close(reason = 'shutting down'): void {
    if (this.closed) return;
    this.closed = true;
    this.logger.verbose(`Device closing: ${reason}`);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.uapi?.close();
    // The closed UdpBind stays referenced (closed, it sends nothing): the warm-up keeps its
    // closed Daemons, and through them the UdpBind's hidden class (see src/warmup.ts).
    this.udp?.close();
    this.tun.close();
    this.device.close();
    for (const w of this.closeWaiters.splice(0)) w(reason);
  }
}
