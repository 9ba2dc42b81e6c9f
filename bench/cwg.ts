/**
 * `node dist/bench/cwg.js [RUNS]` (root): the latency of `cwg_create`, as a caller sees it
 * (spawn of bin/cwg_create until its exit, public key printed), over RUNS fresh containers
 * (default 10). Each device is destroyed and its container stopped after the measurement.
 * Reports the median (target: at most 1 s), the minimum and the maximum.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin');
const UNSHARE = ['/usr/bin/unshare', '/bin/unshare'].find((p) => existsSync(p));
const TARGET_MS = 1000;

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

async function container(): Promise<{ pid: number; proc: ChildProcess }> {
  const self = statSync('/proc/self/ns/net').ino;
  const proc = spawn(UNSHARE!, ['--net', 'sleep', '600'], { stdio: 'ignore' });
  const pid = proc.pid!;
  for (let i = 0; i < 500; i++) {
    try {
      if (readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep') && statSync(`/proc/${pid}/ns/net`).ino !== self) return { pid, proc };
    } catch {
      /* starting */
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  proc.kill('SIGKILL');
  throw new Error('container did not start');
}

/** A UDP port free now (v4 and v6), chosen by the kernel. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp6');
    s.on('error', reject);
    s.bind(0, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  if (process.geteuid?.() !== 0) {
    process.stderr.write('bench/cwg: must be run as root\n');
    process.exitCode = 1;
    return;
  }
  if (!UNSHARE) {
    process.stderr.write('bench/cwg: unshare (util-linux) is not installed\n');
    process.exitCode = 1;
    return;
  }
  const runs = Number(process.argv[2] ?? 10);
  if (!Number.isInteger(runs) || runs < 1 || runs > 1000) {
    process.stderr.write('usage: node dist/bench/cwg.js [RUNS 1..1000]\n');
    process.exitCode = 1;
    return;
  }
  const times: number[] = [];
  const net = 4000 + Math.floor(Math.random() * 100000);
  for (let i = 0; i < runs; i++) {
    const c = await container();
    try {
      const port = await freePort();
      const t0 = performance.now();
      const r = await run(process.execPath, [join(BIN, 'cwg_create'), String(c.pid), String(net), '0', String(port)]);
      const ms = performance.now() - t0;
      if (r.code !== 0) throw new Error(`cwg_create failed: ${r.stderr.trim()}`);
      times.push(ms);
      const d = await run(process.execPath, [join(BIN, 'cwg_destroy'), String(c.pid), String(net), '0']);
      if (d.code !== 0) throw new Error(`cwg_destroy failed: ${d.stderr.trim()}`);
    } finally {
      c.proc.kill('SIGKILL');
    }
  }
  const med = median(times);
  console.log(
    `cwg_create latency over ${runs} runs: median ${med.toFixed(0)} ms, min ${Math.min(...times).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms (target: median <= ${TARGET_MS} ms: ${med <= TARGET_MS ? 'met' : 'NOT met'})`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/cwg: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
