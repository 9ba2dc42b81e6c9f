/**
 * A two-site lab for the cwg end-to-end tests, all inside network namespaces made here:
 *
 *   site A (netns) 192.168.77.1/24 ──veth── 192.168.77.2/24 site B (netns)
 *      └ containers: processes in network namespaces of their own, started from the site
 *        (`ip netns exec SITE unshare -n sleep`), so their /proc/PID/ns/net is the container's
 *
 * cwg runs inside a site (`ip netns exec SITE node bin/cwg ...`): its daemons and their UDP
 * ports live in the site namespace, their devices in the containers. Every name is unique
 * (pid + random), and `cleanup()` removes everything, also after a failure.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { skipReason } from './netns.js';
import { CWG_BIN, pidAlive, ROOT, type RunResult, run, waitFor, which } from './proc.js';

export const RUN_BASE = '/var/run/wireguard/cwg';
export const STATE_BASE = '/run/wireguard-ts';

/** Why the end-to-end tests cannot run here, or null when they can. */
export function e2eSkipReason(extra: string[] = []): string | null {
  const missing = skipReason('nsenter', 'unshare', ...extra);
  if (missing) return missing;
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli', 'cwg.js'))) return 'needs the compiled program (npx tsc -p .)';
  if (!existsSync(join(ROOT, 'dist', 'src', 'daemon.js'))) return 'needs the compiled daemon';
  return null;
}

/** 10.0.0.0 + 2*net + host: the address cwg gives `host` of network `net`, computed here independently. */
export function cwgAddr(net: number, host: number): string {
  const o = 2 * net + host;
  return `10.${(o >>> 16) & 255}.${(o >>> 8) & 255}.${o & 255}`;
}

