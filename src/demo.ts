/**
 * `npm run demo` (as root): the contract's nine steps on one machine.
 *
 * Two "sites" are network namespaces joined by a veth pair (192.168.77.1 <-> 192.168.77.2);
 * each has a "container", a process in a network namespace of its own. bin/cwg runs inside
 * each site: the first command there starts the site's host service (whose UDP ports live in
 * the site), which puts the device into the container.
 * Container B serves a page over the tunnel and container A fetches it. Everything made here
 * is removed at the end, after an error, and on SIGINT/SIGTERM.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostAddress } from './cwg/addressing.js';
import { RUN_BASE } from './service/registry.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CWG = join(ROOT, 'bin', 'cwg');
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p));
const NSENTER = ['/usr/bin/nsenter', '/bin/nsenter', '/usr/sbin/nsenter'].find((p) => existsSync(p));
const UNSHARE = ['/usr/bin/unshare', '/bin/unshare', '/usr/sbin/unshare'].find((p) => existsSync(p));
const PING = ['/usr/bin/ping', '/bin/ping', '/usr/sbin/ping'].find((p) => existsSync(p));

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);

class DemoError extends Error {}

/** Indent a block of output by four spaces (no trailing empty line). */
function indent(text: string): string {
  const t = text.replace(/\n+$/, '');
  return t ? `${t.replace(/^/gm, '    ')}\n` : '';
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(file: string, args: readonly string[], input = ''): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

function ipSync(args: readonly string[]): void {
  const r = spawnSync(IP!, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new DemoError(`ip ${args.join(' ')}: ${(r.stderr || '').trim()}`);
}

function dirEntries(dir: string): number {
  try {
    return readdirSync(dir).length;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Site {
  label: string;
  ns: string;
  veth: string;
  addr: string;
}

interface Container {
  label: string;
  site: Site;
  pid: number;
  proc: ChildProcess;
  inode: number;
}

/** Where each site's host service keeps its records (src/cli/service.ts). */
const STATE_BASE = '/run/wireguard-ts';

function netnsInode(ns: string): number | null {
  try {
    return statSync(`/run/netns/${ns}`).ino;
  } catch {
    return null;
  }
}

/** The host services (pids) running in the network namespace `inode`. */
function servicesIn(inode: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      if (statSync(`/proc/${d}/ns/net`).ino === inode && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('cli/service.js')) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

class Demo {
  private readonly id = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
  private readonly sites: Site[] = [];
  private readonly containers: Container[] = [];
  private readonly procs: ChildProcess[] = [];
  private cleaned = false;

  makeSites(): [Site, Site] {
    const a: Site = { label: 'site 1', ns: `cwgdemo-${this.id}-1`, veth: `cwgd${this.id}a`.slice(0, 15), addr: '192.168.77.1' };
    const b: Site = { label: 'site 2', ns: `cwgdemo-${this.id}-2`, veth: `cwgd${this.id}b`.slice(0, 15), addr: '192.168.77.2' };
    for (const s of [a, b]) {
      ipSync(['netns', 'add', s.ns]);
      this.sites.push(s);
      ipSync(['-n', s.ns, 'link', 'set', 'lo', 'up']);
    }
    ipSync(['-n', a.ns, 'link', 'add', a.veth, 'type', 'veth', 'peer', 'name', b.veth, 'netns', b.ns]);
    for (const s of [a, b]) {
      ipSync(['-n', s.ns, 'addr', 'add', `${s.addr}/24`, 'dev', s.veth]);
      ipSync(['-n', s.ns, 'link', 'set', s.veth, 'up']);
    }
    return [a, b];
  }

  async container(label: string, site: Site): Promise<Container> {
    const proc = spawn(IP!, ['netns', 'exec', site.ns, UNSHARE!, '--net', 'sleep', 'infinity'], { stdio: 'ignore' });
    const pid = proc.pid!;
    const siteIno = statSync(`/run/netns/${site.ns}`).ino;
    for (let i = 0; i < 500; i++) {
      try {
        if (readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep') && statSync(`/proc/${pid}/ns/net`).ino !== siteIno) {
          const c: Container = { label, site, pid, proc, inode: statSync(`/proc/${pid}/ns/net`).ino };
          this.containers.push(c);
          await exec(NSENTER!, ['-t', String(pid), '-n', IP!, 'link', 'set', 'lo', 'up']);
          return c;
        }
      } catch {
        /* not there yet */
      }
      await sleep(10);
    }
    proc.kill('SIGKILL');
    throw new DemoError(`the ${label} process did not start`);
  }

  /** Run bin/cwg inside a site, echoing the command line as a shell prompt would. */
  async cwg(site: Site, args: string[], quiet = false): Promise<string> {
    if (!quiet) console.log(`  ${dim(`[${site.label}]#`)} cwg ${args.join(' ')}`);
    const r = await exec(IP!, ['netns', 'exec', site.ns, process.execPath, CWG, ...args]);
    if (r.code !== 0) throw new DemoError(r.stderr.trim() || `cwg ${args[0]} failed`);
    if (!quiet && r.stdout) process.stdout.write(indent(r.stdout));
    return r.stdout;
  }

  spawnIn(c: Container, args: string[]): ChildProcess {
    const p = spawn(NSENTER!, ['-t', String(c.pid), '-n', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.push(p);
    return p;
  }

  inContainer(c: Container, args: string[]): Promise<Result> {
    return exec(NSENTER!, ['-t', String(c.pid), '-n', ...args]);
  }

  /** Remove everything this demo made. Idempotent; never throws. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const c of this.containers) {
      if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    }
    // Each site's host service removes a device when its container goes; then the services stop.
    for (const s of this.sites) {
      const inode = netnsInode(s.ns);
      if (inode === null) continue;
      for (let i = 0; i < 40 && dirEntries(join(STATE_BASE, String(inode))) > 0; i++) await sleep(50);
      for (const pid of servicesIn(inode)) process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 40 && servicesIn(inode).length > 0; i++) await sleep(50);
      for (const pid of servicesIn(inode)) process.kill(pid, 'SIGKILL');
      rmSync(join(STATE_BASE, String(inode)), { recursive: true, force: true });
    }
    for (const c of this.containers) {
      const dir = join(RUN_BASE, String(c.inode));
      for (let i = 0; i < 100 && dirEntries(dir) > 0; i++) await sleep(50);
      try {
        rmdirSync(dir);
      } catch {
        /* gone already (cwg_destroy removes it) */
      }
    }
    for (const s of this.sites) spawnSync(IP!, ['netns', 'del', s.ns], { stdio: 'ignore' });
  }
}

function step(n: number, text: string): void {
  console.log(`\n${bold(`Step ${n}.`)} ${text}`);
}

async function main(): Promise<void> {
  if (process.geteuid?.() !== 0) {
    process.stderr.write('demo: must be run as root (it creates network namespaces and devices): sudo npm run demo\n');
    process.exitCode = 1;
    return;
  }
  for (const [tool, path] of [
    ['ip', IP],
    ['nsenter', NSENTER],
    ['unshare', UNSHARE],
  ] as const) {
    if (!path) {
      process.stderr.write(`demo: ${tool} is not installed (iproute2 / util-linux)\n`);
      process.exitCode = 1;
      return;
    }
  }
  if (!existsSync(new URL('./cli/service.js', import.meta.url))) {
    process.stderr.write("demo: the host service is not built; run 'npm ci' first\n");
    process.exitCode = 1;
    return;
  }
  const demo = new Demo();
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\ndemo: ${sig}: cleaning up\n`);
    void demo.cleanup().then(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  try {
    console.log(bold('cwg demo: two sites, one container each, a WireGuard link between the containers'));
    const [s1, s2] = demo.makeSites();
    const ctA = await demo.container('container A', s1);
    const ctB = await demo.container('container B', s2);
    console.log(`  site 1: namespace ${s1.ns}, ${s1.addr}; container A: pid ${ctA.pid}`);
    console.log(`  site 2: namespace ${s2.ns}, ${s2.addr}; container B: pid ${ctB.pid}`);
    console.log('  (the sites are joined by a veth pair; the containers have no network but loopback)');

    const net = 1000 + Math.floor(Math.random() * 9000);
    const port1 = 51820;
    const port2 = 51821;
    step(1, `Site 1 picks network ${net}, host 0, and allocates UDP port ${port1}.`);

    step(2, 'Site 1 creates a virtual network device inside its container.');
    const key1 = (await demo.cwg(s1, ['cwg_create', String(ctA.pid), String(net), '0', String(port1)])).trim();

    step(3, 'Site 1 sends network, host, its public IP address, port and public key to site 2.');
    console.log(`    net=${net} host=0 endpoint=${s1.addr}:${port1} key=${key1}`);

    step(4, `Site 2 allocates UDP port ${port2}.`);

    step(5, 'Site 2 creates a device inside its container: same network, the other host.');
    const key2 = (await demo.cwg(s2, ['cwg_create', String(ctB.pid), String(net), '1', String(port2)])).trim();

    step(6, "Site 2 connects its device to site 1's.");
    await demo.cwg(s2, ['cwg_connect', String(ctB.pid), String(net), '1', `${s1.addr}:${port1}`, key1]);

    step(7, 'Site 2 sends its IP address, port and public key to site 1.');
    console.log(`    endpoint=${s2.addr}:${port2} key=${key2}`);

    step(8, "Site 1 connects its device to site 2's.");
    await demo.cwg(s1, ['cwg_connect', String(ctA.pid), String(net), '0', `${s2.addr}:${port2}`, key2]);

    step(9, 'The containers communicate.');
    const a = hostAddress(net, 0);
    const b = hostAddress(net, 1);
    if (PING) {
      console.log(`  ${dim('[container A]#')} ping -c 3 ${b}`);
      const ping = await demo.inContainer(ctA, [PING, '-c', '3', '-i', '0.3', '-W', '3', b]);
      process.stdout.write(indent(ping.stdout));
      if (ping.code !== 0) throw new DemoError('ping over the tunnel failed');
    }
    const page = `<html><body><h1>Hello from container B</h1><p>Served on ${b}:8080, fetched over WireGuard (cwg).</p></body></html>\n`;
    console.log(`  ${dim('[container B]#')} serving a page on http://${b}:8080/`);
    const server = demo.spawnIn(ctB, [
      process.execPath,
      '-e',
      "require('http').createServer((q, s) => { s.setHeader('content-type', 'text/html'); s.end(process.argv[1]); }).listen(8080, process.argv[2], () => console.log('ready'))",
      page,
      b,
    ]);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      server.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('ready')) resolve();
      });
      server.on('exit', () => reject(new DemoError('the web server in container B exited')));
    });
    console.log(`  ${dim('[container A]#')} fetch http://${b}:8080/`);
    const got = await demo.inContainer(ctA, [
      process.execPath,
      '-e',
      'fetch(process.argv[1]).then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { console.error(String(e.cause ?? e)); process.exit(1); })',
      `http://${b}:8080/`,
    ]);
    if (got.code !== 0) throw new DemoError(`fetching the page failed: ${got.stderr.trim()}`);
    process.stdout.write(indent(got.stdout));
    if (got.stdout !== page) throw new DemoError('the page arrived changed');
    server.kill('SIGKILL');

    console.log(`\n${bold('The devices')}, as \`wg show\` prints them:`);
    await demo.cwg(s1, ['show', String(ctA.pid), String(net), '0']);
    console.log('');
    await demo.cwg(s2, ['show', String(ctB.pid), String(net), '1']);
    console.log(`\n  (container A is ${a}, container B is ${b}; the UDP ports live in the sites, the devices in the containers)`);

    console.log(`\n${bold('Cleaning up.')}`);
    await demo.cwg(s1, ['cwg_destroy', String(ctA.pid), String(net), '0']);
    await demo.cwg(s2, ['cwg_destroy', String(ctB.pid), String(net), '1']);
    await demo.cleanup();
    console.log('  done: devices, host services, containers and sites removed.');
  } catch (e) {
    if (interrupted) return; // the signal handler cleans up and exits
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`demo: ${msg.split('\n')[0]}\n`);
    process.exitCode = 1;
  } finally {
    await demo.cleanup();
  }
}

await main();
