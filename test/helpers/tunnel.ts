/**
 * Two WireGuard daemons as in wireguard-go's tests/netns.sh: both started in ns0 (their UDP
 * sockets on loopback there), their TUN devices moved into ns1 and ns2. Either side may be
 * bin/wireguard-ts or /usr/bin/wireguard-go.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Namespaces, nsRun, uniqueTag } from './netns.js';
import { runOk, sleep, WG_TS, waitUntil } from './proc.js';

export type Impl = 'ts' | 'go';

export interface Side {
  impl: Impl;
  ifname: string;
  ns: string;
  port: number;
  privFile: string;
  pub: string;
  v4: string;
  v6: string;
}

export interface PairOptions {
  a?: Impl;
  b?: Impl;
  /** Outer transport family: endpoints on 127.0.0.1 or [::1]. */
  outer?: 4 | 6;
  /** Give side a an endpoint for b (b always has one for a). */
  aKnowsB?: boolean;
  psk?: boolean;
}

/** The daemon program for an implementation. */
export function programFor(impl: Impl): string {
  return impl === 'ts' ? WG_TS : '/usr/bin/wireguard-go';
}

/** A fresh key pair from `wg genkey`: the private key in DIR/NAME (mode 0600), the public key. */
export async function wgKeypair(dir: string, name: string): Promise<{ privFile: string; pub: string }> {
  const priv = (await runOk('wg', ['genkey'])).stdout.trim();
  const privFile = join(dir, name);
  writeFileSync(privFile, priv + '\n', { mode: 0o600 });
  const pub = (await runOk('wg', ['pubkey'], { input: priv + '\n' })).stdout.trim();
  return { privFile, pub };
}

/**
 * Start `program IFNAME` in namespace `ns` (its UDP socket stays there) and move the device
 * into `target`. Without LOG_LEVEL the daemon, like wireguard-go, detaches from our pipes.
 */
export async function startDaemonIn(ns: string, program: string, ifname: string, target: string): Promise<void> {
  const env = { ...process.env };
  delete env.LOG_LEVEL;
  await nsRun(ns, program, [ifname], { env });
  await waitUntil(`${ifname} to exist`, async () => {
    try {
      await runOk('ip', ['-n', ns, 'link', 'show', ifname]);
      return true;
    } catch {
      return false;
    }
  });
  await runOk('ip', ['-n', ns, 'link', 'set', ifname, 'netns', target]);
}

export class Pair {
  readonly nss: Namespaces;
  #tmp: string | null = null;
  ns0 = '';
  a!: Side;
  b!: Side;
  pskFile: string | null = null;

  constructor() {
    this.nss = new Namespaces(uniqueTag());
  }

  /** A private temporary directory, made on first use and removed by cleanup(). */
  get tmp(): string {
    this.#tmp ??= mkdtempSync(join(tmpdir(), 'wgts-pair-'));
    return this.#tmp;
  }

  program(impl: Impl): string {
    return programFor(impl);
  }

  keypair(name: string): Promise<{ privFile: string; pub: string }> {
    return wgKeypair(this.tmp, name);
  }

  /** Start a daemon for IFNAME in ns0 and move its TUN into `ns`. */
  startDaemon(impl: Impl, ifname: string, ns: string): Promise<void> {
    return startDaemonIn(this.ns0, programFor(impl), ifname, ns);
  }

  async setup(opts: PairOptions = {}): Promise<this> {
    const t = this.nss.tag;
    this.ns0 = await this.nss.add('0');
    const ns1 = await this.nss.add('1');
    const ns2 = await this.nss.add('2');
    const ka = await this.keypair('a.key');
    const kb = await this.keypair('b.key');
    this.a = { impl: opts.a ?? 'ts', ifname: `wa${t}`, ns: ns1, port: 10000 + (process.pid % 20000), ...ka, v4: '192.168.241.1', v6: 'fd00:241::1' };
    this.b = { impl: opts.b ?? 'ts', ifname: `wb${t}`, ns: ns2, port: 30000 + (process.pid % 20000), ...kb, v4: '192.168.241.2', v6: 'fd00:241::2' };
    if (opts.psk) {
      this.pskFile = join(this.tmp, 'psk');
      writeFileSync(this.pskFile, (await runOk('wg', ['genpsk'])).stdout, { mode: 0o600 });
    }
    await this.startDaemon(this.a.impl, this.a.ifname, this.a.ns);
    await this.startDaemon(this.b.impl, this.b.ifname, this.b.ns);
    const host = opts.outer === 6 ? '[::1]' : '127.0.0.1';
    for (const [me, peer, withEndpoint] of [
      [this.a, this.b, opts.aKnowsB ?? true],
      [this.b, this.a, true],
    ] as const) {
      const args = [
        'set',
        me.ifname,
        'private-key',
        me.privFile,
        'listen-port',
        String(me.port),
        'peer',
        peer.pub,
        'allowed-ips',
        `${peer.v4}/32,${peer.v6}/128`,
      ];
      if (withEndpoint) args.push('endpoint', `${host}:${peer.port}`);
      if (this.pskFile) args.push('preshared-key', this.pskFile);
      await nsRun(this.ns0, 'wg', args);
      await runOk('ip', ['-n', me.ns, 'addr', 'add', `${me.v4}/24`, 'dev', me.ifname]);
      await runOk('ip', ['-n', me.ns, 'addr', 'add', `${me.v6}/64`, 'dev', me.ifname, 'nodad']);
      await runOk('ip', ['-n', me.ns, 'link', 'set', me.ifname, 'up']);
    }
    return this;
  }

  /** `wg ARGS` run in ns0 (where the UAPI sockets' daemons live). */
  wg(...args: string[]) {
    return nsRun(this.ns0, 'wg', args, { env: { ...process.env, WG_HIDE_KEYS: 'never' } });
  }

  async ping(from: Side, to: string, extra: string[] = []): Promise<boolean> {
    try {
      await nsRun(from.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', ...extra, to], { timeoutMs: 15_000 });
      return true;
    } catch {
      return false;
    }
  }

  async cleanup(): Promise<void> {
    await this.nss.cleanup();
    for (const s of [this.a, this.b]) {
      if (s && existsSync(`/var/run/wireguard/${s.ifname}.sock`)) rmSync(`/var/run/wireguard/${s.ifname}.sock`, { force: true });
    }
    if (this.#tmp) rmSync(this.#tmp, { recursive: true, force: true });
    this.#tmp = null;
  }
}

/** Run iperf3 from `client` to `server` for a short time; returns Mbit/s received. */
export async function iperf(_pair: Pair, client: Side, server: Side, opts: { udp?: boolean; seconds?: number; v6?: boolean } = {}): Promise<number> {
  const addr = opts.v6 ? server.v6 : server.v4;
  const srv = runOk('ip', ['netns', 'exec', server.ns, 'iperf3', '-s', '-1', '-B', addr], { timeoutMs: 60_000 }).catch(() => undefined);
  await sleep(400);
  const args = ['-J', '-t', String(opts.seconds ?? 2), '-c', addr];
  if (opts.udp) args.push('-u', '-b', '200M', '-l', '1200');
  const { stdout } = await nsRun(client.ns, 'iperf3', args, { timeoutMs: 60_000 });
  await srv;
  const j = JSON.parse(stdout) as { end: { sum_received?: { bits_per_second: number }; sum?: { bits_per_second: number; lost_percent: number } } };
  if (opts.udp) {
    const s = j.end.sum!;
    return (s.bits_per_second * (1 - s.lost_percent / 100)) / 1e6;
  }
  return j.end.sum_received!.bits_per_second / 1e6;
}
