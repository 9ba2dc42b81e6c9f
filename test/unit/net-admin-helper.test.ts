/**
 * The C client (csrc/helper/net-admin-helper.c) against fake services (test/helpers/
 * fake-service.ts), in the test process or as processes the client starts itself. Each case
 * compiles the client's source with a unique socket name and the test's uid as the trusted
 * one (test/helpers/client-build.ts), so no root is needed and no real service is ever met.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildClient, buildSkipReason, type ClientBuild, installService, readLog } from '../helpers/client-build.js';
import { type Behaviour, type Echo, FakeService } from '../helpers/fake-service.js';

const skip = buildSkipReason();
const uid = process.getuid!();
const builds: ClientBuild[] = [];
const services: FakeService[] = [];
const children: ChildProcess[] = [];
const started: number[] = [];

afterAll(async () => {
  for (const s of services.splice(0)) s.close();
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const b of builds.splice(0)) b.remove();
});

/** A client build; `admin: false` builds one whose trusted uid is not ours. */
function variant(admin = true): ClientBuild {
  const b = buildClient({ adminUid: admin ? uid : uid + 1 });
  builds.push(b);
  return b;
}

function serve(b: ClientBuild, behaviour: Behaviour): FakeService {
  const s = new FakeService(b.name, behaviour);
  services.push(s);
  return s;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(b: ClientBuild, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn(b.bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - t0 }));
  });
}

/** A standalone fake service started by the test (not by the client), once it listens. */
async function startStandalone(b: ClientBuild, behaviour: Behaviour, tag: string): Promise<ChildProcess> {
  const logPath = join(b.dir, `${tag}.log`);
  const script = installService(b, { name: b.name, behaviour, logPath, lifetimeMs: 60_000 }, join(b.dir, `${tag}.js`));
  const child = spawn(process.execPath, [script], { stdio: 'ignore', env: {} });
  children.push(child);
  for (let i = 0; i < 500 && !readLog(logPath).some((e) => e.event === 'listening'); i++) await sleep(20);
  if (!readLog(logPath).some((e) => e.event === 'listening')) throw new Error('the standalone fake service did not start');
  return child;
}

/** Installs the answering fake as the script the client starts; returns its log path. */
function installStartable(b: ClientBuild, behaviour: Behaviour = { kind: 'answer' }): string {
  const logPath = join(b.dir, 'started.log');
  installService(b, { name: b.name, behaviour, logPath, lifetimeMs: 60_000 });
  return logPath;
}

