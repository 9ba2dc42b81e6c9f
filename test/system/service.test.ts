/**
 * The host service (root): what only one long-lived process per namespace can do. Links survive
 * their caller's cgroup being killed; an unprivileged member of the configured group manages
 * its own containers and nothing else; the descriptor the client opened, never a pid, decides
 * the namespace; a SIGKILLed service brings fifty links back with the same keys and ports;
 * containers that exit while it is down are forgotten; a stopped service stalls nobody; a
 * create killed at any moment leaves nothing behind; the host's own namespaces are refused;
 * a hundred creates at once all succeed.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { request } from '../../tun/control.js';
import { pidAlive, ROOT, run, sleep, waitFor, which } from '../helpers/proc.js';
import { otherUserSkipReason, publicCopy } from '../helpers/public-copy.js';
import {
  type Container,
  cleanEnv,
  cwgAddr,
  devicesIn,
  e2eSkipReason,
  Lab,
  randomNet,
  randomPort,
  type Site,
  servicesIn,
  udpPortBound,
} from '../helpers/sites.js';

const skip = e2eSkipReason(['ping', 'setpriv', 'ss']);
const KEY_LINE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n$/;

/** Exit 1, one line on stderr, nothing on stdout. */
function expectFailure(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  expect(r.stdout).toBe('');
  expect(r.code).toBe(1);
  expect(r.stderr.trimEnd()).toMatch(pattern);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
}

/** The cgroup v2 hierarchy as this process sees it, or null. */
function unifiedRoot(): string | null {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep > 0 && line.slice(sep + 3).startsWith('cgroup2 ')) return line.slice(0, sep).split(' ')[4] ?? null;
  }
  return null;
}

