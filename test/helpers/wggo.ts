/**
 * A real wireguard-go for the interop tests: started in the foreground in the test's own
 * namespace (its UDP socket on this namespace's loopback), its TUN moved into a named namespace
 * made for it; `stop()` ends the daemon and removes the namespace, also after a failure.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, runOk, waitUntil, which } from './proc.js';

export const WG_GO = '/usr/bin/wireguard-go';
export const WG = '/usr/bin/wg';
const IP = which('ip');
/** `wg` must not print private keys into test logs. */
const wgEnv = { ...process.env, WG_HIDE_KEYS: 'always' };

/** Why wireguard-go cannot be run here, or null when it can. */
export function wggoSkipReason(): string | null {
  if (!isRoot) return 'needs root (a network namespace and a TUN device for wireguard-go)';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  if (!existsSync(WG_GO)) return `needs ${WG_GO}`;
  if (!existsSync(WG)) return `needs ${WG}`;
  if (!IP) return 'needs iproute2 (ip)';
  return null;
}

/** `ip ARGS`, which must succeed; its stdout. */
export async function ip(...args: string[]): Promise<string> {
  return (await runOk(IP!, args, { timeoutMs: 15_000 })).stdout;
}

/** `wg ARGS` (keys hidden), which must succeed; its stdout. */
export async function wg(...args: string[]): Promise<string> {
  return (await runOk(WG, args, { env: wgEnv, timeoutMs: 15_000 })).stdout;
}

export class WireguardGo {
  /** The namespace holding the TUN. */
  readonly ns: string;
  readonly ifname: string;
  /** A private temporary directory, removed by stop(). */
  readonly dir: string;
  private daemon: ChildProcess | null = null;
  private logTail = '';

  /** `name` goes into the namespace and directory names; `c` is the interface's prefix letter. */
  private constructor(
    name: string,
    c: string,
    private readonly logLimit: number,
  ) {
    const tag = `${(process.pid % 1296).toString(36)}${Math.floor(Math.random() * 46656).toString(36)}`;
    this.ns = `wgts-${name}-${tag}`;
    this.ifname = `wg${c}${tag}`;
    this.dir = mkdtempSync(join(tmpdir(), `wgts-${name}-`));
  }

  /** Start it, keeping the last `logLimit` characters of its verbose log. */
  static async start(name: string, c: string, logLimit: number): Promise<WireguardGo> {
    const w = new WireguardGo(name, c, logLimit);
    try {
      await ip('netns', 'add', w.ns);
      const daemon = spawn(WG_GO, ['-f', w.ifname], { env: { ...wgEnv, LOG_LEVEL: 'verbose' }, stdio: ['ignore', 'pipe', 'pipe'] });
      w.daemon = daemon;
      const keep = (d: Buffer) => {
        w.logTail = (w.logTail + d.toString()).slice(-w.logLimit);
      };
      daemon.stdout.on('data', keep);
      daemon.stderr.on('data', keep);
      await waitUntil('the wireguard-go UAPI socket', () => existsSync(`/var/run/wireguard/${w.ifname}.sock`), 10_000, 20);
      await ip('link', 'set', 'dev', w.ifname, 'netns', w.ns);
    } catch (e) {
      await w.stop();
      throw e;
    }
    return w;
  }

  /** The end of its log. */
  get log(): string {
    return this.logTail;
  }

  /** SIGTERM (SIGKILL after 3 s), then the namespace and the directory go. */
  async stop(): Promise<void> {
    const d = this.daemon;
    if (d && d.exitCode === null && d.signalCode === null) {
      const exited = new Promise((r) => d.once('exit', r));
      d.kill('SIGTERM');
      const timer = setTimeout(() => d.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    await ip('netns', 'del', this.ns).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
