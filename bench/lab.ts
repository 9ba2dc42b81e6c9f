/**
 * Namespace labs for the root benchmarks (bench/flood-handshake.ts, bench/loop.ts, also driven
 * by system tests): namespaces with unique names, keys in a private directory, daemons started
 * inside them, and a cleanup that leaves nothing behind.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { uapiSocketPath } from '../src/uapi/protocol.js';
import { packageRoot } from '../tun/addon.js';

export const execFileP = promisify(execFile);
export const WG_TS = join(packageRoot(), 'bin/wireguard-ts');
export const PROGRAMS = { ts: WG_TS, go: '/usr/bin/wireguard-go' } as const;
export type Impl = keyof typeof PROGRAMS;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The repository root (the package root: build/, bin/ are under it). */
export const ROOT = packageRoot();

/** The absolute path of a system tool, from the usual directories; throws when it is not installed. */
export const tool = (name: string): string => {
  const p = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => join(d, name)).find((f) => existsSync(f));
  if (!p) throw new Error(`${name} is not installed`);
  return p;
};

/** What `run` saw of a process: its exit status (1 when killed), its output, the wall time. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run `file` with `args`; `input`, when given, is written to its stdin (else stdin is /dev/null). */
export function run(file: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(file, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr, ms: performance.now() - t0 }));
    if (c.stdin) {
      c.stdin.on('error', () => {});
      c.stdin.end(input);
    }
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function sh(cmd: string, args: string[], input?: string): Promise<string> {
  const p = execFileP(cmd, args, { timeout: 30_000, maxBuffer: 16 << 20 });
  if (input !== undefined) p.child.stdin?.end(input);
  return (await p).stdout;
}

export const inNs = (ns: string, cmd: string, args: string[], input?: string) => sh('ip', ['netns', 'exec', ns, cmd, ...args], input);

export class Lab {
  readonly tag = `${(process.pid % 1000).toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`;

  /** `kind`: two letters in the namespace names (wgKK-TAG-SUFFIX), so leftovers say who made them. */
  constructor(private readonly kind: string) {}
  readonly namespaces: string[] = [];
  readonly sockets: string[] = [];
  readonly children: ChildProcess[] = [];
  readonly tmp = mkdtempSync(join(tmpdir(), 'wgts-bench-'));

  async ns(suffix: string): Promise<string> {
    const name = `wg${this.kind}-${this.tag}-${suffix}`;
    await sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  async key(name: string): Promise<{ file: string; pub: string }> {
    const priv = (await sh('wg', ['genkey'])).trim();
    const file = join(this.tmp, name);
    writeFileSync(file, priv + '\n', { mode: 0o600 });
    return { file, pub: (await sh('wg', ['pubkey'], priv + '\n')).trim() };
  }

  /**
   * Start `program IFNAME` with its UDP in `udpNs`, and move the device into `devNs` (unless it
   * is the same). With `nodeArgs` or `log` (wireguard-ts only) it runs in the foreground as
   * `node NODEARGS program -f IFNAME`, with LOG_LEVEL=error and its output appended to `log`.
   */
  async daemon(program: string, ifname: string, udpNs: string, devNs: string, opts: { nodeArgs?: string[]; log?: string } = {}): Promise<string> {
    const env = { ...process.env };
    delete env.LOG_LEVEL;
    if (opts.nodeArgs || opts.log) {
      if (opts.log) env.LOG_LEVEL = 'error';
      const out = opts.log ? openSync(opts.log, 'a') : 'ignore';
      const child = spawn('ip', ['netns', 'exec', udpNs, process.execPath, ...(opts.nodeArgs ?? []), program, '-f', ifname], {
        env,
        stdio: ['ignore', out, out],
      });
      if (typeof out === 'number') closeSync(out);
      this.children.push(child);
      for (let i = 0; i < 200; i++) {
        const up = await sh('ip', ['-n', udpNs, 'link', 'show', ifname]).then(
          () => true,
          () => false,
        );
        if (up) break;
        await sleep(50);
      }
    } else {
      await execFileP('ip', ['netns', 'exec', udpNs, program, ifname], { env, timeout: 30_000 });
    }
    this.sockets.push(uapiSocketPath(ifname));
    if (devNs !== udpNs) await sh('ip', ['-n', udpNs, 'link', 'set', ifname, 'netns', devNs]);
    return uapiSocketPath(ifname);
  }

  async cleanup(): Promise<void> {
    // SIGTERM first (a daemon run with --cpu-prof writes its profile as it exits), then SIGKILL.
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      for (const ns of this.namespaces) {
        const pids = (await sh('ip', ['netns', 'pids', ns]).catch(() => '')).split('\n').filter(Boolean);
        for (const p of pids) {
          try {
            process.kill(Number(p), sig);
          } catch {
            /* gone */
          }
        }
      }
      await sleep(sig === 'SIGTERM' ? 1500 : 200);
    }
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const ns of this.namespaces.splice(0)) await sh('ip', ['netns', 'del', ns]).catch(() => undefined);
    for (const s of this.sockets) rmSync(s, { force: true });
    rmSync(this.tmp, { recursive: true, force: true });
  }
}