describe.skipIf(skip !== null)(`the host service${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const lab = new Lab();
  let A: Site;
  let B: Site;
  beforeAll(() => {
    [A, B] = lab.setup();
  });
  afterAll(async () => {
    await lab.cleanup();
  });

  /** A linked pair: a device in a container of each site, connected both ways. */
  async function link(ca: Container, cb: Container, net: number, pa: number, pb: number): Promise<{ keyA: string; keyB: string }> {
    const a = await lab.cwg(ca.site, ['cwg_create', String(ca.pid), String(net), '0', String(pa)]);
    const b = await lab.cwg(cb.site, ['cwg_create', String(cb.pid), String(net), '1', String(pb)]);
    expect(a.stdout).toMatch(KEY_LINE);
    expect(b.stdout).toMatch(KEY_LINE);
    const keyA = a.stdout.trim();
    const keyB = b.stdout.trim();
    expect((await lab.cwg(ca.site, ['cwg_connect', String(ca.pid), String(net), '0', `${cb.site.addr}:${pb}`, keyB])).code).toBe(0);
    expect((await lab.cwg(cb.site, ['cwg_connect', String(cb.pid), String(net), '1', `${ca.site.addr}:${pa}`, keyA])).code).toBe(0);
    return { keyA, keyB };
  }

  async function pings(c: Container, to: string, count = 1): Promise<boolean> {
    const r = await lab.inContainer(c, which('ping')!, ['-c', String(count), '-i', '0.2', '-W', '2', to]);
    return r.code === 0;
  }

  it("keeps the link when everything in the caller's cgroup is killed, as a container runtime does", async () => {
    const root = unifiedRoot();
    if (root === null) return void console.warn('no cgroup v2 hierarchy mounted: case skipped');
    // Sites of their own, so that the first command (in the doomed cgroup) starts their services.
    const lab2 = new Lab();
    const [X, Y] = lab2.setup();
    const caller = join(root, `wgts-caller-${lab2.id}`);
    mkdirSync(caller);
    const killCaller = () => {
      for (const p of readFileSync(join(caller, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) process.kill(Number(p), 'SIGKILL');
    };
    try {
      const cx = await lab2.container(X);
      const cy = await lab2.container(Y);
      const net = randomNet();
      const p = randomPort();
      // As the caller: `sh` joins the cgroup, then runs cwg, which starts the site's service from there.
      const inCgroup = (site: Site, args: string[]) =>
        run(
          '/bin/sh',
          [
            '-c',
            'echo $$ > "$1/cgroup.procs" && shift && exec "$@"',
            'sh',
            caller,
            which('ip')!,
            'netns',
            'exec',
            site.ns,
            process.execPath,
            join(ROOT, 'bin', 'cwg'),
            ...args,
          ],
          {
            env: cleanEnv(),
          },
        );
      const a = await inCgroup(X, ['cwg_create', String(cx.pid), String(net), '0', String(p)]);
      const b = await inCgroup(Y, ['cwg_create', String(cy.pid), String(net), '1', String(p + 1)]);
      expect(a.stdout).toMatch(KEY_LINE);
      expect(b.stdout).toMatch(KEY_LINE);
      expect((await inCgroup(X, ['cwg_connect', String(cx.pid), String(net), '0', `${Y.addr}:${p + 1}`, b.stdout.trim()])).code).toBe(0);
      expect((await inCgroup(Y, ['cwg_connect', String(cy.pid), String(net), '1', `${X.addr}:${p}`, a.stdout.trim()])).code).toBe(0);
      const services = [...servicesIn(X.inode), ...servicesIn(Y.inode)];
      expect(services).toHaveLength(2);
      for (const svc of services) expect(readFileSync(`/proc/${svc}/cgroup`, 'utf8')).not.toContain(`wgts-caller-${lab2.id}`);
      // The runtime removes the caller's container: every process left in its cgroup dies.
      killCaller();
      await sleep(200);
      for (const svc of services) expect(pidAlive(svc)).toBe(true);
      expect(await lab2.inContainer(cx, which('ping')!, ['-c', '3', '-i', '0.2', '-W', '2', cwgAddr(net, 1)])).toMatchObject({ code: 0 });
    } finally {
      killCaller();
      await lab2.cleanup();
      rmdirSync(caller);
    }
  });

  const skipUser = otherUserSkipReason();
  it.skipIf(skipUser !== null)(
    `lets a member of the configured group manage its own container, and nothing else${skipUser ? ` (skipped: ${skipUser})` : ''}`,
    async () => {
      const G = lab.lonelySite('g');
      const dir = mkdtempSync(join(tmpdir(), 'cwg-conf-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      const conf = join(dir, 'cwg.conf');
      writeFileSync(conf, 'group = nogroup\n', { mode: 0o644 });
      await lab.startService(G, ['--config', conf]);
      const copy = publicCopy();
      onTestFinished(() => copy.remove());
      const client = join(copy.root, 'build', 'Release', 'net-admin-helper');
      const as = (uid: number, gid: number, args: string[]) =>
        run(which('ip')!, ['netns', 'exec', G.ns, which('setpriv')!, `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', client, ...args], {
          env: cleanEnv(),
          cwd: '/',
        });
      const own = await lab.container(G, { uid: 65534 });
      const roots = await lab.container(G);
      const net = randomNet();
      const port = randomPort();
      // nobody (gid nogroup) for its own container: created, connected, shown, destroyed.
      const made = await as(65534, 65534, ['cwg_create', String(own.pid), String(net), '0', String(port)]);
      expect(made.stderr).toBe('');
      expect(made.stdout).toMatch(KEY_LINE);
      const peer = 'hbNhVyWZ0jyZ3DXYAwRkY+gIAT/7aW9lGrlvvsb6cV0=';
      expect(await as(65534, 65534, ['cwg_connect', String(own.pid), String(net), '0', `192.0.2.9:${port}`, peer])).toEqual({
        code: 0,
        stdout: '',
        stderr: '',
      });
      expect((await as(65534, 65534, ['show', String(own.pid), String(net), '0'])).stdout).toContain(`peer: ${peer}\n`);
      // Not its container: the kernel refuses the open, nothing is made.
      expectFailure(
        await as(65534, 65534, ['cwg_create', String(roots.pid), String(net), '1', String(port + 1)]),
        /cannot access the network namespace of pid/,
      );
      // Not in the group: refused before anything is touched.
      expectFailure(
        await as(65534, 1, ['cwg_destroy', String(own.pid), String(net), '0']),
        /^cwg_destroy: must be run as root or as a member of group nogroup/,
      );
      expect(await as(65534, 65534, ['cwg_destroy', String(own.pid), String(net), '0'])).toEqual({ code: 0, stdout: '', stderr: '' });
      expect(await udpPortBound(lab, G, port)).toBe(false);
      expect(await udpPortBound(lab, G, port + 1)).toBe(false);
    },
  );

  it('puts a device where the descriptor says, whatever the pid the request names', async () => {
    const c1 = await lab.container(A);
    const c2 = await lab.container(A);
    await lab.client(A, ['show']); // the site's service runs
    const net = randomNet();
    const port = randomPort();
    // The client opened c1's namespace; by the time the service works, the pid it names could
    // be anyone's (here: c2's). The device goes into the namespace of the descriptor.
    const fd = openSync(`/proc/${c1.pid}/ns/net`, 'r');
    const site = openSync(`/run/netns/${A.ns}`, 'r'); // the control socket is the site's
    let r: Awaited<ReturnType<typeof request>>;
    try {
      r = await request(['cwg_create', String(c2.pid), String(net), '0', String(port)], { passFd: fd, netnsFd: site });
    } finally {
      closeSync(fd);
      closeSync(site);
    }
    expect(r.code).toBe(0);
    const name = `cwg-${net}-0`;
    expect((await lab.inContainer(c1, which('ip')!, ['link', 'show', name])).code).toBe(0);
    expect((await lab.inContainer(c2, which('ip')!, ['link', 'show', name])).code).not.toBe(0);
    expect((await lab.cwg(A, ['cwg_destroy', String(c1.pid), String(net), '0'])).code).toBe(0);
  });

  it('refuses the host namespace, a kernel thread and pid 1', async () => {
    const net = randomNet();
    const port = randomPort();
    // pid 1's namespace is refused (where pid 1 may not be opened at all, the open fails first).
    expectFailure(
      await lab.cwg(A, ['cwg_create', '1', String(net), '0', String(port)]),
      /is pid 1's, not a container's; refusing to put a device there|cannot access the network namespace of pid 1/,
    );
    // A kernel thread's (kthreadd's) is the host's initial namespace.
    expectFailure(
      await lab.cwg(A, ['cwg_create', '2', String(net), '0', String(port)]),
      /is (pid 1's|the kernel threads'), not a container's; refusing to put a device there/,
    );
    const self = await run(
      which('ip')!,
      ['netns', 'exec', A.ns, '/bin/sh', '-c', `exec "$1" "$2" cwg_create $$ ${net} 0 ${port}`, 'sh', process.execPath, join(ROOT, 'bin', 'cwg')],
      {
        env: cleanEnv(),
      },
    );
    expectFailure(self, /is the host service's own, not a container's/);
    expect(await udpPortBound(lab, A, port)).toBe(false);
  });

  it('brings fifty links back after a SIGKILL, with the same keys and ports, and forgets containers that exited meanwhile', async () => {
    const n = 50;
    const as = await Promise.all(Array.from({ length: n + 1 }, () => lab.container(A)));
    const bs = await Promise.all(Array.from({ length: n + 1 }, () => lab.container(B)));
    const base = randomNet() % 8000000;
    const port = 20000 + Math.floor(Math.random() * 20000);
    const keys: Array<{ keyA: string; keyB: string }> = [];
    for (let i = 0; i <= n; i++) keys.push(await link(as[i]!, bs[i]!, base + i, port + 2 * i, port + 2 * i + 1));
    for (let i = 0; i < n; i++) expect(await pings(as[i]!, cwgAddr(base + i, 1))).toBe(true);
    const [svc] = servicesIn(A.inode);
    process.kill(svc!, 'SIGKILL');
    await waitFor(() => !pidAlive(svc!), 2000);
    // While it is down, one container goes away.
    await lab.stopContainer(as[n]!);
    const t0 = Date.now();
    expect(await lab.client(A, ['show', String(as[0]!.pid), String(base), '0'])).toMatchObject({ code: 0, stderr: '' }); // starts it again
    const back = await waitFor(
      async () => {
        const ok = await Promise.all(as.slice(0, n).map((c, i) => pings(c, cwgAddr(base + i, 1))));
        return ok.every(Boolean);
      },
      5000,
      100,
    );
    expect(back).toBe(true);
    expect(Date.now() - t0).toBeLessThan(6000);
    for (let i = 0; i < n; i += 7) {
      const shown = (await lab.cwg(A, ['show', String(as[i]!.pid), String(base + i), '0'])).stdout;
      expect(shown).toContain(`public key: ${keys[i]!.keyA}\n`);
      expect(shown).toContain(`listening port: ${port + 2 * i}\n`);
      expect(shown).toContain(`peer: ${keys[i]!.keyB}\n`);
    }
    // The exited container's device is not made again; its port is free.
    expect(devicesIn(A)).toBe(n);
    expect(await udpPortBound(lab, A, port + 2 * n)).toBe(false);
    await Promise.all([...as, ...bs].map((c) => lab.stopContainer(c)));
    expect(await waitFor(() => devicesIn(A) === 0 && devicesIn(B) === 0, 5000)).toBe(true);
  }, 120_000);

  it('stalls nobody when stopped: commands fail within 5 s, and cwg_destroy still removes the device', async () => {
    const c = await lab.container(B);
    const net = randomNet();
    const port = randomPort();
    expect((await lab.cwg(B, ['cwg_create', String(c.pid), String(net), '0', String(port)])).code).toBe(0);
    const [svc] = servicesIn(B.inode);
    process.kill(svc!, 'SIGSTOP');
    onTestFinished(() => {
      if (pidAlive(svc!)) process.kill(svc!, 'SIGCONT');
    });
    const t0 = Date.now();
    expectFailure(await lab.cwg(B, ['show', String(c.pid), String(net), '0']), /^cwg show: the service did not answer within 5 s$/);
    expect(Date.now() - t0).toBeLessThan(7000);
    const d = await lab.cwg(B, ['cwg_destroy', String(c.pid), String(net), '0']);
    expect(d).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await udpPortBound(lab, B, port)).toBe(false);
    expect((await lab.inContainer(c, which('ip')!, ['link', 'show', `cwg-${net}-0`])).code).not.toBe(0);
  }, 60_000);

  it('leaves nothing behind when a cwg_create is killed at any moment', async () => {
    await lab.client(A, ['show']);
    const net = randomNet();
    const port = randomPort();
    for (let i = 0; i < 12; i++) {
      const c = await lab.container(A);
      const child = lab.spawnOwned(which('ip')!, [
        'netns',
        'exec',
        A.ns,
        join(ROOT, 'build', 'Release', 'net-admin-helper'),
        'cwg_create',
        String(c.pid),
        String(net),
        '0',
        String(port),
      ]);
      await sleep(i * 3);
      child.kill('SIGKILL');
      await waitFor(() => child.exitCode !== null || child.signalCode !== null, 2000);
      // The next command for that device sees either a whole device (the answer was already on
      // its way) or none at all.
      const shown = await lab.cwg(A, ['show', String(c.pid), String(net), '0']);
      if (shown.code === 0) expect((await lab.cwg(A, ['cwg_destroy', String(c.pid), String(net), '0'])).code).toBe(0);
      else expect(shown.stderr).toMatch(/no device/);
      expect(await waitFor(async () => !(await udpPortBound(lab, A, port)), 2000)).toBe(true);
      await lab.stopContainer(c);
    }
  }, 60_000);

  it('creates a hundred devices in parallel', async () => {
    const n = 100;
    const cs = await Promise.all(Array.from({ length: n }, () => lab.container(B)));
    const net = randomNet();
    const base = (randomPort() % 40000) + 20000;
    const before = devicesIn(B);
    const rs = await Promise.all(cs.map((c, i) => lab.cwg(B, ['cwg_create', String(c.pid), String(net), String(i % 2), String(base + i)])));
    for (const r of rs) {
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(KEY_LINE);
    }
    expect(devicesIn(B)).toBe(before + n);
    await Promise.all(cs.map((c) => lab.stopContainer(c)));
    expect(await waitFor(() => devicesIn(B) === before, 5000)).toBe(true);
  }, 120_000);
});
