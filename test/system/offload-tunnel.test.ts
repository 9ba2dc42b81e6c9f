/**
 * Two daemons with offloads on one side only, or on both: wireguard-ts with offloads against
 * wireguard-ts without (WGTS_DISABLE_OFFLOAD=all), against Debian's wireguard-go (no
 * offloads) and against the current upstream release (offloads of its own), each side
 * initiating. Every case checks the bytes, not only that traffic flows: a TCP stream each way
 * and a burst of UDP datagrams (both what GSO/GRO coalesce) arrive exactly as sent. Also: the
 * kernel really hands our TUN super-packets (seen with tcpdump), over IPv6 outside, and with
 * the 34736-byte MTU.
 */

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { nsRun, skipReason } from '../helpers/netns.js';
import { ROOT, runOk as run, sleep, WG_TS, waitUntil as waitFor } from '../helpers/proc.js';
import { Pair, type Side } from '../helpers/tunnel.js';

// The upstream release lives in the project's shared/ beside the checkout (WG_TS_SHARED, as bench/tunnel.sh).
const UPSTREAM = `${process.env.WG_TS_SHARED ?? `${ROOT}/../shared`}/bench/anchors/wireguard-go-upstream`;
const skip = skipReason('wg', 'ip');

type Kind = 'ts' | 'ts-off' | 'go' | 'upstream';

const program = (k: Kind) => (k === 'go' ? '/usr/bin/wireguard-go' : k === 'upstream' ? UPSTREAM : WG_TS);
const available = (k: Kind) => existsSync(program(k));