function trackStarted(logPath: string): void {
  for (const e of readLog(logPath)) if (e.event === 'listening' && !started.includes(e.pid)) started.push(e.pid);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(skip !== null)(`net-admin-helper${skip ? ` (skipped: ${skip})` : ''}`, () => {
  describe('against an answering service', () => {
    it('forwards the arguments unchanged, prints the answer and exits with its code', async () => {
      const b = variant();
      serve(b, { kind: 'answer', code: 3, stdout: 'out text\nsecond line', stderr: 'err text\n' });
      const r = await run(b, ['cwg_connect', '', 'a b', 'ü', '--x=1'], { FOO: 'bar', PATH: '/nonexistent' });
      expect(r).toMatchObject({ code: 3, stdout: 'out text\nsecond line', stderr: 'err text\n' });
    });

    it('sends the namespace of a canonical pid as a descriptor, after dropping every privilege', async () => {
      const b = variant();
      const svc = serve(b, { kind: 'answer' });
      const target = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
      children.push(target);
      const pid = target.pid!;
      const r = await run(b, ['cwg_create', String(pid), '42', '0', '51820']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const echo = JSON.parse(r.stdout) as Echo;
      expect(echo).toEqual({ ns: 'fd', args: ['cwg_create', String(pid), '42', '0', '51820'], nsIno: statSync(`/proc/${pid}/ns/net`).ino });
      const priv = svc.seen[0]!.privileges;
      expect(priv).toMatchObject({ CapInh: '0000000000000000', CapPrm: '0000000000000000', CapEff: '0000000000000000', NoNewPrivs: '1' });
      if (priv.CapAmb !== undefined) expect(priv.CapAmb).toBe('0000000000000000');
      target.kill('SIGKILL');
    });

    it('sends errno:N when the namespace cannot be opened, and none for anything but a canonical pid of a device command', async () => {
      const b = variant();
      serve(b, { kind: 'answer' });
      let gone = 4194304;
      while (existsSync(`/proc/${gone}`)) gone--;
      const ns = async (args: string[]) => (JSON.parse((await run(b, args)).stdout) as Echo).ns;
      expect(await ns(['cwg_destroy', String(gone), '1', '0'])).toBe('errno:2');
      expect(await ns(['show', String(process.pid), '1', '0'])).toBe('fd');
      for (const bad of ['0123', '+12', '4194305', '0', ' 1', '1 ', '12a', '', '99999999']) {
        expect(await ns(['cwg_create', bad, '1', '0', '51820'])).toBe('none');
      }
      expect(await ns(['cwg_create'])).toBe('none');
      expect(await ns(['genkey', String(process.pid)])).toBe('none');
      const empty = JSON.parse((await run(b, [])).stdout) as Echo;
      expect(empty).toEqual({ ns: 'none', args: [], nsIno: null });
    });

    it('refuses arguments that do not fit one request, with one line', async () => {
      const b = variant();
      const svc = serve(b, { kind: 'answer' });
      const r = await run(b, ['cwg_create', 'x'.repeat(70_000)]);
      expect(r).toMatchObject({ code: 1, stdout: '', stderr: 'cwg_create: the arguments are too long (a request is at most 65536 bytes)\n' });
      expect(svc.seen).toHaveLength(0);
    });
  });

  describe('against services that misbehave', () => {
    it('says so in one line when the service hangs up or answers garbage', async () => {
      const b = variant();
      const closer = serve(b, { kind: 'close' });
      const r1 = await run(b, ['cwg_destroy', '1', '2', '0']);
      expect(r1).toMatchObject({ code: 1, stdout: '', stderr: 'cwg_destroy: the service closed the connection without an answer\n' });
      closer.close();
      serve(b, { kind: 'malformed' });
      const r2 = await run(b, ['show', '1', '2', '0']);
      expect(r2).toMatchObject({ code: 1, stdout: '', stderr: 'cwg show: malformed answer from the service\n' });
    });

    it('refuses a control socket owned by another uid before sending anything', async () => {
      const b = variant(false); // trusts uid + 1; our in-process fake runs as uid
      const svc = serve(b, { kind: 'answer' });
      const r = await run(b, ['cwg_create', String(process.pid), '1', '0', '51820']);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(new RegExp(`^cwg_create: the control socket @\\S+ belongs to uid ${uid}, not to the service's uid: refusing to talk to it\\n$`));
      await sleep(50);
      expect(svc.accepted).toBe(1);
      expect(svc.seen).toHaveLength(0);
    });

    it('is not the administrator: reports a missing service and starts none', async () => {
      const b = variant(false);
      const logPath = installStartable(b);
      const r = await run(b, ['cwg_create', '1', '2', '0', '51820']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^cwg_create: the service is not running \(nothing listens on @wgts-test\/\S+\)\n$/);
      expect(r.ms).toBeLessThan(2000);
      await sleep(300);
      expect(readLog(logPath)).toEqual([]);
    });
  });

  describe.concurrent('timeouts', () => {
    it('heartbeats keep a slow answer alive past the 5 s silence limit', async () => {
      const b = variant();
      serve(b, { kind: 'answer', heartbeats: 7, heartbeatMs: 1000, stdout: 'slow but fine\n' });
      const r = await run(b, ['cwg_create', '1', '2', '0', '51820']);
      expect(r).toMatchObject({ code: 0, stdout: 'slow but fine\n', stderr: '' });
      expect(r.ms).toBeGreaterThanOrEqual(6900);
    });

    it('gives up after 5 s of silence with one line, and leaves a silent service alone (create)', async () => {
      const b = variant();
      const svc = await startStandalone(b, { kind: 'silent' }, 'silent');
      const r = await run(b, ['cwg_create', '1', '2', '0', '51820']);
      expect(r).toMatchObject({ code: 1, stdout: '', stderr: 'cwg_create: the service did not answer within 5 s\n' });
      expect(r.ms).toBeGreaterThanOrEqual(4900);
      expect(r.ms).toBeLessThan(8000);
      expect(alive(svc.pid!)).toBe(true);
    });

    it('a stopped service (SIGSTOP) stalls no caller beyond 5 s', async () => {
      const b = variant();
      const svc = await startStandalone(b, { kind: 'answer' }, 'stopped');
      svc.kill('SIGSTOP');
      try {
        const r = await run(b, ['show', '1', '2', '0']);
        expect(r).toMatchObject({ code: 1, stdout: '', stderr: 'cwg show: the service did not answer within 5 s\n' });
        expect(r.ms).toBeLessThan(8000);
      } finally {
        svc.kill('SIGCONT');
      }
    });

    it('cwg_destroy replaces a service that does not answer: kills it, starts a new one, asks again', async () => {
      const b = variant();
      const stuck = await startStandalone(b, { kind: 'silent' }, 'stuck');
      const stuckExit = new Promise<string | null>((r) => stuck.once('exit', (_c, sig) => r(sig)));
      const logPath = installStartable(b);
      const r = await run(b, ['cwg_destroy', '7', '2', '0']);
      trackStarted(logPath);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as Echo).args).toEqual(['cwg_destroy', '7', '2', '0']);
      expect(r.ms).toBeGreaterThanOrEqual(4900);
      expect(r.ms).toBeLessThan(10_000);
      expect(await stuckExit).toBe('SIGKILL');
      const log = readLog(logPath);
      expect(log.filter((e) => e.event === 'request')).toHaveLength(1);
    });
  });

  describe('starting the service on demand (as the administrator)', () => {
    it('starts it detached: own session, not our child, cwd /, stdio on /dev/null, empty environment', async () => {
      const b = variant();
      const logPath = installStartable(b);
      const r = await run(b, ['cwg_create', String(process.pid), '1', '0', '51820'], { FOO: 'bar', NODE_OPTIONS: '--inspect' });
      trackStarted(logPath);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as Echo).ns).toBe('fd');
      const listening = readLog(logPath).filter((e) => e.event === 'listening');
      expect(listening).toHaveLength(1);
      const svc = listening[0]!;
      const mySid = Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[3]);
      expect(svc.sid).not.toBe(mySid);
      expect(svc.sid).not.toBe(svc.pid); // a session of its own, but not its leader
      expect(svc.ppid).not.toBe(process.pid);
      expect(svc).toMatchObject({ cwd: '/', env: [], stdio: ['/dev/null', '/dev/null', '/dev/null'], umask: '0022' });
      expect(alive(svc.pid)).toBe(true);
    });

    it('20 clients at once with no service: all answered, one service started, the others gave way', async () => {
      const b = variant();
      const logPath = installStartable(b);
      const runs = await Promise.all(Array.from({ length: 20 }, (_, i) => run(b, ['cwg_create', '1', String(i), '0', String(40000 + i)])));
      trackStarted(logPath);
      for (const r of runs) expect(r).toMatchObject({ code: 0, stderr: '' });
      const log = readLog(logPath);
      const listening = log.filter((e) => e.event === 'listening');
      expect(listening).toHaveLength(1);
      expect(log.filter((e) => e.event === 'request')).toHaveLength(20);
      expect(log.filter((e) => e.event === 'request').every((e) => e.pid === listening[0]!.pid)).toBe(true);
    });

    it('a service that cannot be started is one line, at once', async () => {
      const b = variant(); // no service script installed
      const r = await run(b, ['cwg_create', '1', '2', '0', '51820']);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`cwg_create: cannot start the service: ${b.serviceScript}: No such file or directory\n`);
      expect(r.ms).toBeLessThan(2000);
    });
  });
});
