/**
 * The net-admin-helper that `npm ci` builds (bin/net-admin-helper), with its real socket name
 * and its trust in root only, run inside anonymous namespaces made here (the abstract name is
 * per network namespace, so no real service is met): a root fake service answers it; one run
 * by nobody is refused; installed with file capabilities (cap_sys_ptrace=p) and run by nobody,
 * it opens a root process's namespace, without them it reports EACCES. Needs root.
 */
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTROL_NAME } from '../../tun/control-protocol.js';
import * as ipx from '../../tun/ip.js';
import { AnonNetns } from '../helpers/anon-netns.js';
import { buildClient, type ClientBuild, installService, readLog } from '../helpers/client-build.js';
import { type Echo, FakeService } from '../helpers/fake-service.js';
import { ROOT, which } from '../helpers/proc.js';

const BIN = join(ROOT, 'bin/net-admin-helper');
const NOBODY = 65534;
const reason =
  process.getuid?.() !== 0
    ? 'needs root'
    : !existsSync(BIN)
      ? 'needs the built client (npm ci)'
      : !which('setpriv') || !which('setcap')
        ? 'needs setpriv and setcap'
        : null;

const netns = new AnonNetns();
const services: FakeService[] = [];
const dirs: string[] = [];
const builds: ClientBuild[] = [];

afterAll(async () => {
  for (const s of services.splice(0)) s.close();
  await netns.killAll();
  for (const b of builds.splice(0)) b.remove();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` inside the network namespace of `pid` (as nobody with `asNobody`). */
function runIn(pid: number, cmd: string[], asNobody = false): Promise<Run> {
  const drop = asNobody ? [which('setpriv')!, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--'] : [];
  return new Promise((resolve, reject) => {
    const p = spawn(ipx.nsenterBinary(), [`--net=/proc/${pid}/ns/net`, '--', ...drop, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'], env: {} });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'wgts-nah-'));
  chmodSync(d, 0o755);
  dirs.push(d);
  return d;
}

describe.skipIf(reason !== null)(`net-admin-helper as built${reason ? ` (skipped: ${reason})` : ''}`, () => {
  it('talks to a root service on wireguard-ts/control of its namespace, with no privilege left', async () => {
    const h = await netns.create();
    const nsFd = openSync(`/proc/${h.pid}/ns/net`, 'r');
    const svc = new FakeService(CONTROL_NAME, { kind: 'answer', code: 0 }, { netnsFd: nsFd });
    services.push(svc);
    closeSync(nsFd);
    const r = await runIn(h.pid, [BIN, 'cwg_create', String(h.pid), '5', '1', '51820']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout) as Echo).toEqual({
      ns: 'fd',
      args: ['cwg_create', String(h.pid), '5', '1', '51820'],
      nsIno: statSync(`/proc/${h.pid}/ns/net`).ino,
    });
    expect(svc.seen[0]!.privileges).toMatchObject({ CapEff: '0000000000000000', CapPrm: '0000000000000000', CapInh: '0000000000000000', NoNewPrivs: '1' });
  });

  it('refuses a control socket held by a non-root process', async () => {
    const h = await netns.create();
    const b = buildClient({ adminUid: 0 }); // a scratch package for the standalone fake service
    builds.push(b);
    const logDir = join(b.dir, 'log');
    mkdirSync(logDir, { mode: 0o777 });
    chmodSync(logDir, 0o777);
    const logPath = join(logDir, 'fake.log');
    const script = installService(b, { name: CONTROL_NAME, behaviour: { kind: 'answer' }, logPath, lifetimeMs: 30_000 }, join(b.dir, 'squatter.js'));
    const squatter = spawn(
      ipx.nsenterBinary(),
      [`--net=/proc/${h.pid}/ns/net`, '--', which('setpriv')!, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', process.execPath, script],
      {
        stdio: 'ignore',
        env: {},
      },
    );
    try {
      for (let i = 0; i < 500 && !readLog(logPath).some((e) => e.event === 'listening'); i++) await new Promise((r) => setTimeout(r, 20));
      expect(readLog(logPath).find((e) => e.event === 'listening')?.uid).toBe(NOBODY);
      const r = await runIn(h.pid, [BIN, 'cwg_destroy', String(h.pid), '5', '1']);
      expect(r).toEqual({
        code: 1,
        stdout: '',
        stderr: `cwg_destroy: the control socket @${CONTROL_NAME} belongs to uid ${NOBODY}, not to root: refusing to talk to it\n`,
      });
      expect(readLog(logPath).filter((e) => e.event === 'request')).toEqual([]);
    } finally {
      squatter.kill('SIGKILL');
    }
  });

  it('installed with cap_sys_ptrace=p, run by nobody, opens a root process namespace; without, reports EACCES', async () => {
    const h = await netns.create();
    const nsFd = openSync(`/proc/${h.pid}/ns/net`, 'r');
    const svc = new FakeService(CONTROL_NAME, { kind: 'answer' }, { netnsFd: nsFd });
    services.push(svc);
    closeSync(nsFd);
    const d = scratch();
    const plain = join(d, 'plain-helper');
    const capped = join(d, 'capped-helper');
    copyFileSync(BIN, plain);
    copyFileSync(BIN, capped);
    chmodSync(plain, 0o755);
    chmodSync(capped, 0o755);
    await new Promise<void>((resolve, reject) => {
      const p = spawn(which('setcap')!, ['cap_sys_ptrace=p', capped], { stdio: 'ignore' });
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`setcap exited ${code}`))));
    });
    const target = String(h.pid); // the holder: a root process
    const without = await runIn(h.pid, [plain, 'show', target, '5', '1'], true);
    expect(without.stderr).toBe('');
    expect((JSON.parse(without.stdout) as Echo).ns).toBe('errno:13');
    const withCap = await runIn(h.pid, [capped, 'show', target, '5', '1'], true);
    expect(withCap.stderr).toBe('');
    expect(JSON.parse(withCap.stdout) as Echo).toMatchObject({ ns: 'fd', nsIno: statSync(`/proc/${h.pid}/ns/net`).ino });
    const priv = svc.seen.at(-1)!.privileges;
    expect(svc.seen.at(-1)!.peer.uid).toBe(NOBODY);
    expect(priv).toMatchObject({ CapEff: '0000000000000000', CapPrm: '0000000000000000', CapInh: '0000000000000000', NoNewPrivs: '1' });
  });
});
