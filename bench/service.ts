/**
 * `node dist/bench/service.js [DEVICES] [LATENCY_RUNS]` (root): the host service at scale.
 * In a network namespace of its own (a "site"), with a host service started for it:
 *   1. cwg_create latency, end to end as the real caller runs it (the C client, and bin/cwg_create
 *      through Node), against `node -e 0` in the same run, medians of LATENCY_RUNS (default 30);
 *   2. 100 cwg_create at once (all must succeed);
 *   3. DEVICES (default 1000) devices in as many containers (`unshare -n` processes), connected in
 *      pairs over the site's loopback, every pair pinged once; the time to create and connect
 *      them, the service's RSS with one device and with all (and per device beyond the first),
 *      and its CPU while all are up and quiet.
 * Everything it made is removed at the end, also on failure.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hostAddress } from '../src/cwg/addressing.js';
import { median, type RunResult as Result, ROOT, run, sleep, tool } from './lab.js';

const CLIENT = join(ROOT, 'build', 'Release', 'net-admin-helper');
const IP = tool('ip');
const UNSHARE = tool('unshare');
const NSENTER = tool('nsenter');
const PING = tool('ping');
/**
 * The idle CPU is measured over IDLE_MS with every device up and quiet, from SETTLE_MS after the
 * pings: until then the service still collects the garbage of the set-up and compiles.
 */
const SETTLE_MS = 10_000;
const IDLE_MS = 20_000;

/** Run `jobs` with at most `width` at a time. */
async function pool<T>(jobs: Array<() => Promise<T>>, width: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, jobs.length) }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]!();
      }
    }),
  );
  return out;
}

class Site {
  readonly ns = `wgbs-${process.pid}`;
  readonly procs: ChildProcess[] = [];
  service: ChildProcess | null = null;
  inode = 0;

  setup(): void {
    spawnSync(IP, ['netns', 'add', this.ns]);
    spawnSync(IP, ['-n', this.ns, 'link', 'set', 'lo', 'up']);
    this.inode = statSync(`/run/netns/${this.ns}`).ino;
  }

  async startService(): Promise<number> {
    this.service = spawn(IP, ['netns', 'exec', this.ns, process.execPath, join(ROOT, 'bin', 'wireguard-ts-service')], { stdio: 'ignore' });
    for (let i = 0; i < 200; i++) {
      const unix = spawnSync(IP, ['netns', 'exec', this.ns, 'cat', '/proc/net/unix'], { encoding: 'utf8' }).stdout;
      if (unix.includes('@wireguard-ts/control')) break;
      await sleep(50);
    }
    // The service is the node process in the site's namespace running its program.
    for (let i = 0; i < 100; i++) {
      for (const p of readdirProc()) {
        try {
          if (statSync(`/proc/${p}/ns/net`).ino !== this.inode) continue;
          if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('wireguard-ts-service')) return Number(p);
        } catch {
          /* gone */
        }
      }
      await sleep(20);
    }
    throw new Error('the service did not start');
  }

  /** A container: a process in a network namespace of its own, started in the site. */
  async container(): Promise<number> {
    const proc = spawn(IP, ['netns', 'exec', this.ns, UNSHARE, '--net', 'sleep', '3600'], { stdio: 'ignore' });
    this.procs.push(proc);
    const pid = proc.pid!;
    for (let i = 0; i < 1000; i++) {
      try {
        if (readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep') && statSync(`/proc/${pid}/ns/net`).ino !== this.inode) return pid;
      } catch {
        /* starting */
      }
      await sleep(2);
    }
    throw new Error('a container did not start');
  }

  client(args: readonly string[]): Promise<Result> {
    return run(IP, ['netns', 'exec', this.ns, CLIENT, ...args]);
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) p.kill('SIGKILL');
    // The service removes each device as its container's namespace goes.
    const state = `/run/wireguard-ts/${this.inode}`;
    for (let i = 0; i < 100; i++) {
      let left = 0;
      try {
        left = readdirSync(state).length;
      } catch {
        break;
      }
      if (left === 0) break;
      await sleep(100);
    }
    this.service?.kill('SIGTERM');
    await sleep(500);
    this.service?.kill('SIGKILL');
    spawnSync(IP, ['netns', 'del', this.ns]);
    if (this.inode) rmSync(`/run/wireguard-ts/${this.inode}`, { recursive: true, force: true });
  }
}

function readdirProc(): string[] {
  return readdirSync('/proc').filter((n) => /^[0-9]+$/.test(n));
}

