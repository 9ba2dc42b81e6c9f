/**
 * Test harness for network namespaces: unique names, commands run with argument arrays
 * (never a shell), and cleanup that kills every process left in the namespaces.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const execFileP = promisify(execFile);

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const WG_TS = `${ROOT}bin/wireguard-ts`;

export const isRoot = process.getuid?.() === 0;

export function which(cmd: string): string | null {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/bin', '/usr/local/sbin']) {
    if (existsSync(`${dir}/${cmd}`)) return `${dir}/${cmd}`;
  }
  return null;
}

/** Why a root/namespace test cannot run here, or null when it can. */
export function skipReason(...tools: string[]): string | null {
  if (!isRoot) return 'needs root (TUN devices and network namespaces)';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  for (const t of ['ip', ...tools]) if (!which(t)) return `needs '${t}' (see .ci/run for the packages)`;
  return null;
}

/** A short unique tag for names (interface names must stay within 15 bytes). */
export function uniqueTag(): string {
  return `${(process.pid % 10000).toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`;
}

export async function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeout?: number; input?: string } = {},
): Promise<{ stdout: string; stderr: string }> {
  const p = execFileP(cmd, args, { env: opts.env ?? process.env, timeout: opts.timeout ?? 30_000, maxBuffer: 64 << 20 });
  if (opts.input !== undefined) p.child.stdin?.end(opts.input);
  return p;
}

/** Run in a namespace: `ip netns exec NS cmd args...`. */
export function nsRun(ns: string, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number; input?: string } = {}) {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/** Like nsRun but resolves to the exit status instead of throwing. */
export async function nsStatus(ns: string, cmd: string, args: string[], timeout = 30_000): Promise<number> {
  try {
    await nsRun(ns, cmd, args, { timeout });
    return 0;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'number' ? code : 1;
  }
}

export function nsSpawn(ns: string, cmd: string, args: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: 'ignore' });
}

export function nsPids(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A set of namespaces that are torn down together, killing whatever still runs in them. */
export class Namespaces {
  readonly names: string[] = [];
  constructor(readonly tag: string = uniqueTag()) {}

  async add(suffix: string): Promise<string> {
    const name = `wgts-${this.tag}-${suffix}`;
    await run('ip', ['netns', 'add', name]);
    this.names.push(name);
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  async cleanup(): Promise<void> {
    for (const ns of this.names)
      for (const pid of nsPids(ns)) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
    await sleep(200);
    for (const ns of this.names)
      for (const pid of nsPids(ns)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    for (const ns of this.names.splice(0)) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
  }
}
