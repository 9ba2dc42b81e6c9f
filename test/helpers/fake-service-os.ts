/**
 * The host service without root: a ServiceOs whose "namespaces" are temporary files (their
 * inode is the identity), whose TUNs are packet pairs and whose UDP binds are on loopback; and
 * an in-memory control connection. The registry, the commands and the control server run as in
 * production over them.
 */
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIp } from '../../noise/iptext.js';
import type { ControlConnection } from '../../src/service/control.js';
import type { IpAddress, NetnsIdentity, ServiceOs } from '../../src/service/os.js';
import { PROTOCOL_TAG } from '../../tun/control-protocol.js';
import { Tun } from '../../tun/tun.js';
import { UdpBind, type UdpBindOptions } from '../../tun/udp.js';

export interface FakeLink {
  tun: Tun;
  /** The other end of the packet pair: what "the container" reads and writes. */
  peer: Tun;
  addrs: string[];
  up: boolean;
}

export class FakeOs implements ServiceOs {
  readonly dir = mkdtempSync(join(tmpdir(), 'wgts-fake-ns-'));
  /** Links by namespace key, then name. */
  readonly links = new Map<string, Map<string, FakeLink>>();
  /** Fail the next call of this operation (tests of all-or-nothing). */
  failNext: 'createTun' | 'addAddress' | 'setUp' | null = null;
  private nsCount = 0;

  /** A new "namespace": a file whose descriptor the client would send. Returns its path. */
  namespace(): string {
    const p = join(this.dir, `ns${this.nsCount++}`);
    writeFileSync(p, '');
    return p;
  }

  /** Open a namespace as the client does. */
  open(path: string): number {
    return openSync(path, 'r');
  }

  identify(fd: number): NetnsIdentity {
    const ino = fstatSync(fd).ino;
    return { key: String(ino), inode: ino };
  }

  private nsLinks(fd: number): Map<string, FakeLink> {
    const k = this.identify(fd).key;
    let m = this.links.get(k);
    if (!m) {
      m = new Map();
      this.links.set(k, m);
    }
    return m;
  }

  private failing(op: FakeOs['failNext']): void {
    if (this.failNext === op) {
      this.failNext = null;
      throw new Error(`${op} failed (injected)`);
    }
  }

  linkExists(fd: number, name: string): boolean {
    return this.nsLinks(fd).has(name);
  }

  createTun(fd: number, name: string): Tun {
    this.failing('createTun');
    const m = this.nsLinks(fd);
    if (m.has(name)) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
    const [tun, peer] = Tun.packetPair([name, `${name}-peer`]);
    const link: FakeLink = { tun, peer, addrs: [], up: false };
    m.set(name, link);
    // Closing the TUN deletes the link, as a real non-persistent TUN does.
    const close = tun.close.bind(tun);
    tun.close = () => {
      if (m.get(name) === link) m.delete(name);
      peer.close();
      close();
    };
    return tun;
  }

  addAddress(fd: number, name: string, address: IpAddress, prefix: number): void {
    this.failing('addAddress');
    this.nsLinks(fd)
      .get(name)!
      .addrs.push(`${formatIp(address.family, address.bytes)}/${prefix}`);
  }

  setUp(fd: number, name: string): void {
    this.failing('setUp');
    this.nsLinks(fd).get(name)!.up = true;
  }

  deleteLink(fd: number, name: string): void {
    const l = this.nsLinks(fd).get(name);
    l?.tun.close();
    this.nsLinks(fd).delete(name);
  }

  openUdp(port: number, options: UdpBindOptions): UdpBind {
    return UdpBind.open(port, { ...options, loopback: true });
  }

  cleanup(): void {
    for (const m of this.links.values()) for (const l of m.values()) l.tun.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One end of an in-memory control connection, with what the service sent. */
export class FakeConnection implements ControlConnection {
  readonly sent: string[][] = [];
  closed = false;
  private packetCb: ((data: Uint8Array, fd: number) => void) | null = null;
  private closeCbs: Array<() => void> = [];
  private doneWaiters: Array<() => void> = [];

  constructor(
    readonly uid = 0,
    readonly gid = 0,
    readonly groups: readonly number[] = [],
    readonly pid = 1,
  ) {}

  onPacket(cb: (data: Uint8Array, fd: number) => void): void {
    this.packetCb = cb;
  }

  onClose(cb: () => void): void {
    this.closeCbs.push(cb);
  }

  send(data: Uint8Array): boolean {
    if (this.closed) return false;
    this.sent.push(new TextDecoder().decode(data).split('\0'));
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cb of this.closeCbs.splice(0)) cb();
    for (const w of this.doneWaiters.splice(0)) w();
  }

  /** The client sends its request (fields after the protocol tag). */
  request(fields: readonly string[], fd = -1): void {
    this.packetCb!(new TextEncoder().encode([PROTOCOL_TAG, ...fields].join('\0')), fd);
  }

  /** Resolves when the service has closed the connection. */
  finished(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((r) => this.doneWaiters.push(r));
  }

  /** The `done` answer: code, stdout, stderr. */
  get answer(): { code: number; stdout: string; stderr: string } | null {
    const d = this.sent.find((f) => f[1] === 'done');
    return d ? { code: Number(d[2]), stdout: d[3]!, stderr: d[4]! } : null;
  }
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* closed */
  }
}