/** User + system CPU seconds of a process so far (/proc/PID/stat, clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function main(): Promise<void> {
  if (process.geteuid?.() !== 0) throw new Error('must be run as root');
  if (!existsSync(CLIENT)) throw new Error(`${CLIENT} is missing (npm ci)`);
  const devices = Number(process.argv[2] ?? 1000);
  const runs = Number(process.argv[3] ?? 30);
  if (!Number.isInteger(devices) || devices < 2 || devices % 2 || devices > 4000) throw new Error('DEVICES must be an even number 2..4000');
  const site = new Site();
  site.setup();
  try {
    const svc = await site.startService();
    await sleep(1000); // its warm-up
    const basePort = 30000;

    // 1. Latency, as the caller runs it, against node -e 0 in the same run (alternating).
    const lat: number[] = [];
    const latNode: number[] = [];
    const nodeZero: number[] = [];
    const lc = await site.container();
    for (let i = 0; i < runs; i++) {
      const z = await run(process.execPath, ['-e', '0']);
      nodeZero.push(z.ms);
      for (const [bin, into] of [
        [CLIENT, lat],
        [join(ROOT, 'bin', 'cwg_create'), latNode],
      ] as const) {
        const args = bin === CLIENT ? [CLIENT, 'cwg_create'] : [process.execPath, bin];
        const r = await run(IP, ['netns', 'exec', site.ns, ...args, String(lc), '1', '0', String(basePort - 1)]);
        if (r.code !== 0) throw new Error(`cwg_create: ${r.stderr.trim()}`);
        into.push(r.ms);
        const d = await site.client(['cwg_destroy', String(lc), '1', '0']);
        if (d.code !== 0) throw new Error(`cwg_destroy: ${d.stderr.trim()}`);
      }
    }
    // `ip netns exec` itself is in every client figure (the real caller runs in the namespace already).
    const ipAlone: number[] = [];
    for (let i = 0; i < runs; i++) ipAlone.push((await run(IP, ['netns', 'exec', site.ns, '/bin/true'])).ms);
    console.log(
      `latency (median of ${runs}): node -e 0 ${median(nodeZero).toFixed(1)} ms; cwg_create via net-admin-helper ${median(lat).toFixed(1)} ms, via bin/cwg_create (node) ${median(latNode).toFixed(1)} ms; ` +
        `ip netns exec /bin/true ${median(ipAlone).toFixed(1)} ms; ratio helper/node ${(median(lat) / median(nodeZero)).toFixed(2)}, node client/node ${(median(latNode) / median(nodeZero)).toFixed(2)}`,
    );

    // 2. A hundred creates at once.
    const hundred = await Promise.all(Array.from({ length: 100 }, () => site.container()));
    const t100 = performance.now();
    const r100 = await Promise.all(
      hundred.map((pid, i) => site.client(['cwg_create', String(pid), String(10 + (i >> 1)), String(i & 1), String(basePort + 5000 + i)])),
    );
    const ms100 = performance.now() - t100;
    const failed100 = r100.filter((r) => r.code !== 0);
    console.log(
      `100 parallel creates: ${100 - failed100.length} succeeded in ${ms100.toFixed(0)} ms (slowest ${Math.max(...r100.map((r) => r.ms)).toFixed(0)} ms)${failed100.length ? `; first failure: ${failed100[0]!.stderr.trim()}` : ''}`,
    );
    await pool(
      hundred.map((pid, i) => () => site.client(['cwg_destroy', String(pid), String(10 + (i >> 1)), String(i & 1)])),
      16,
    );

    // 3. DEVICES devices in pairs.
    const rssBase = rssKiB(svc);
    const pids = await pool(
      Array.from({ length: devices }, () => () => site.container()),
      32,
    );
    const tCreate = performance.now();
    const keys: string[] = new Array(devices);
    let rssOne = 0;
    const created = await pool(
      pids.map((pid, i) => async () => {
        const r = await site.client(['cwg_create', String(pid), String(1000 + (i >> 1)), String(i & 1), String(basePort + i)]);
        if (r.code === 0) keys[i] = r.stdout.trim();
        if (i === 0) rssOne = rssKiB(svc);
        return r;
      }),
      8,
    );
    const createMs = performance.now() - tCreate;
    const createFailed = created.filter((r) => r.code !== 0);
    if (createFailed.length) throw new Error(`${createFailed.length} creates failed; first: ${createFailed[0]!.stderr.trim()}`);
    const tConnect = performance.now();
    const connected = await pool(
      pids.map(
        (pid, i) => () => site.client(['cwg_connect', String(pid), String(1000 + (i >> 1)), String(i & 1), `127.0.0.1:${basePort + (i ^ 1)}`, keys[i ^ 1]!]),
      ),
      8,
    );
    const connectMs = performance.now() - tConnect;
    const connectFailed = connected.filter((r) => r.code !== 0);
    if (connectFailed.length) throw new Error(`${connectFailed.length} connects failed; first: ${connectFailed[0]!.stderr.trim()}`);
    const tPing = performance.now();
    const pinged = await pool(
      Array.from(
        { length: devices / 2 },
        (_, k) => () => run(NSENTER, ['-t', String(pids[2 * k]!), '-n', PING, '-c', '1', '-W', '3', hostAddress(1000 + k, 1)]),
      ),
      8,
    );
    const pingMs = performance.now() - tPing;
    const lost = pinged.filter((r) => r.code !== 0).length;
    await sleep(2000);
    const rssAll = rssKiB(svc);
    const perDevice = (rssAll - rssOne) / (devices - 1);
    // What the devices cost while nothing flows: timers, the TUN probes.
    await sleep(SETTLE_MS);
    const cpu0 = cpuSeconds(svc);
    await sleep(IDLE_MS);
    const idleCpu = (cpuSeconds(svc) - cpu0) / (IDLE_MS / 1000);
    console.log(
      `${devices} devices: created in ${(createMs / 1000).toFixed(1)} s, connected in ${(connectMs / 1000).toFixed(1)} s, ${devices / 2} pairs pinged in ${(pingMs / 1000).toFixed(1)} s (${lost} without an answer); ` +
        `service RSS ${(rssBase / 1024).toFixed(0)} MB idle, ${(rssOne / 1024).toFixed(0)} MB with one device, ${(rssAll / 1024).toFixed(0)} MB with ${devices} (${(perDevice / 1024).toFixed(3)} MB per device beyond the first); ` +
        `idle CPU ${(100 * idleCpu).toFixed(1)} % of a core (${((1e6 * idleCpu) / devices).toFixed(0)} µs a second per device)`,
    );
  } finally {
    await site.cleanup();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/service: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
