/**
 * `node dist/bench/service-link.js [ROUNDS] [SECONDS]` (root): links through the host service
 * against links through per-interface daemons, in the same run. Two sites (namespaces joined by
 * a veth pair), a container in each. Per round, alternately:
 *   service: each site's host service makes the container's device (cwg_create/cwg_connect);
 *   daemon:  each site runs `wireguard-ts --netns-pid CONTAINER` configured over its UAPI socket;
 * then ping (20, 50 ms apart), iperf3 TCP and UDP (1340-byte datagrams) from container A to B.
 * Last, 10 links through the services carry iperf3 TCP at once: their sum against one link alone,
 * and the slowest against the fastest. Prints medians and ratios (service / daemon).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostAddress } from '../src/cwg/addressing.js';
import { median, ROOT, run, sleep, tool } from './lab.js';

const IP = tool('ip');
const NSENTER = tool('nsenter');
const UNSHARE = tool('unshare');
const IPERF = tool('iperf3');
const PING = tool('ping');
const WG = tool('wg');
const CLIENT = join(ROOT, 'build', 'Release', 'net-admin-helper');
const DAEMON = join(ROOT, 'bin', 'wireguard-ts');

async function ok(file: string, args: readonly string[], input?: string): Promise<string> {
  const r = await run(file, args, input ?? ''); // stdin: a pipe, closed after the input
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

interface Site {
  ns: string;
  addr: string;
  inode: number;
}

class Lab {
  readonly id = process.pid.toString(36);
  readonly sites: Site[] = [];
  readonly procs: ChildProcess[] = [];

  setup(): [Site, Site] {
    const names = [`wgbl-${this.id}-a`, `wgbl-${this.id}-b`];
    for (const [i, ns] of names.entries()) {
      spawnSync(IP, ['netns', 'add', ns]);
      spawnSync(IP, ['-n', ns, 'link', 'set', 'lo', 'up']);
      this.sites.push({ ns, addr: `192.168.78.${i + 1}`, inode: statSync(`/run/netns/${ns}`).ino });
    }
    const [a, b] = this.sites as [Site, Site];
    spawnSync(IP, ['-n', a.ns, 'link', 'add', 'vbl0', 'type', 'veth', 'peer', 'name', 'vbl1', 'netns', b.ns]);
    for (const [s, dev] of [
      [a, 'vbl0'],
      [b, 'vbl1'],
    ] as const) {
      spawnSync(IP, ['-n', s.ns, 'addr', 'add', `${s.addr}/24`, 'dev', dev]);
      spawnSync(IP, ['-n', s.ns, 'link', 'set', dev, 'up']);
    }
    return [a, b];
  }

  async container(site: Site): Promise<number> {
    const p = spawn(IP, ['netns', 'exec', site.ns, UNSHARE, '--net', 'sleep', '3600'], { stdio: 'ignore' });
    this.procs.push(p);
    for (let i = 0; i < 1000; i++) {
      try {
        if (readlinkSync(`/proc/${p.pid}/exe`).endsWith('/sleep') && statSync(`/proc/${p.pid}/ns/net`).ino !== site.inode) {
          spawnSync(NSENTER, ['-t', String(p.pid), '-n', IP, 'link', 'set', 'lo', 'up']);
          return p.pid!;
        }
      } catch {
        /* starting */
      }
      await sleep(2);
    }
    throw new Error('container did not start');
  }

  in(pid: number, file: string, args: readonly string[]) {
    return run(NSENTER, ['-t', String(pid), '-n', file, ...args], '');
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) p.kill('SIGKILL');
    await sleep(1500);
    for (const s of this.sites) {
      for (const d of readdirSync('/proc')) {
        if (!/^[0-9]+$/.test(d)) continue;
        try {
          if (statSync(`/proc/${d}/ns/net`).ino === s.inode && /service\.js|wireguard-ts/.test(readFileSync(`/proc/${d}/cmdline`, 'utf8')))
            process.kill(Number(d), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      spawnSync(IP, ['netns', 'del', s.ns]);
      rmSync(`/run/wireguard-ts/${s.inode}`, { recursive: true, force: true });
    }
  }
}

interface Link {
  ca: number;
  cb: number;
  net: number;
  teardown(): Promise<void>;
}

/** A link through the two sites' host services. */
async function serviceLink(lab: Lab, a: Site, b: Site, net: number, port: number): Promise<Link> {
  const ca = await lab.container(a);
  const cb = await lab.container(b);
  const ka = (await ok(IP, ['netns', 'exec', a.ns, CLIENT, 'cwg_create', String(ca), String(net), '0', String(port)])).trim();
  const kb = (await ok(IP, ['netns', 'exec', b.ns, CLIENT, 'cwg_create', String(cb), String(net), '1', String(port + 1)])).trim();
  await ok(IP, ['netns', 'exec', a.ns, CLIENT, 'cwg_connect', String(ca), String(net), '0', `${b.addr}:${port + 1}`, kb]);
  await ok(IP, ['netns', 'exec', b.ns, CLIENT, 'cwg_connect', String(cb), String(net), '1', `${a.addr}:${port}`, ka]);
  return {
    ca,
    cb,
    net,
    teardown: async () => {
      await run(IP, ['netns', 'exec', a.ns, CLIENT, 'cwg_destroy', String(ca), String(net), '0'], '');
      await run(IP, ['netns', 'exec', b.ns, CLIENT, 'cwg_destroy', String(cb), String(net), '1'], '');
    },
  };
}

/** The same link through one `wireguard-ts` daemon per site (its device moved into the container). */
async function daemonLink(lab: Lab, a: Site, b: Site, net: number, port: number): Promise<Link> {
  const ca = await lab.container(a);
  const cb = await lab.container(b);
  const keys = await Promise.all([ok(WG, ['genkey']), ok(WG, ['genkey'])]);
  const pubs = await Promise.all(keys.map((k) => ok(WG, ['pubkey'], k)));
  const names = [`wgbd${lab.id}a`.slice(0, 15), `wgbd${lab.id}b`.slice(0, 15)];
  const sides = [
    [a, ca, 0, b, port + 1],
    [b, cb, 1, a, port],
  ] as const;
  for (const [i, [site, c, host]] of sides.entries()) {
    await ok(IP, ['netns', 'exec', site.ns, DAEMON, '--netns-pid', String(c), names[i]!]);
    const conf = `[Interface]\nPrivateKey = ${keys[i]!.trim()}\nListenPort = ${i === 0 ? port : port + 1}\n\n[Peer]\nPublicKey = ${pubs[1 - i]!.trim()}\nEndpoint = ${sides[i]![3].addr}:${sides[i]![4]}\nAllowedIPs = ${hostAddress(net, 0)}/31\n`;
    const file = join(tmpdir(), `wgbl-${lab.id}-${i}.conf`);
    writeFileSync(file, conf, { mode: 0o600 });
    try {
      await ok(IP, ['netns', 'exec', site.ns, WG, 'setconf', names[i]!, file]);
    } finally {
      rmSync(file, { force: true });
    }
    await ok(NSENTER, ['-t', String(c), '-n', IP, 'addr', 'add', `${hostAddress(net, host)}/31`, 'dev', names[i]!]);
    await ok(NSENTER, ['-t', String(c), '-n', IP, 'link', 'set', names[i]!, 'up']);
  }
  return {
    ca,
    cb,
    net,
    teardown: async () => {
      await lab.in(ca, IP, ['link', 'del', names[0]!]);
      await lab.in(cb, IP, ['link', 'del', names[1]!]);
      await sleep(300);
    },
  };
}

async function measure(lab: Lab, l: Link, secs: number): Promise<{ tcp: number; udp: number; ping: number }> {
  const to = hostAddress(l.net, 1);
  await lab.in(l.ca, PING, ['-c', '1', '-W', '2', to]);
  const p = await lab.in(l.ca, PING, ['-c', '20', '-i', '0.05', '-W', '1', to]);
  const ping = Number(/= [0-9.]+\/([0-9.]+)\//.exec(p.stdout)?.[1] ?? Number.NaN);
  const tcp = await iperf(lab, l, secs, []);
  const udp = await iperf(lab, l, secs, ['-u', '-b', '0', '-l', '1340']);
  return { tcp, udp, ping };
}

async function iperf(lab: Lab, l: Link, secs: number, extra: string[], port = 5201): Promise<number> {
  const server = spawn(NSENTER, ['-t', String(l.cb), '-n', IPERF, '-s', '-1', '-p', String(port), '-B', hostAddress(l.net, 1)], { stdio: 'ignore' });
  await sleep(300);
  const r = await lab.in(l.ca, IPERF, ['-J', '-t', String(secs), '-p', String(port), '-c', hostAddress(l.net, 1), ...extra]);
  server.kill();
  const j = JSON.parse(r.stdout) as { end: { sum_received?: { bits_per_second: number }; sum?: { bits_per_second: number; lost_percent: number } } };
  if (extra.includes('-u')) return (j.end.sum!.bits_per_second * (1 - j.end.sum!.lost_percent / 100)) / 1e6;
  return j.end.sum_received!.bits_per_second / 1e6;
}

async function main(): Promise<void> {
  if (process.geteuid?.() !== 0) throw new Error('must be run as root');
  const rounds = Number(process.argv[2] ?? 3);
  const secs = Number(process.argv[3] ?? 10);
  const lab = new Lab();
  const [a, b] = lab.setup();
  const onlyTen = process.env.WGBL_ONLY_TEN === '1';
  try {
    const res: Record<'service' | 'daemon', Array<{ tcp: number; udp: number; ping: number }>> = { service: [], daemon: [] };
    let net = 100;
    for (let r = 1; r <= (onlyTen ? 0 : rounds); r++) {
      for (const kind of ['service', 'daemon'] as const) {
        const l = kind === 'service' ? await serviceLink(lab, a, b, net, 40000 + 2 * net) : await daemonLink(lab, a, b, net, 40000 + 2 * net);
        await sleep(1000); // a daemon's warm-up
        const m = await measure(lab, l, secs);
        console.log(`round ${r} ${kind}: tcp_mbps=${m.tcp.toFixed(0)} udp_mbps=${m.udp.toFixed(0)} ping_ms=${m.ping}`);
        res[kind].push(m);
        await l.teardown();
        net++;
      }
    }
    for (const k of onlyTen ? [] : (['tcp', 'udp', 'ping'] as const)) {
      const s = median(res.service.map((x) => x[k]));
      const d = median(res.daemon.map((x) => x[k]));
      console.log(
        `median ${k}: service=${s.toFixed(k === 'ping' ? 3 : 0)} daemon=${d.toFixed(k === 'ping' ? 3 : 0)} ratio=${(k === 'ping' ? d / s : s / d).toFixed(2)}${k === 'ping' ? ' (daemon/service: >= 1 means the service is as fast)' : ''}`,
      );
    }
    // Ten links through the services at once.
    const links: Link[] = [];
    for (let i = 0; i < 10; i++) links.push(await serviceLink(lab, a, b, 500 + i, 50000 + 2 * i));
    await sleep(1000);
    for (const l of links) await lab.in(l.ca, PING, ['-c', '1', '-W', '2', hostAddress(l.net, 1)]);
    const alone = await iperf(lab, links[0]!, secs, []);
    const together = await Promise.all(links.map((l, i) => iperf(lab, l, secs, [], 5300 + i)));
    const sum = together.reduce((x, y) => x + y, 0);
    console.log(
      `10 links at once: sum ${sum.toFixed(0)} Mbit/s against one alone ${alone.toFixed(0)} (${(sum / alone).toFixed(2)}x); slowest ${Math.min(...together).toFixed(0)}, fastest ${Math.max(...together).toFixed(0)} (${(Math.min(...together) / Math.max(...together)).toFixed(2)})`,
    );
  } finally {
    await lab.cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/service-link: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