/** A Pair whose two daemons are any of the kinds, with their own environments. */
class MixedPair extends Pair {
  constructor(private readonly kinds: [Kind, Kind]) {
    super();
  }
  #started = 0;
  override async startDaemon(_impl: 'ts' | 'go', ifname: string, ns: string): Promise<void> {
    const kind = this.kinds[this.#started++]!;
    const env = { ...process.env };
    delete env.LOG_LEVEL;
    if (kind === 'ts-off') env.WGTS_DISABLE_OFFLOAD = 'all';
    else delete env.WGTS_DISABLE_OFFLOAD;
    await nsRun(this.ns0, program(kind), [ifname], { env });
    await waitFor(`${ifname} to exist`, async () => {
      try {
        await run('ip', ['-n', this.ns0, 'link', 'show', ifname]);
        return true;
      } catch {
        return false;
      }
    });
    await run('ip', ['-n', this.ns0, 'link', 'set', ifname, 'netns', ns]);
  }
}

const MB = 8 << 20;
const tcpServer = (addr: string) =>
  `const h=require('crypto').createHash('sha256');let n=0;require('net').createServer(s=>{s.on('data',d=>{h.update(d);n+=d.length});s.on('end',()=>{console.log(h.digest('hex'),n);process.exit(0)})}).listen(7777,'${addr}',()=>console.log('ready'))`;
const tcpClient = (addr: string, seed: number) =>
  `const h=require('crypto').createHash('sha256');const s=require('net').connect(7777,'${addr}');let x=${seed},n=0;const b=Buffer.alloc(65536);function more(){while(n<${MB}){for(let i=0;i<b.length;i++){x=(x*1103515245+12345)>>>0;b[i]=x>>>24}n+=b.length;h.update(b);if(!s.write(b))return s.once('drain',more)}s.end(()=>console.log(h.digest('hex'),n))}more()`;
// Datagrams carry their number and bytes derived from it; the receiver checks every byte.
const udpServer = (addr: string, fam: string) =>
  `const s=require('dgram').createSocket('${fam}');let ok=0,bad=0,t;const fill=(b,q)=>{let x=q;for(let i=4;i<b.length;i++){x=(x*1103515245+12345)>>>0;b[i]=x>>>24}};s.on('message',m=>{const q=m.readUInt32BE(0);const e=Buffer.alloc(m.length);e.writeUInt32BE(q,0);fill(e,q);if(m.length===1200&&e.equals(m))ok++;else bad++;clearTimeout(t);t=setTimeout(()=>{console.log(ok,bad);process.exit(0)},1500)});s.bind(7778,'${addr}',()=>console.log('ready'))`;
const udpClient = (addr: string, fam: string) =>
  `const s=require('dgram').createSocket('${fam}');let q=0;const fill=(b,q)=>{let x=q;for(let i=4;i<b.length;i++){x=(x*1103515245+12345)>>>0;b[i]=x>>>24}};function burst(){for(let k=0;k<64&&q<4000;k++,q++){const b=Buffer.alloc(1200);b.writeUInt32BE(q,0);fill(b,q);s.send(b,7778,'${addr}')}if(q<4000)setTimeout(burst,2);else setTimeout(()=>process.exit(0),200)}burst()`;

/** Runs a server script in `server`'s namespace and a client in `client`'s; returns both outputs. */
async function exchange(pair: Pair, client: Side, server: Side, serverJs: string, clientJs: string): Promise<[string, string]> {
  const srv = spawn('ip', ['netns', 'exec', server.ns, process.execPath, '-e', serverJs], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  srv.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await waitFor('the server', () => out.includes('ready'), 5000);
    const { stdout } = await nsRun(client.ns, process.execPath, ['-e', clientJs], { timeoutMs: 60_000 });
    await new Promise<void>((r) => (srv.exitCode !== null ? r() : srv.once('exit', () => r())));
    return [stdout.trim(), out.replace('ready', '').trim()];
  } finally {
    srv.kill();
    void pair;
  }
}

async function checkTraffic(pair: Pair, v6 = false): Promise<void> {
  const { a, b } = pair;
  expect(await pair.ping(a, v6 ? b.v6 : b.v4)).toBe(true); // a initiates
  expect(await pair.ping(b, v6 ? a.v6 : a.v4)).toBe(true);
  for (const [from, to, seed] of [
    [a, b, 1],
    [b, a, 2],
  ] as const) {
    const addr = v6 ? to.v6 : to.v4;
    const [sent, got] = await exchange(pair, from, to, tcpServer(addr), tcpClient(addr, seed));
    expect(sent).toMatch(new RegExp(`^[0-9a-f]{64} ${MB}$`));
    expect(got).toBe(sent);
  }
  const addr = v6 ? b.v6 : b.v4;
  const fam = v6 ? 'udp6' : 'udp4';
  const [, counts] = await exchange(pair, a, b, udpServer(addr, fam), udpClient(addr, fam));
  const [ok, bad] = counts.split(' ').map(Number);
  expect(bad).toBe(0);
  expect(ok).toBeGreaterThan(2000); // UDP may drop some under load; none may arrive changed
}

const matrix: [Kind, Kind][] = [
  ['ts', 'ts-off'],
  ['ts-off', 'ts'],
  ['ts', 'upstream'],
  ['upstream', 'ts'],
  ['ts', 'go'],
  ['go', 'ts'],
];

describe.skipIf(skip)(`offloads on one side or both${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let pair: Pair | null = null;
  afterEach(async () => {
    await pair?.cleanup();
    pair = null;
  });

  for (const kinds of matrix) {
    const missing = kinds.find((k) => !available(k));
    it.skipIf(missing !== undefined)(
      `${kinds[0]} initiates to ${kinds[1]}: ping both ways, TCP and UDP bytes exact${missing ? ` (skipped: ${program(missing)} missing)` : ''}`,
      async () => {
        pair = await new MixedPair(kinds).setup({ a: 'ts', b: 'ts' });
        await checkTraffic(pair);
      },
    );
  }

  it.skipIf(!available('upstream'))('ts and upstream over IPv6 outside and inside', async () => {
    pair = await new MixedPair(['ts', 'upstream']).setup({ outer: 6 });
    await checkTraffic(pair, true);
  });

  it('ts and ts with a 34736-byte MTU', async () => {
    pair = await new MixedPair(['ts', 'ts']).setup();
    for (const s of [pair.a, pair.b]) await run('ip', ['-n', s.ns, 'link', 'set', s.ifname, 'mtu', '34736']);
    await sleep(600); // the daemons see the MTU on their next probe
    expect(await pair.ping(pair.a, pair.b.v4, ['-M', 'do', '-s', String(34736 - 28)])).toBe(true);
    await checkTraffic(pair);
  });

  it.skipIf(skipReason('tcpdump') !== null)('the kernel hands our TUN TCP super-packets, and takes coalesced ones', async () => {
    pair = await new MixedPair(['ts', 'ts']).setup();
    const { a, b } = pair;
    expect(await pair.ping(a, b.v4)).toBe(true);
    const dumps = [a, b].map((s) =>
      nsRun(s.ns, 'timeout', ['4', 'tcpdump', '-n', '-i', s.ifname, '-c', '400', 'tcp'], { timeoutMs: 20_000 }).catch((e: { stdout?: string }) => ({
        stdout: e.stdout ?? '',
      })),
    );
    await sleep(800);
    await exchange(pair, a, b, tcpServer(b.v4), tcpClient(b.v4, 3));
    const [out, inn] = await Promise.all(dumps);
    const biggest = (s: string) => Math.max(0, ...[...s.matchAll(/length (\d+)/g)].map((m) => Number(m[1])));
    expect(biggest(out.stdout)).toBeGreaterThan(1420); // sent by a's kernel as super-packets (TSO)
    expect(biggest(inn.stdout)).toBeGreaterThan(1420); // written into b's TUN coalesced (GRO)
  });
});
