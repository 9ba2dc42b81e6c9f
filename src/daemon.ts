/**
 * The per-interface daemon, as wireguard-go is for `wireguard-go IFNAME`: a DeviceHost over a
 * real TUN device and UDP bind, configured through a UAPI socket at RUN_DIR/IFNAME.sock.
 */
import type { CryptoSuite } from '../crypto/suite.js';
import type { Logger } from '../noise/types.js';
import { ifnameProblem } from '../tun/ifname.js';
import { interfaceIndex } from '../tun/ip.js';
import { selectSuite } from '../tun/openssl.js';
import { RouteMonitor } from '../tun/rtmon.js';
import { DEFAULT_MTU, Tun } from '../tun/tun.js';
import { UdpBind } from '../tun/udp.js';
import { DeviceHost } from './device-host.js';
import type { MetricsAddress } from './metrics/address.js';
import { type MetricsServer, serveMetrics } from './metrics/server.js';
import { addDeviceMetrics } from './metrics/wireguard.js';
import { DEFAULT_SOCKET_DIR, formatGet, uapiSocketPath } from './uapi/protocol.js';
import { serveUapi, type UapiServer } from './uapi/server.js';
import { collectGarbage } from './warmup.js';

export const DEFAULT_RUN_DIR = DEFAULT_SOCKET_DIR;

export interface DaemonOptions {
  ifname: string;
  /** Create the TUN here, then move it into /proc/PID/ns/net (renamed to ifname). */
  netnsPid?: number;
  runDir?: string;
  mtu?: number;
  logger: Logger;
  /** The engine's crypto (default: the addon's OpenSSL suite when built, else crypto's jsSuite). */
  crypto?: CryptoSuite;
  /** Serve Prometheus metrics there (docs/METRICS.md; default: none). */
  metrics?: MetricsAddress;
}

export class Daemon {
  readonly ifname: string;
  readonly socketPath: string;

  private constructor(
    private readonly host: DeviceHost,
    uapi: UapiServer,
    readonly metrics: MetricsServer | null,
  ) {
    this.ifname = host.name;
    this.socketPath = uapi.path;
    // Synchronously, so the sockets are gone before anyone awaiting closedPromise() exits.
    host.onClose(() => {
      void uapi.close();
      void metrics?.close();
    });
  }

  /** Create the TUN device and the UAPI socket. Throws with a one-line message on failure, leaving nothing behind. */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const bad = ifnameProblem(opts.ifname);
    if (bad) throw new Error(bad);
    const mtu = opts.mtu ?? DEFAULT_MTU;
    const tun = Tun.create(opts.ifname, { mtu, ...(opts.netnsPid !== undefined ? { netnsPid: opts.netnsPid } : {}) });
    const crypto = opts.crypto ?? selectSuite(undefined);
    const host = new DeviceHost(
      { name: opts.ifname, logger: opts.logger, crypto, mtu },
      { tun, openUdp: (port, o) => UdpBind.open(port, o), openRouteMonitor: () => RouteMonitor.shared() },
    );
    let uapi: UapiServer;
    try {
      uapi = await serveUapi(
        uapiSocketPath(opts.ifname, opts.runDir ?? DEFAULT_RUN_DIR),
        { get: () => formatGet(host.status()), set: (change) => host.configure(change), zoneIndex: interfaceIndex, reclaim: () => void collectGarbage() },
        opts.logger,
      );
    } catch (e) {
      host.close('start-up failed');
      throw e;
    }
    let metrics: MetricsServer | null = null;
    if (opts.metrics !== undefined) {
      try {
        metrics = await serveMetrics(opts.metrics, (x) => addDeviceMetrics(x, [{ name: opts.ifname, metrics: host.metrics() }]), opts.logger);
      } catch (e) {
        host.close('start-up failed');
        await uapi.close();
        throw e;
      }
    }
    opts.logger.verbose(`Device started (UAPI at ${uapi.path})`);
    return new Daemon(host, uapi, metrics);
  }

  /** The UDP port bound (0 before the first configuration that binds one). */
  get port(): number {
    return this.host.port;
  }

  /** Resolves with the reason when the daemon has shut down. */
  closedPromise(): Promise<string> {
    return this.host.closedPromise();
  }

  /** Shut down: remove the socket, close the UDP port and the TUN, zero the keys. Idempotent. */
  close(reason = 'shutting down'): void {
    this.host.close(reason);
  }
}
