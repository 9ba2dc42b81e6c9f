/**
 * A legitimate handshake under a handshake flood (root; about a minute per implementation).
 *
 *   node dist/bench/flood-handshake.js [--impl ts,go] [--runs 10] [--mix random=1,mac1=1,cookie=1]
 *                                      [--rate 0] [--known-endpoint] [--json]
 *
 * Per implementation of the responder T (ts: bin/wireguard-ts, go: /usr/bin/wireguard-go):
 * namespaces of its own, where every daemon's UDP lives in ns0 on loopback and each device is
 * moved into a namespace of its own; T has a peer C with an established tunnel, and the
 * legitimate peer B (always bin/wireguard-ts). bench/flood.js floods T's port from 127.0.0.2..255
 * for the whole measurement. Each run gives B a fresh key (and T the matching peer, without an
 * endpoint unless --known-endpoint), sends one ping from B's side and polls B's UAPI until the
 * handshake with T completes: the time from the ping to the handshake is the figure (a first
 * initiation answered at once takes milliseconds; one answered with a cookie reply is retried
 * after REKEY_TIMEOUT, 5 s plus up to 1/3 s of jitter). Meanwhile C pings T through its tunnel.
 * Reported: the handshake times, C's ping replies, T's socket drops (/proc/net/udp) and ns0's
 * UDP counters (/proc/net/snmp: InDatagrams, RcvbufErrors), and what the flood sent.
 * Everything it creates is removed at the end, also on failure or Ctrl-C.
 */

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { uapiGet } from '../src/uapi/client.js';
import { packageRoot } from '../tun/addon.js';
import { type Impl, inNs, Lab, PROGRAMS, sh, sleep, WG_TS } from './lab.js';

const FLOOD = join(packageRoot(), 'dist/bench/flood.js');
/** A handshake not done after this long counts as failed (ms). */
const RUN_TIMEOUT = 30_000;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface Snmp {
  inDatagrams: number;
  rcvbufErrors: number;
}

async function udpSnmp(ns: string): Promise<Snmp> {
  const lines = (await inNs(ns, 'cat', ['/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Udp:'));
  const head = lines[0]!.split(/\s+/);
  const vals = lines[1]!.split(/\s+/).map(Number);
  const get = (k: string) => vals[head.indexOf(k)]!;
  return { inDatagrams: get('InDatagrams'), rcvbufErrors: get('RcvbufErrors') };
}

/** Drops of the IPv4 UDP socket bound to `port` in `ns` (the last column of /proc/net/udp). */
async function socketDrops(ns: string, port: number): Promise<number> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of (await inNs(ns, 'cat', ['/proc/net/udp'])).split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(`:${hex}`)) return Number(f[f.length - 1]);
  }
  return Number.NaN;
}

export interface ImplResult {
  impl: Impl;
  /** ms from B's first packet to its completed handshake with T; null: not within RUN_TIMEOUT. */
  handshakeMs: Array<number | null>;
  pingsSent: number;
  pingsReceived: number;
  socketDrops: number;
  nsInDatagrams: number;
  nsRcvbufErrors: number;
  flood: unknown;
}

async function lastHandshakeMs(sock: string, peerPub: string): Promise<number> {
  const info = await uapiGet(sock, { timeoutMs: 2000 });
  const want = Buffer.from(peerPub, 'base64');
  for (const p of info.peers) {
    if (Buffer.from(p.publicKey).equals(want)) return p.lastHandshakeSec * 1000 + p.lastHandshakeNsec / 1e6;
  }
  return 0;
}

/**
 * One implementation's figures: `runs` legitimate handshakes under the flood (bench/flood.js with
 * `floodArgs`). Everything it sets up is removed before it resolves or rejects. Also used by
 * test/system/daemon-flood.test.ts.
 */
