/**
 * Random and mutated command lines for bin/wireguard-ts, and the checks every run must pass:
 * --help/--version on stdout with status 0, or one line on stderr with status 1 (never a
 * stack trace), or a daemon that started (only where the caller can create devices).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { xorshift32 } from './prng.js';

/** Seeded choices (xorshift32): every run of a seed sees the same cases. */
export function prng(seed: number) {
  const next = xorshift32(seed);
  const int = (n: number) => next() % n;
  return { int, chance: (p: number) => next() / 0x1_0000_0000 < p, pick: <T>(a: readonly T[]): T => a[int(a.length)]! };
}
export type Rng = ReturnType<typeof prng>;

export const OPTIONS = [
  '-f',
  '--foreground',
  '-h',
  '--help',
  '-v',
  '--version',
  '--netns-pid',
  '--run-dir',
  '--',
  '-',
  '-x',
  '--bogus',
  '--netns-pid=1',
  '--run-dir=/tmp',
  '-fv',
  '--FOREGROUND',
];
export const BAD_IFNAMES = ['', '.', '..', 'a/b', 'a b', 'a:b', 'x'.repeat(16), 'é'.repeat(8), 'a\nb', '\t', 'w\x7fg', 'wg\x1b[31m'];
export const PIDS = ['1', '0', '-1', '4194305', '99999999999', '1e3', ' 1', '01', 'abc', '', '4194304'];
/** Characters a mutation may put into a token (no NUL: execve cannot pass one). */
const NOISE = ['\n', '\r', '\x1b', ' ', '-', '=', '/', ':', 'é', '\u202e', '%s', '$(id)', '\\'];

/**
 * One command line: a valid one (from `valid`), mutated a few times, or random tokens.
 * `extra` adds tokens the caller wants in the pool (ifnames, run dirs); `pids` replaces the
 * pids in it.
 */
export function randomArgv(r: Rng, valid: readonly string[][], extra: readonly string[], pids: readonly string[] = PIDS): string[] {
  const pool = [...OPTIONS, ...BAD_IFNAMES, ...pids, ...extra];
  let argv: string[] = r.chance(0.2) ? Array.from({ length: r.int(5) }, () => r.pick(pool)) : [...r.pick(valid)];
  for (let n = r.int(4); n > 0; n--) {
    const i = r.int(argv.length + 1);
    switch (r.int(6)) {
      case 0:
        argv.splice(i, 1);
        break;
      case 1:
        if (argv.length) argv.splice(i, 0, argv[Math.min(i, argv.length - 1)]!);
        break;
      case 2:
        argv.splice(i, 0, r.pick(pool));
        break;
      case 3: {
        if (!argv.length) break;
        const j = Math.min(i, argv.length - 1);
        const t = argv[j]!;
        const at = r.int(t.length + 1);
        argv[j] = t.slice(0, at) + r.pick(NOISE) + t.slice(at + (r.chance(0.5) ? 1 : 0));
        break;
      }
      case 4:
        if (argv.length) argv[Math.min(i, argv.length - 1)] = argv[Math.min(i, argv.length - 1)]!.slice(0, r.int(4));
        break;
      default:
        argv = argv.reverse();
    }
  }
  return argv;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The process was still running after `settleMs` (a foreground daemon) and was sent SIGTERM. */
  stayed: boolean;
}

/**
 * Run `cmd args`; if it is still running after `settleMs`, call `whileRunning` (checks on the
 * live daemon) and then SIGTERM it. Every run carries `marker` in its environment, so that
 * anything it leaves running can be found (see processesWith).
 */
export function runArgv(
  cmd: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; uid?: number; gid?: number; settleMs: number; whileRunning?: () => Promise<void> },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    let stayed = false;
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    const t = setTimeout(async () => {
      stayed = true;
      try {
        await opts.whileRunning?.();
      } finally {
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }
    }, opts.settleMs);
    child.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr, stayed });
    });
  });
}

/** Pids of processes whose environment holds `marker` (NAME=VALUE). */
export function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'latin1').split('\0').includes(marker)) out.push(Number(d));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** The check for a run that ended by itself: usage output, or one clean error line. */
export function checkEnded(argv: readonly string[], r: RunResult): 'help' | 'version' | 'error' | 'started' {
  const what = JSON.stringify(argv);
  if (r.signal !== null) throw new Error(`${what}: killed by ${r.signal}`);
  if (r.code === 0 && r.stdout.startsWith('Usage: wireguard-ts ')) {
    if (r.stderr !== '') throw new Error(`${what}: --help wrote to stderr: ${r.stderr}`);
    return 'help';
  }
  if (r.code === 0 && /^wireguard-ts v\S+\n$/.test(r.stdout)) {
    if (r.stderr !== '') throw new Error(`${what}: --version wrote to stderr: ${r.stderr}`);
    return 'version';
  }
  if (r.code === 0 && r.stdout === '' && r.stderr === '') return 'started';
  if (r.code !== 1) throw new Error(`${what}: exit status ${r.code}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`);
  if (r.stdout !== '') throw new Error(`${what}: an error wrote to stdout: ${JSON.stringify(r.stdout)}`);
  if (!/^wireguard-ts: [^\n]+\n$/.test(r.stderr)) throw new Error(`${what}: not one error line: ${JSON.stringify(r.stderr)}`);
  if (/\bat .+:\d+:\d+/.test(r.stderr)) throw new Error(`${what}: a stack trace: ${JSON.stringify(r.stderr)}`);
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(r.stderr)) throw new Error(`${what}: control characters in the error: ${JSON.stringify(r.stderr)}`);
  return 'error';
}
