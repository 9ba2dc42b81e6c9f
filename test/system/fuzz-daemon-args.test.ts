/**
 * Fuzz, as root: bin/wireguard-ts with random and mutated command lines inside a namespace of
 * the test's own. Whatever the command line, it prints --help/--version, or one line and exits
 * 1 leaving nothing (no device, no socket, no process), or it starts a daemon whose device and
 * socket exist until it is stopped, and then are gone. Plus the failures only root reaches:
 * a vanished --netns-pid, a run dir that cannot be made, a name taken by another device or by
 * a running daemon (which must survive). The unprivileged cases are test/unit/fuzz-daemon-args.
 *
 * Every pid and run dir the fuzz may pass is the test's own (its sleeper's namespace, its
 * temporary directory), so that no command line can touch the host.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEnded, prng, processesWith, randomArgv, runArgv } from '../helpers/argv-fuzz.js';
import { Namespaces, nsPids, skipReason } from '../helpers/netns.js';
import { pidAlive, runOk, sleep, WG_TS, waitUntil } from '../helpers/proc.js';

const skip = skipReason();

/** Every file under `dir` whose name ends in .sock. */
function sockets(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.name.endsWith('.sock')) out.push(join(e.parentPath, e.name));
  return out;
}

async function links(ns: string): Promise<string[]> {
  const j = JSON.parse((await runOk('ip', ['-n', ns, '-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>;
  return j.map((l) => l.ifname).sort();
}

describe.skipIf(skip)(`fuzzing the daemon command line as root${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const nss = new Namespaces();
  const dir = mkdtempSync(join(tmpdir(), 'wgts-argv-root-'));
  const marker = `WGTS_ARGV_FUZZ=${process.pid}-${Date.now()}`;
  let ns = '';
  let ns2 = '';
  let sleeper: ChildProcess | null = null;
  let sleeperPid = '';
  // pid_max is at most 4194304, so no process has this pid.
  const GONE = '4194304';

  beforeAll(async () => {
    ns = await nss.add('fz');
    ns2 = await nss.add('fy');
    sleeper = spawn('ip', ['netns', 'exec', ns2, 'sleep', '600'], { stdio: 'ignore' });
    await waitUntil('the sleeper', () => nsPids(ns2).length === 1);
    sleeperPid = String(nsPids(ns2)[0]);
    writeFileSync(join(dir, 'file'), '');
  });
  afterAll(async () => {
    sleeper?.kill('SIGKILL');
    await nss.cleanup();
    for (const p of processesWith(marker)) process.kill(p, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const env = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', WG_TS_WARMUP: '0', [marker.split('=')[0]!]: marker.split('=')[1]! });

  /** Pids and run dirs in `argv` kept to the test's own (see the header). */
  function confine(argv: string[]): string[] {
    const out = [...argv];
    for (let i = 0; i + 1 < out.length; i++) {
      const v = out[i + 1]!;
      if (out[i] === '--netns-pid' && /^[0-9]+$/.test(v) && v !== sleeperPid && v !== GONE) out[i + 1] = sleeperPid;
      if (out[i] === '--run-dir' && v.startsWith('/') && v !== dir && !v.startsWith(`${dir}/`)) out[i + 1] = join(dir, 'elsewhere');
    }
    return ['--run-dir', dir, ...out];
  }

  /** Nothing of ours anywhere: only lo in both namespaces, no socket, no process. */
  async function nothingLeft(what: string): Promise<void> {
    let left = processesWith(marker);
    for (let w = 0; w < 100 && left.length; w++) {
      await sleep(20);
      left = processesWith(marker);
    }
    expect(left, `${what}: processes left`).toEqual([]);
    expect(nsPids(ns), `${what}: processes in the namespace`).toEqual([]);
    expect(await links(ns), `${what}: devices`).toEqual(['lo']);
    expect(await links(ns2), `${what}: devices in the sleeper's namespace`).toEqual(['lo']);
    expect(sockets(dir), `${what}: sockets`).toEqual([]);
  }

  /** Stop every daemon in the namespace and check that it cleans up. */
  async function stopAll(what: string): Promise<void> {
    for (const p of processesWith(marker)) process.kill(p, 'SIGTERM');
    await waitUntil(`${what}: the daemons to exit`, () => processesWith(marker).length === 0, 10_000);
    await nothingLeft(`${what}, stopped`);
  }

  /** Run one command line in the namespace; returns what it did, having checked it. */
  async function one(argv: string[]): Promise<string> {
    const what = JSON.stringify(argv);
    let live = false;
    const res = await runArgv('ip', ['netns', 'exec', ns, WG_TS, ...argv], {
      env: env(),
      settleMs: 8000,
      whileRunning: async () => {
        live = sockets(dir).length === 1 && (await links(ns)).length + (await links(ns2)).length === 3;
      },
    });
    if (res.stayed) {
      // A foreground daemon: it served until SIGTERM, then exited 0.
      expect(live, `${what}: a foreground daemon without its device and socket`).toBe(true);
      expect(res.code, `${what}: exit status after SIGTERM; stderr ${res.stderr}`).toBe(0);
      await nothingLeft(`${what}, stopped`);
      return 'foreground';
    }
    const kind = checkEnded(argv, res);
    if (kind === 'started') {
      expect(sockets(dir).length, `${what}: started without a socket`).toBe(1);
      expect((await links(ns)).length + (await links(ns2)).length, `${what}: started without a device`).toBe(3);
      await stopAll(what);
    } else await nothingLeft(what);
    return kind;
  }

  it('answers 40 random and mutated command lines, leaving nothing behind', { timeout: 300_000 }, async () => {
    const r = prng(Number(process.env.FUZZ_SEED ?? 11));
    const valid = [
      ['wgfz0'],
      ['-f', 'wgfz1'],
      ['--netns-pid', sleeperPid, 'wgfz2'],
      ['--run-dir', join(dir, 'sub'), 'wgfz3'],
      ['-'],
      ['x'.repeat(15)],
      ['--version'],
      ['-h'],
    ];
    const seen: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      const argv = confine(
        i < valid.length ? valid[i]! : randomArgv(r, valid, [dir, join(dir, 'file', 'x'), 'relative', 'wgfz4', 'lo'], [sleeperPid, GONE, '0', 'abc', '-1']),
      );
      const kind = await one(argv);
      seen[kind] = (seen[kind] ?? 0) + 1;
    }
    for (const k of ['started', 'foreground', 'error', 'help', 'version']) expect(seen[k], `${k} in ${JSON.stringify(seen)}`).toBeGreaterThan(0);
  });

  it('fails with one line and leaves nothing where only root gets: a vanished pid, a bad run dir, a taken name', { timeout: 120_000 }, async () => {
    for (const argv of [['--netns-pid', GONE, 'wgfz5'], ['--run-dir', join(dir, 'file', 'sub'), 'wgfz6'], ['lo']]) {
      expect(await one(confine(argv)), JSON.stringify(argv)).toBe('error');
    }
    // A name another device has: refused, and that device stays.
    await runOk('ip', ['-n', ns, 'link', 'add', 'wgfz7', 'type', 'veth', 'peer', 'name', 'wgfz7p']);
    const res = await runArgv('ip', ['netns', 'exec', ns, WG_TS, ...confine(['wgfz7'])], { env: env(), settleMs: 20_000 });
    expect(checkEnded(['wgfz7'], res)).toBe('error');
    expect(await links(ns)).toEqual(['lo', 'wgfz7', 'wgfz7p']);
    await runOk('ip', ['-n', ns, 'link', 'del', 'wgfz7']);
    await nothingLeft('a dummy device in the way');
    // A name a running daemon serves: refused, and the running daemon is untouched.
    expect(checkEnded(['wgfz8'], await runArgv('ip', ['netns', 'exec', ns, WG_TS, ...confine(['wgfz8'])], { env: env(), settleMs: 20_000 }))).toBe('started');
    const first = processesWith(marker);
    expect(first.length).toBe(1);
    const again = await runArgv('ip', ['netns', 'exec', ns, WG_TS, ...confine(['wgfz8'])], { env: env(), settleMs: 20_000 });
    expect(checkEnded(['wgfz8'], again)).toBe('error');
    expect(again.stderr).toMatch(/in use|exists|busy/i);
    expect(processesWith(marker)).toEqual(first);
    expect(pidAlive(first[0]!)).toBe(true);
    expect(sockets(dir).length).toBe(1);
    expect(statSync(sockets(dir)[0]!).isSocket()).toBe(true);
    await stopAll('the daemon in the way');
  });
});
