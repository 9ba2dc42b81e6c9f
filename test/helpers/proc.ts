/**
 * What every test file shares: the repository's paths, who we run as, running a program
 * (argument arrays, never a shell), and waiting for a condition.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (no trailing slash). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WG_TS = join(ROOT, 'bin', 'wireguard-ts');
export const CWG_BIN = join(ROOT, 'bin', 'cwg');
/** The native addon: tests of the TUN and UDP layers need it built. */
export const addonBuilt = existsSync(join(ROOT, 'build', 'Release', 'wgts.node'));

/** Root by effective uid: what the kernel checks for namespaces and TUN devices. */
export const isRoot = process.geteuid?.() === 0;

/** Absolute path of a system tool, or null. */
export function which(tool: string): string | null {
  for (const d of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin']) {
    const p = join(d, tool);
    if (existsSync(p)) return p;
  }
  return null;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every `step` ms until it holds (true) or `ms` have passed (false). */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, step = 25): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(step);
  }
}

/** Like waitFor, but a timeout is an error naming `what`. */
export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, ms = 5000, step = 50): Promise<void> {
  if (!(await waitFor(cond, ms, step))) throw new Error(`timed out waiting for ${what}`);
}

/** Is `pid` a live process (not gone, not a zombie)? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

export interface RunResult {
  /** The exit status; 128 when a signal (the timeout's SIGKILL included) ended it. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
  cwd?: string;
}

/** Run a program (no shell), give it `input` (or nothing) on stdin, and collect its output. */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => {}); // a program that does not read its input
    child.stdin.end(opts.input ?? '');
  });
}

/** The error of a program that did not exit 0: its status and output travel with it. */
export class RunError extends Error implements RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  constructor(file: string, args: readonly string[], r: RunResult) {
    super(`${[file, ...args].join(' ').slice(0, 200)}: exit ${r.code}: ${r.stderr.trim().split('\n')[0] ?? ''}`);
    this.code = r.code;
    this.stdout = r.stdout;
    this.stderr = r.stderr;
  }
}

/** Like run, but anything but exit status 0 rejects with a RunError. */
export async function runOk(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(file, args, opts);
  if (r.code !== 0) throw new RunError(file, args, r);
  return r;
}