/** Synchronous `ip ...` that must succeed. */
export function ip(args: readonly string[]): string {
  const r = spawnSync(which('ip')!, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

export function netnsInodeOf(pid: number): number {
  return statSync(`/proc/${pid}/ns/net`).ino;
}

export interface Site {
  ns: string;
  veth: string;
  addr: string;
  inode: number;
}

export interface Container {
  pid: number;
  site: Site;
  inode: number;
  proc: ChildProcess;
}

/** The wireguard-ts daemons (by pid) whose network namespace is `inode`. */
export function daemonsIn(inode: number): number[] {
  return processesIn(inode, (cmd) => cmd.some((a) => a.endsWith('bin/wireguard-ts') || a.endsWith('wireguard-go')));
}

/** The wireguard-ts host services (by pid) whose network namespace is `inode`. */
export function servicesIn(inode: number): number[] {
  return processesIn(inode, (cmd) => cmd.some((a) => a.endsWith('dist/src/cli/service.js') || a.endsWith('bin/wireguard-ts-service')));
}

function processesIn(inode: number, match: (cmdline: string[]) => boolean): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      if (statSync(`/proc/${d}/ns/net`).ino !== inode) continue;
      if (match(readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0'))) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Where the host service of a site keeps its device records (one file a device). */
export function stateDirOf(site: Site): string {
  return join(STATE_BASE, String(site.inode));
}

/** How many devices the host service of `site` holds (its records). */
export function devicesIn(site: Site): number {
  try {
    return readdirSync(stateDirOf(site)).filter((f) => f.endsWith('.json')).length;
  } catch {
    return 0;
  }
}

export class Lab {
  readonly id = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
  readonly sites: Site[] = [];
  readonly containers: Container[] = [];
  private readonly extraProcs: ChildProcess[] = [];
  private readonly extraPids: number[] = [];

  /** Two sites joined by a veth pair, IPv6 off on the link (so that only our traffic crosses). */
  setup(): [Site, Site] {
    const a = `cwgt-${this.id}-a`;
    const b = `cwgt-${this.id}-b`;
    for (const ns of [a, b]) {
      ip(['netns', 'add', ns]);
      this.sites.push({ ns, veth: '', addr: '', inode: statSync(`/run/netns/${ns}`).ino });
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    const [sa, sb] = this.sites as [Site, Site];
    sa.veth = `va${this.id}`.slice(0, 15);
    sb.veth = `vb${this.id}`.slice(0, 15);
    sa.addr = '192.168.77.1';
    sb.addr = '192.168.77.2';
    ip(['-n', a, 'link', 'add', sa.veth, 'type', 'veth', 'peer', 'name', sb.veth, 'netns', b]);
    for (const s of [sa, sb]) {
      spawnSync(which('ip')!, ['netns', 'exec', s.ns, 'sysctl', '-q', '-w', `net.ipv6.conf.${s.veth}.disable_ipv6=1`]);
      ip(['-n', s.ns, 'addr', 'add', `${s.addr}/24`, 'dev', s.veth]);
      ip(['-n', s.ns, 'link', 'set', s.veth, 'up']);
    }
    return [sa, sb];
  }

  /** One more site, alone (no link to the others): for a host service of its own. */
  lonelySite(tag: string): Site {
    const ns = `cwgt-${this.id}-${tag}`;
    ip(['netns', 'add', ns]);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    const site: Site = { ns, veth: '', addr: '127.0.0.1', inode: statSync(`/run/netns/${ns}`).ino };
    this.sites.push(site);
    return site;
  }

  /**
   * Start the host service of `site` ourselves (`wireguard-ts-service ARGS` in the site), as
   * systemd would, and wait until it answers. Cleanup stops it.
   */
  async startService(site: Site, args: readonly string[] = []): Promise<ChildProcess> {
    const p = this.spawnOwned(which('ip')!, ['netns', 'exec', site.ns, process.execPath, join(ROOT, 'bin', 'wireguard-ts-service'), ...args]);
    let err = '';
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    // Its control socket appears in the site's /proc/net/unix (a client now would start another service).
    const up = await waitFor(async () => (await this.inSite(site, which('cat')!, ['/proc/net/unix'])).stdout.includes('@wireguard-ts/control'), 10_000, 50);
    if (!up) throw new Error(`the host service did not start: ${err.trim()}`);
    return p;
  }

  /** The C client as the real caller runs it: `ip netns exec SITE net-admin-helper ARGS`. */
  client(site: Site, args: readonly string[]): Promise<RunResult> {
    return run(which('ip')!, ['netns', 'exec', site.ns, join(ROOT, 'build', 'Release', 'net-admin-helper'), ...args], { env: cleanEnv() });
  }

  /** A process in a network namespace of its own, started from within `site` (as user `uid` if given). */
  async container(site: Site, opts: { uid?: number } = {}): Promise<Container> {
    const as = opts.uid === undefined ? [] : [which('setpriv')!, `--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups'];
    const proc = spawn(which('ip')!, ['netns', 'exec', site.ns, which('unshare')!, '--net', ...as, 'sleep', '3600'], { stdio: 'ignore' });
    const pid = proc.pid!;
    // ip netns exec, unshare and setpriv exec(2) in place: the pid ends up being sleep's.
    const ok = await waitFor(
      () => {
        try {
          return readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep') && netnsInodeOf(pid) !== site.inode;
        } catch {
          return false;
        }
      },
      5000,
      5,
    );
    if (!ok) {
      proc.kill('SIGKILL');
      throw new Error('container process did not start');
    }
    const c: Container = { pid, site, inode: netnsInodeOf(pid), proc };
    this.containers.push(c);
    spawnSync(which('nsenter')!, ['-t', String(pid), '-n', which('ip')!, 'link', 'set', 'lo', 'up']);
    return c;
  }

  /** `ip netns exec SITE node bin/cwg ARGS` */
  cwg(site: Site, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
    return run(which('ip')!, ['netns', 'exec', site.ns, process.execPath, CWG_BIN, ...args], { env: env ?? cleanEnv() });
  }

  /** Run a program in a container's network namespace. */
  inContainer(c: Container, file: string, args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    return run(which('nsenter')!, ['-t', String(c.pid), '-n', file, ...args], opts);
  }

  /** Run a program in a site's namespace. */
  inSite(s: Site, file: string, args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    return run(which('ip')!, ['netns', 'exec', s.ns, file, ...args], opts);
  }

  /** Start a long-running helper process (server, capture...) owned by the lab. */
  spawnOwned(file: string, args: readonly string[]): ChildProcess {
    const p = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.extraProcs.push(p);
    return p;
  }

  /** Remember a pid to kill on cleanup (e.g. a daemon started outside cwg). */
  own(pid: number): void {
    this.extraPids.push(pid);
  }

  /** Kill a container's process: its namespace goes away. */
  async stopContainer(c: Container): Promise<void> {
    if (pidAlive(c.pid)) {
      c.proc.kill('SIGKILL');
      await waitFor(() => !pidAlive(c.pid), 5000);
    }
  }

  /** Remove everything: helpers, containers, then any daemon left in a site, then the sites. */
  async cleanup(): Promise<void> {
    for (const p of this.extraProcs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const c of this.containers) await this.stopContainer(c);
    for (const pid of this.extraPids) if (pidAlive(pid)) process.kill(pid, 'SIGTERM');
    for (const s of this.sites) {
      // The site's host service (started by the first cwg command there) is stopped; its devices went with their containers.
      for (const pid of servicesIn(s.inode)) process.kill(pid, 'SIGTERM');
      if (!(await waitFor(() => servicesIn(s.inode).length === 0, 5000))) for (const pid of servicesIn(s.inode)) process.kill(pid, 'SIGKILL');
      await waitFor(() => servicesIn(s.inode).length === 0, 2000);
      rmSync(stateDirOf(s), { recursive: true, force: true });
      // Daemons exit by themselves when their container's namespace goes (within 2 s).
      if (!(await waitFor(() => daemonsIn(s.inode).length === 0, 5000))) {
        for (const pid of daemonsIn(s.inode)) process.kill(pid, 'SIGKILL');
        await waitFor(() => daemonsIn(s.inode).length === 0, 2000);
      }
    }
    for (const c of this.containers) {
      try {
        rmdirSync(join(RUN_BASE, String(c.inode)));
      } catch {
        /* gone already, or not empty: left for inspection */
      }
    }
    for (const s of this.sites) spawnSync(which('ip')!, ['netns', 'del', s.ns]);
  }
}

/** The environment for cwg runs: ours without CWG_PREFIX / LOG_LEVEL unless given. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.CWG_PREFIX;
  delete env.LOG_LEVEL;
  return { ...env, ...extra };
}

/** Is a UDP port bound in a site's namespace? (ss -Hunl 'sport = :P') */
export async function udpPortBound(lab: Lab, site: Site, port: number): Promise<boolean> {
  const r = await lab.inSite(site, which('ss')!, ['-H', '-u', '-n', '-l', `sport = :${port}`]);
  return r.stdout.trim() !== '';
}

/** A random port in a range unlikely to collide with anything else here. */
export function randomPort(): number {
  return 20000 + Math.floor(Math.random() * 30000);
}

/** A random net number (so parallel test files pick different devices). */
export function randomNet(): number {
  return 1 + Math.floor(Math.random() * 8388606);
}

export interface PcapPacket {
  data: Uint8Array;
}

/** Packets of a classic pcap file (either byte order, micro- or nanosecond stamps). */
export function readPcap(buf: Buffer): { linktype: number; packets: PcapPacket[] } {
  if (buf.length < 24) return { linktype: -1, packets: [] };
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('not a pcap file');
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linktype = u32(20);
  const packets: PcapPacket[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const incl = u32(off + 8);
    if (off + 16 + incl > buf.length) break;
    packets.push({ data: buf.subarray(off + 16, off + 16 + incl) });
    off += 16 + incl;
  }
  return { linktype, packets };
}

export interface Ip4Udp {
  kind: 'udp4';
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

/** Classify an Ethernet frame: ARP, IPv4/UDP with its ports, or anything else (described). */
export function classifyFrame(f: Uint8Array): Ip4Udp | { kind: 'arp' } | { kind: 'other'; what: string } {
  if (f.length < 14) return { kind: 'other', what: 'short frame' };
  const type = (f[12]! << 8) | f[13]!;
  if (type === 0x0806) return { kind: 'arp' };
  if (type !== 0x0800) return { kind: 'other', what: `ethertype 0x${type.toString(16)}` };
  const ip = f.subarray(14);
  const ihl = (ip[0]! & 0x0f) * 4;
  const proto = ip[9]!;
  const src = Array.from(ip.subarray(12, 16)).join('.');
  const dst = Array.from(ip.subarray(16, 20)).join('.');
  if (proto !== 17) return { kind: 'other', what: `IPv4 protocol ${proto} ${src} > ${dst}` };
  const u = ip.subarray(ihl);
  return { kind: 'udp4', src, dst, sport: (u[0]! << 8) | u[1]!, dport: (u[2]! << 8) | u[3]! };
}
