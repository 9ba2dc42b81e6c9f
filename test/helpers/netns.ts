/**
 * Test harness for network namespaces: unique names, commands run with argument arrays
 * (never a shell), and cleanup that kills every process left in the namespaces.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isRoot, type RunOptions, type RunResult, runOk, sleep, which } from './proc.js';

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

/** Run in a namespace: `ip netns exec NS cmd args...`; anything but exit 0 rejects. */
export function nsRun(ns: string, cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runOk('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

export function nsPids(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A set of namespaces that are torn down together, killing whatever still runs in them. */
export class Namespaces {
  readonly names: string[] = [];
  constructor(readonly tag: string = uniqueTag()) {}

  async add(suffix: string): Promise<string> {
    const name = `wgts-${this.tag}-${suffix}`;
    await runOk('ip', ['netns', 'add', name]);
    this.names.push(name);
    await runOk('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
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
