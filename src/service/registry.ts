/**
 * The service's devices: each a DeviceHost (its TUN in a container's namespace, its UDP bind in
 * the service's), a UAPI socket under RUN_BASE/<container namespace inode>/<name>.sock, and a
 * state record for crash recovery. A device goes when cwg_destroy asks, when its TUN vanishes
 * (the container's namespace went away, or `ip link del`), or on a fault of its own: then its
 * port, socket and record go with it, and no other device is affected.
 */
import { lstatSync, mkdirSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { isZero } from '../../crypto/keys.js';
import type { CryptoSuite } from '../../crypto/suite.js';
import { endpointOrReason, formatEndpoint, parseCidr, parseIp } from '../../noise/iptext.js';
import { Scratch } from '../../noise/scratch.js';
import type { DeviceChange, DeviceStatus, Logger } from '../../noise/types.js';
import { interfaceIndex } from '../../tun/ip.js';
import { DEFAULT_MTU } from '../../tun/tun.js';
import { CwgError } from '../cwg/errors.js';
import { DeviceHost } from '../device-host.js';
import { EADDRINUSE, formatGet } from '../uapi/protocol.js';
import { serveUapi, type UapiServer } from '../uapi/server.js';
import type { NetnsIdentity, ServiceOs } from './os.js';
import type { DeviceRecord, StateStore } from './state.js';

/** Where the per-device UAPI sockets live: RUN_BASE/<namespace inode>/<name>.sock. */
export const RUN_BASE = '/var/run/wireguard/cwg';

export interface RegistryOptions {
  readonly os: ServiceOs;
  readonly state: StateStore;
  readonly crypto: CryptoSuite;
  readonly logger: Logger;
  readonly runBase?: string;
  /** Makes a logger for one device (its name as prefix). */
  readonly deviceLogger?: (name: string) => Logger;
}

/** What creating a device takes. */
export interface DeviceSpec {
  readonly ns: NetnsIdentity;
  readonly name: string;
  readonly net: number;
  readonly host: 0 | 1;
  /** "10.0.8.1/31" */
  readonly cidr: string;
  readonly port: number;
  readonly privateKey: Uint8Array;
  readonly peer?: DeviceRecord['peer'];
}

/** Why devices left the registry, counted. */
export interface RegistryStats {
  created: number;
  destroyed: number;
  /** Their TUN vanished: container exit, `ip link del`. */
  vanished: number;
  /** An internal error in the device's own code path. */
  faults: number;
}

/** A directory only root can enter (created if needed), or an error naming what is wrong. */
function ensureDir(dir: string, mode: number): void {
  mkdirSync(dir, { recursive: true, mode });
  const st = lstatSync(dir);
  const uid = process.geteuid?.() ?? 0;
  if (!st.isDirectory()) throw new CwgError(`${dir} is not a directory; refusing to use it`);
  if (st.uid !== uid) throw new CwgError(`${dir} is owned by uid ${st.uid}, not ${uid}; refusing to use it`);
  if (st.mode & 0o022) throw new CwgError(`${dir} is writable by group or others; refusing to use it`);
}

export class ServiceDevice {
  private record: DeviceRecord;
  closing: Promise<void> | null = null;

  constructor(
    private readonly registry: Registry,
    readonly host: DeviceHost,
    readonly uapi: UapiServer,
    record: DeviceRecord,
  ) {
    this.record = record;
  }

  get name(): string {
    return this.record.name;
  }

  get nsKey(): string {
    return this.record.nsKey;
  }

  /** The inode of the container's network namespace (metrics label it so). */
  get nsInode(): number {
    return this.record.nsInode;
  }

  get port(): number {
    return this.host.port;
  }

  status(): DeviceStatus {
    return this.host.status();
  }

  /** Apply a validated change; on success the record follows (the peer cwg_connect sets). */
  configure(change: DeviceChange): number {
    const errno = this.host.configure(change);
    if (errno === 0) this.registry.recordOf(this);
    return errno;
  }

  /** The record as it is now: key, port and peer from the live device. */
  snapshot(): DeviceRecord {
    const st = this.host.status();
    const p = st.peers[0];
    const peer = p?.endpoint ? { publicKey: p.publicKey, endpoint: formatEndpoint(p.endpoint) } : (this.record.peer ?? null);
    const privateKey = st.privateKey && !isZero(st.privateKey) ? st.privateKey : this.record.privateKey;
    return { ...this.record, port: this.host.port || this.record.port, privateKey, peer };
  }

  setRecord(r: DeviceRecord): void {
    this.record = r;
  }
}

export class Registry {
  readonly stats: RegistryStats = { created: 0, destroyed: 0, vanished: 0, faults: 0 };
  private readonly devices = new Map<string, ServiceDevice>();
  private readonly runBase: string;
  /** One set of data-path buffers for all devices: they run one at a time on the event loop. */
  private readonly scratch = new Scratch();

  constructor(private readonly opts: RegistryOptions) {
    this.runBase = opts.runBase ?? RUN_BASE;
  }

  get size(): number {
    return this.devices.size;
  }

  /** The key of a device in `devices`: its namespace and its name. */
  private static key(nsKey: string, name: string): string {
    return `${nsKey}/${name}`;
  }

  all(): ServiceDevice[] {
    return [...this.devices.values()];
  }

  get(nsKey: string, name: string): ServiceDevice | null {
    return this.devices.get(Registry.key(nsKey, name)) ?? null;
  }

  /** The run directory of a container namespace's UAPI sockets. */
  runDir(inode: number): string {
    return join(this.runBase, String(inode));
  }

  /**
   * Make a device in the namespace of `nsFd`, all or nothing: TUN moved there, address, up,
   * key and UDP port, UAPI socket, state record. Throws CwgError (port in use, name taken, ...).
   */
  async create(nsFd: number, spec: DeviceSpec): Promise<ServiceDevice> {
    const { os, logger } = this.opts;
    const id = Registry.key(spec.ns.key, spec.name);
    if (this.devices.has(id)) throw new CwgError(`device ${spec.name} already exists`);
    const dlog = this.opts.deviceLogger?.(spec.name) ?? logger;
    let host: DeviceHost | null = null;
    let uapi: UapiServer | null = null;
    const runDir = this.runDir(spec.ns.inode);
    try {
      const tun = os.createTun(nsFd, spec.name, DEFAULT_MTU);
      host = new DeviceHost(
        { name: spec.name, logger: dlog, crypto: this.opts.crypto, mtu: DEFAULT_MTU, scratch: this.scratch },
        { tun, openUdp: (port, o) => os.openUdp(port, o), ...(os.openRouteMonitor ? { openRouteMonitor: () => os.openRouteMonitor!() } : {}) },
      );
      const [addrText, prefixText] = spec.cidr.split('/') as [string, string];
      const addr = parseIp(addrText);
      if (addr === null) throw new CwgError(`invalid device address ${spec.cidr}`);
      os.addAddress(nsFd, spec.name, addr, Number(prefixText));
      os.setUp(nsFd, spec.name);
      const errno = host.configure({ privateKey: spec.privateKey, listenPort: spec.port, peers: [] });
      if (errno === EADDRINUSE) throw new CwgError(`UDP port ${spec.port} is already in use`);
      if (errno !== 0) throw new CwgError(`cannot bind UDP port ${spec.port} (errno ${errno})`);
      if (spec.peer) {
        const ep = endpointOrReason(spec.peer.endpoint);
        if (typeof ep === 'string') throw new CwgError(`recorded peer endpoint of ${spec.name}: ${ep}`);
        const cidr = parseCidr(spec.cidr); // host bits masked: the /31
        host.configure({ replacePeers: true, peers: [{ publicKey: spec.peer.publicKey, endpoint: ep, replaceAllowedIps: true, allowedIps: [cidr] }] });
      }
      ensureDir(join(this.runBase, '..'), 0o755);
      ensureDir(this.runBase, 0o700);
      ensureDir(runDir, 0o700);
      const h = host;
      uapi = await serveUapi(
        join(runDir, `${spec.name}.sock`),
        {
          get: () => formatGet(h.status()),
          set: (change) => this.get(spec.ns.key, spec.name)?.configure(change) ?? h.configure(change),
          zoneIndex: interfaceIndex,
        },
        dlog,
      );
    } catch (e) {
      host?.close('create failed');
      await uapi?.close();
      removeDirIfEmpty(runDir);
      throw e instanceof CwgError ? e : new CwgError(`cannot create device ${spec.name}: ${(e as Error).message}`);
    }
    const record: DeviceRecord = {
      nsKey: spec.ns.key,
      nsInode: spec.ns.inode,
      name: spec.name,
      net: spec.net,
      host: spec.host,
      port: host.port,
      privateKey: spec.privateKey.slice(),
      peer: spec.peer ?? null,
    };
    const device = new ServiceDevice(this, host, uapi, record);
    this.devices.set(id, device);
    this.stats.created++;
    host.onClose((reason) => this.removed(device, reason, runDir));
    try {
      this.opts.state.save(record);
    } catch (e) {
      await this.destroy(device);
      throw new CwgError(`cannot record device ${spec.name}: ${(e as Error).message}`);
    }
    return device;
  }

  /** Write a device's record as it is now. */
  recordOf(device: ServiceDevice): void {
    const r = device.snapshot();
    device.setRecord(r);
    try {
      this.opts.state.save(r);
    } catch (e) {
      this.opts.logger.error(`cannot record device ${device.name}: ${(e as Error).message}`);
    }
  }

  /** Remove a device at once: its TUN (and so the link), port, socket, record. */
  async destroy(device: ServiceDevice): Promise<void> {
    this.stats.destroyed++;
    device.host.close('destroyed');
    await device.closing;
  }

  /**
   * Tidy the run directories after a crash: a UAPI socket nobody listens on any more (its
   * service was killed) is removed, and so is a run directory left empty. Live sockets, ours or
   * another service's, are never touched.
   */
  async sweepStale(): Promise<number> {
    let removed = 0;
    let dirs: string[];
    try {
      dirs = readdirSync(this.runBase);
    } catch {
      return 0;
    }
    for (const d of dirs) {
      if (!/^[0-9]+$/.test(d)) continue;
      const dir = join(this.runBase, d);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const n of names) {
        const path = join(dir, n);
        if (n.endsWith('.sock') && (await deadSocket(path))) {
          try {
            unlinkSync(path);
            removed++;
          } catch {
            /* raced */
          }
        }
      }
      removeDirIfEmpty(dir);
    }
    return removed;
  }

  /** Close everything (service shutdown): devices go, records stay for the next start. */
  async closeAll(): Promise<void> {
    const all = this.all();
    for (const d of all) {
      this.devices.delete(Registry.key(d.nsKey, d.name));
      d.host.close('service stopping');
    }
    await Promise.all(all.map((d) => d.uapi.close()));
    for (const d of all) removeDirIfEmpty(this.runDir(d.nsInode));
  }

  private removed(device: ServiceDevice, reason: string, runDir: string): void {
    const id = Registry.key(device.nsKey, device.name);
    if (this.devices.get(id) !== device) return; // closeAll: the record stays
    this.devices.delete(id);
    if (reason.startsWith('internal error')) this.stats.faults++;
    else if (reason !== 'destroyed') this.stats.vanished++;
    this.opts.state.delete(device.nsKey, device.name);
    this.opts.logger.verbose(`device ${device.name} removed: ${reason}`);
    device.closing = device.uapi.close().then(() => removeDirIfEmpty(runDir));
  }
}

/** True when `path` is a UNIX socket nobody accepts on (connect: ECONNREFUSED). */
function deadSocket(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      if (!lstatSync(path).isSocket()) return resolve(false);
    } catch {
      return resolve(false);
    }
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

function removeDirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    /* not empty or already gone */
  }
}