export async function measureFlood(impl: Impl, runs: number, floodArgs: string[] = [], knownEndpoint = false): Promise<ImplResult> {
  const lab = new Lab('fl');
  const onSignal = () => {
    void lab.cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  try {
    const t = lab.tag;
    const ns0 = await lab.ns('0');
    const nsT = await lab.ns('t');
    const nsB = await lab.ns('b');
    const nsC = await lab.ns('c');
    const [kT, kC] = [await lab.key('t.key'), await lab.key('c.key')];
    const [portT, portB, portC] = [41000 + (process.pid % 1000), 42000 + (process.pid % 1000), 43000 + (process.pid % 1000)];
    // FLOOD_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") runs a wireguard-ts T under those node options.
    const nodeArgs = impl === 'ts' && process.env.FLOOD_NODE_ARGS ? process.env.FLOOD_NODE_ARGS.split(' ').filter(Boolean) : undefined;
    await lab.daemon(PROGRAMS[impl], `ft${t}`, ns0, nsT, nodeArgs ? { nodeArgs } : {});
    const sockB = await lab.daemon(WG_TS, `fb${t}`, ns0, nsB);
    await lab.daemon(WG_TS, `fc${t}`, ns0, nsC);
    const wg = (...a: string[]) => inNs(ns0, 'wg', a);
    await wg('set', `ft${t}`, 'private-key', kT.file, 'listen-port', String(portT), 'peer', kC.pub, 'allowed-ips', '10.77.0.3/32');
    await wg(
      'set',
      `fc${t}`,
      'private-key',
      kC.file,
      'listen-port',
      String(portC),
      'peer',
      kT.pub,
      'allowed-ips',
      '10.77.0.1/32',
      'endpoint',
      `127.0.0.1:${portT}`,
    );
    for (const [ns, dev, addr] of [
      [nsT, `ft${t}`, '10.77.0.1/24'],
      [nsB, `fb${t}`, '10.77.0.2/24'],
      [nsC, `fc${t}`, '10.77.0.3/24'],
    ] as const) {
      await sh('ip', ['-n', ns, 'addr', 'add', addr, 'dev', dev]);
      await sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    await sleep(3000); // the daemons' JIT warm-up
    await inNs(nsC, 'ping', ['-c', '1', '-W', '5', '10.77.0.1']);

    const flood = spawn(
      'ip',
      ['netns', 'exec', ns0, process.execPath, FLOOD, '--to', `127.0.0.1:${portT}`, '--pub', kT.pub, '--seconds', '86400', '--json', ...floodArgs],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    lab.children.push(flood);
    let floodOut = '';
    flood.stdout!.on('data', (d: Buffer) => (floodOut += d.toString()));
    await sleep(3000); // under load, cookies solved
    const snmp0 = await udpSnmp(ns0);
    const drops0 = await socketDrops(ns0, portT);

    const handshakeMs: Array<number | null> = [];
    let pingsSent = 0;
    let pingsReceived = 0;
    let oldB: string | null = null;
    for (let run = 0; run < runs; run++) {
      const kB = await lab.key(`b${run}.key`);
      // B starts from nothing: a fresh key, and T as a new peer (no handshake time, no session).
      await wg('set', `fb${t}`, 'private-key', kB.file, 'listen-port', String(portB), 'peer', kT.pub, 'remove');
      await wg('set', `fb${t}`, 'peer', kT.pub, 'allowed-ips', '10.77.0.1/32', 'endpoint', `127.0.0.1:${portT}`);
      const add = ['peer', kB.pub, 'allowed-ips', '10.77.0.2/32', ...(knownEndpoint ? ['endpoint', `127.0.0.1:${portB}`] : [])];
      await wg('set', `ft${t}`, ...(oldB ? ['peer', oldB, 'remove'] : []), ...add);
      oldB = kB.pub;
      await sleep(300);
      const cPing = inNs(nsC, 'ping', ['-c', '20', '-i', '0.25', '-W', '1', '10.77.0.1']).catch((e: { stdout?: string }) => e.stdout ?? '');
      const t0 = Date.now();
      const bPing = inNs(nsB, 'ping', ['-c', '1', '-w', String(RUN_TIMEOUT / 1000), '10.77.0.1']).catch(() => '');
      let done: number | null = null;
      while (Date.now() - t0 < RUN_TIMEOUT) {
        const hs = await lastHandshakeMs(sockB, kT.pub).catch(() => 0);
        if (hs > 0) {
          done = hs - t0;
          break;
        }
        await sleep(20);
      }
      handshakeMs.push(done);
      const out = await cPing;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      pingsSent += m ? Number(m[1]) : 20;
      pingsReceived += m ? Number(m[2]) : 0;
      await bPing;
      process.stderr.write(
        `${impl} run ${run + 1}: handshake ${done === null ? 'none' : `${(done / 1000).toFixed(2)} s`}, C's pings ${m ? `${m[2]}/${m[1]}` : '?'}\n`,
      );
    }
    const snmp1 = await udpSnmp(ns0);
    const drops1 = await socketDrops(ns0, portT);
    flood.kill('SIGTERM');
    await new Promise((r) => flood.once('exit', r));
    let floodReport: unknown = null;
    try {
      floodReport = JSON.parse(floodOut.trim().split('\n').pop() ?? 'null');
    } catch {
      floodReport = floodOut;
    }
    return {
      impl,
      handshakeMs,
      pingsSent,
      pingsReceived,
      socketDrops: drops1 - drops0,
      nsInDatagrams: snmp1.inDatagrams - snmp0.inDatagrams,
      nsRcvbufErrors: snmp1.rcvbufErrors - snmp0.rcvbufErrors,
      flood: floodReport,
    };
  } finally {
    process.removeListener('SIGINT', onSignal);
    await lab.cleanup();
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('flood-handshake: needs root (namespaces, TUN devices)\n');
    process.exit(1);
  }
  const impls = (arg('--impl') ?? 'ts,go').split(',') as Impl[];
  for (const i of impls) if (!(i in PROGRAMS)) throw new Error(`unknown --impl '${i}' (ts, go)`);
  const runs = Number(arg('--runs') ?? 10);
  const floodArgs: string[] = [];
  for (const o of ['--mix', '--rate', '--sources']) {
    const v = arg(o);
    if (v !== undefined) floodArgs.push(o, v);
  }
  const results: ImplResult[] = [];
  for (const impl of impls) results.push(await measureFlood(impl, runs, floodArgs, process.argv.includes('--known-endpoint')));
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(results, null, 1));
    return;
  }
  for (const r of results) {
    const hs = r.handshakeMs.map((ms) => (ms === null ? 'none' : (ms / 1000).toFixed(2))).join(' ');
    const ok = r.handshakeMs.filter((ms) => ms !== null && ms <= 5500).length;
    const f = r.flood as { perSecond?: number } | null;
    console.log(
      `${r.impl}: handshakes (s) ${hs}; ${ok}/${r.handshakeMs.length} within 5.5 s; C's pings ${r.pingsReceived}/${r.pingsSent}; ` +
        `socket drops ${r.socketDrops} of ${r.socketDrops + r.nsInDatagrams} (${((100 * r.socketDrops) / Math.max(1, r.socketDrops + r.nsInDatagrams)).toFixed(1)} %), ` +
        `ns0 RcvbufErrors ${r.nsRcvbufErrors}; flood ${f?.perSecond ? Math.round(f.perSecond) : '?'}/s`,
    );
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`flood-handshake: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
