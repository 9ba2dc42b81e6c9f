/**
 * cwg end to end (root): two sites joined by a veth pair, containers in namespaces of their
 * own, the contract's nine steps, traffic over the tunnel (ping and an HTTP page) with a
 * capture of the site link, destroy, container exit, the same-name case, every error case,
 * and twenty creates in parallel.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { CWG_BIN, run, waitFor, which } from '../helpers/proc.js';
import { otherUserSkipReason, publicCopy } from '../helpers/public-copy.js';
import {
  type Container,
  classifyFrame,
  cleanEnv,
  cwgAddr,
  devicesIn,
  e2eSkipReason,
  Lab,
  RUN_BASE,
  randomNet,
  randomPort,
  readPcap,
  type Site,
  udpPortBound,
} from '../helpers/sites.js';

const skip = e2eSkipReason(['ss', 'ping']);
if (skip) console.warn(`cwg end-to-end tests skipped: ${skip}`);
const KEY_LINE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n$/;

describe.skipIf(skip !== null)('cwg end to end', () => {
  const lab = new Lab();
  let A: Site;
  let B: Site;

  beforeAll(() => {
    [A, B] = lab.setup();
  });
  afterAll(async () => {
    await lab.cleanup();
  });

  /** The device as seen inside its container: up, its address, the /31 route. */
  async function deviceState(c: Container, name: string) {
    const link = await lab.inContainer(c, which('ip')!, ['-o', 'link', 'show', 'dev', name]);
    const addrs = await lab.inContainer(c, which('ip')!, ['-o', '-4', 'addr', 'show', 'dev', name]);
    const routes = await lab.inContainer(c, which('ip')!, ['-4', 'route', 'show', 'dev', name]);
    return { exists: link.code === 0, link: link.stdout, addrs: addrs.stdout, routes: routes.stdout };
  }

  /** Nothing of `name` is left: no link in the container, no socket, no daemon, port free. */
  async function expectNothingLeft(c: Container, name: string, port: number | null) {
    expect((await deviceState(c, name)).exists).toBe(false);
    expect(existsSync(join(RUN_BASE, String(c.inode), `${name}.sock`))).toBe(false);
    if (port !== null) expect(await udpPortBound(lab, c.site, port)).toBe(false);
  }

  /** exit 1, one line on stderr, nothing on stdout */
  function expectFailure(r: { code: number; stdout: string; stderr: string }, pattern: RegExp) {
    expect(r.stdout).toBe('');
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd()).toMatch(pattern);
    expect(r.stderr.endsWith('\n')).toBe(true);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  }

  it('runs the nine steps; ping and an HTTP page cross the tunnel, only UDP between the ports crosses the site link', async () => {
    const cA = await lab.container(A);
    const cB = await lab.container(B);
    // 1. Site 1 picks a network and host, and allocates a local port.
    const net = randomNet();
    const portA = randomPort();
    const nameA = `cwg-${net}-0`;
    const nameB = `cwg-${net}-1`;
    // 2. Site 1 creates a device inside its container.
    const createA = await lab.cwg(A, ['cwg_create', String(cA.pid), String(net), '0', String(portA)]);
    expect(createA.stderr).toBe('');
    expect(createA.code).toBe(0);
    expect(createA.stdout).toMatch(KEY_LINE);
    const keyA = createA.stdout.trim();
    // 3. Site 1 sends net, host, its address, port and key to site 2.  4. Site 2 allocates a port.
    const portB = portA + 1;
    // 5. Site 2 creates its device: same net, the other host.
    const createB = await lab.cwg(B, ['cwg_create', String(cB.pid), String(net), '1', String(portB)]);
    expect(createB.code).toBe(0);
    expect(createB.stdout).toMatch(KEY_LINE);
    const keyB = createB.stdout.trim();
    expect(keyB).not.toBe(keyA);
    // 6. Site 2 connects its device to site 1's.
    const connB = await lab.cwg(B, ['cwg_connect', String(cB.pid), String(net), '1', `${A.addr}:${portA}`, keyA]);
    expect(connB).toEqual({ code: 0, stdout: '', stderr: '' });
    // 7. Site 2 sends its address, port and key to site 1.  8. Site 1 connects.
    const connA = await lab.cwg(A, ['cwg_connect', String(cA.pid), String(net), '0', `${B.addr}:${portB}`, keyB]);
    expect(connA).toEqual({ code: 0, stdout: '', stderr: '' });

    // The devices: named, up, addressed, routed; the UDP ports in the sites.
    const stA = await deviceState(cA, nameA);
    expect(stA.exists).toBe(true);
    expect(stA.link).toMatch(/[<,]UP[,>]/);
    expect(stA.addrs).toContain(`inet ${cwgAddr(net, 0)}/31`);
    expect(stA.routes).toContain(`${cwgAddr(net, 0)}/31`);
    expect((await deviceState(cB, nameB)).addrs).toContain(`inet ${cwgAddr(net, 1)}/31`);
    expect(await udpPortBound(lab, A, portA)).toBe(true);
    expect(await udpPortBound(lab, B, portB)).toBe(true);
    // The container's run directory and socket are root's only.
    const runDir = join(RUN_BASE, String(cA.inode));
    expect(statSync(runDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(runDir, `${nameA}.sock`)).mode & 0o077).toBe(0);
    // The container's own namespace does not hold the UDP port.
    expect((await lab.inContainer(cA, which('ss')!, ['-H', '-u', '-n', '-l'])).stdout.trim()).toBe('');

    // 9. The containers communicate, watched on the site link.
    const capDir = mkdtempSync(join(tmpdir(), 'cwg-cap-'));
    onTestFinished(() => rmSync(capDir, { recursive: true, force: true }));
    const pcap = join(capDir, 'link.pcap');
    const tcpdump = which('tcpdump');
    let cap: ReturnType<Lab['spawnOwned']> | null = null;
    let capErr = '';
    if (tcpdump) {
      cap = lab.spawnOwned(which('ip')!, ['netns', 'exec', A.ns, tcpdump, '-Z', 'root', '--immediate-mode', '-i', A.veth, '-n', '-U', '-s', '0', '-w', pcap]);
      cap.stderr!.setEncoding('utf8').on('data', (d: string) => (capErr += d));
      expect(await waitFor(() => /listening on/.test(capErr), 10_000)).toBe(true);
    } else console.warn('tcpdump missing: the capture assertions are skipped');

    const ping = await lab.inContainer(cA, which('ping')!, ['-c', '3', '-i', '0.2', '-W', '3', cwgAddr(net, 1)]);
    expect(ping.stdout).toMatch(/[1-9][0-9]* (packets )?received/);
    expect(ping.code).toBe(0);

    const marker = `cwg-page-${randomBytes(12).toString('hex')}`;
    const httpPort = 8080;
    const server = lab.spawnOwned(which('nsenter')!, [
      '-t',
      String(cB.pid),
      '-n',
      process.execPath,
      '-e',
      `require('http').createServer((q, s) => s.end(process.argv[1])).listen(${httpPort}, '${cwgAddr(net, 1)}', () => console.log('ready'))`,
      `<html><body>${marker}</body></html>`,
    ]);
    let serverOut = '';
    server.stdout!.setEncoding('utf8').on('data', (d: string) => (serverOut += d));
    expect(await waitFor(() => serverOut.includes('ready'), 10_000)).toBe(true);
    const page = await lab.inContainer(cA, process.execPath, [
      '-e',
      `fetch(process.argv[1]).then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { console.error(String(e)); process.exit(1); })`,
      `http://${cwgAddr(net, 1)}:${httpPort}/`,
    ]);
    expect(page.stderr).toBe('');
    expect(page.stdout).toBe(`<html><body>${marker}</body></html>`);
    server.kill('SIGKILL');

    if (cap) {
      cap.kill('SIGINT');
      await waitFor(() => cap!.exitCode !== null || cap!.signalCode !== null, 5000);
      const raw = readFileSync(pcap);
      const { linktype, packets } = readPcap(raw);
      expect(linktype).toBe(1); // Ethernet
      const ips = packets.map((p) => classifyFrame(p.data)).filter((c) => c.kind !== 'arp');
      expect(ips.length).toBeGreaterThan(4);
      for (const c of ips) {
        expect(c.kind).toBe('udp4');
        if (c.kind !== 'udp4') continue;
        const flow = `${c.src}:${c.sport} > ${c.dst}:${c.dport}`;
        expect([`${A.addr}:${portA} > ${B.addr}:${portB}`, `${B.addr}:${portB} > ${A.addr}:${portA}`]).toContain(flow);
      }
      expect(raw.includes(Buffer.from(marker))).toBe(false);
    }

    // `cwg show` prints what `wg show` prints for the device.
    const show = await lab.cwg(A, ['show', String(cA.pid), String(net), '0']);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(
      `interface: ${nameA}\n  public key: ${keyA}\n  private key: (hidden)\n  listening port: ${portA}\n\npeer: ${keyB}\n  endpoint: ${B.addr}:${portB}\n  allowed ips: ${cwgAddr(net, 0)}/31\n  latest handshake: `,
    );
    expect(show.stdout).toMatch(/\n {2}transfer: [0-9.]+ (B|KiB) received, [0-9.]+ (B|KiB) sent\n/);
    const wg = which('wg');
    if (wg) {
      // The real wg reads /var/run/wireguard/IFNAME.sock: bind the container's run dir there in a private mount namespace.
      const real = await run(which('unshare')!, [
        '--mount',
        '--propagation',
        'private',
        '/bin/sh',
        '-c',
        'mount --bind "$1" /var/run/wireguard && exec "$2" show "$3"',
        'sh',
        join(RUN_BASE, String(cA.inode)),
        wg,
        nameA,
      ]);
      expect(real.stderr).toBe('');
      const noTime = (s: string) => s.replace(/\n {2}latest handshake: [^\n]*/, '').replace(/\n {2}transfer: [^\n]*/, '');
      expect(noTime(show.stdout)).toBe(noTime(real.stdout));
    }

    // Connecting again replaces the peer (another key and endpoint).
    const otherKey = (await run(process.execPath, [CWG_BIN, 'genkey'])).stdout;
    const otherPub = (await run(process.execPath, [CWG_BIN, 'pubkey'], { input: otherKey })).stdout.trim();
    expect(await lab.cwg(A, ['cwg_connect', String(cA.pid), String(net), '0', `[2001:db8::7]:${portB}`, otherPub])).toMatchObject({ code: 0 });
    const show2 = (await lab.cwg(A, ['show', String(cA.pid), String(net), '0'])).stdout;
    expect(show2).toContain(`peer: ${otherPub}\n  endpoint: [2001:db8::7]:${portB}\n  allowed ips: ${cwgAddr(net, 0)}/31\n`);
    expect(show2).not.toContain(keyB);

    // Destroy: the device, its record and its port are gone; a second destroy is an error.
    const before = devicesIn(A);
    expect(await lab.cwg(A, ['cwg_destroy', String(cA.pid), String(net), '0'])).toEqual({ code: 0, stdout: '', stderr: '' });
    await expectNothingLeft(cA, nameA, portA);
    expect(devicesIn(A)).toBe(before - 1);
    expect(existsSync(join(RUN_BASE, String(cA.inode)))).toBe(false);
    expectFailure(
      await lab.cwg(A, ['cwg_destroy', String(cA.pid), String(net), '0']),
      new RegExp(`^cwg_destroy: no device ${nameA} in the network namespace of pid ${cA.pid}$`),
    );

    // Container exit: site B's device goes, with its port, within 2 s.
    expect(devicesIn(B)).toBeGreaterThan(0);
    const sock = join(RUN_BASE, String(cB.inode), `${nameB}.sock`);
    expect(existsSync(sock)).toBe(true);
    const t0 = Date.now();
    await lab.stopContainer(cB);
    expect(await waitFor(async () => !existsSync(sock) && !(await udpPortBound(lab, B, portB)), 2000, 50)).toBe(true);
    expect(Date.now() - t0).toBeLessThanOrEqual(2500);
    expect(await waitFor(() => devicesIn(B) === 0, 1000)).toBe(true);
  });

  it('keeps same-named devices in two containers apart: two links with the same names work independently', async () => {
    // Two remote sites happened to choose the same net: containers 1 and 2 at site A both
    // hold cwg-N-0, their partners at site B both hold cwg-N-1.
    const [a1, a2, b1, b2] = await Promise.all([lab.container(A), lab.container(A), lab.container(B), lab.container(B)]);
    const net = randomNet();
    const p = randomPort();
    const [pa1, pa2, pb1, pb2] = [p, p + 1, p + 2, p + 3];
    const create = async (site: Site, c: Container, host: number, port: number) => {
      const r = await lab.cwg(site, ['cwg_create', String(c.pid), String(net), String(host), String(port)]);
      expect(r.code).toBe(0);
      return r.stdout.trim();
    };
    const ka1 = await create(A, a1, 0, pa1);
    const ka2 = await create(A, a2, 0, pa2);
    const kb1 = await create(B, b1, 1, pb1);
    const kb2 = await create(B, b2, 1, pb2);
    expect(new Set([ka1, ka2, kb1, kb2]).size).toBe(4);
    const connect = async (site: Site, c: Container, host: number, endpoint: string, key: string) =>
      expect((await lab.cwg(site, ['cwg_connect', String(c.pid), String(net), String(host), endpoint, key])).code).toBe(0);
    await connect(A, a1, 0, `${B.addr}:${pb1}`, kb1);
    await connect(B, b1, 1, `${A.addr}:${pa1}`, ka1);
    await connect(A, a2, 0, `${B.addr}:${pb2}`, kb2);
    await connect(B, b2, 1, `${A.addr}:${pa2}`, ka2);
    const nameA = `cwg-${net}-0`;
    // Each command acted on the device of its pid.
    expect((await lab.cwg(A, ['show', String(a1.pid), String(net), '0'])).stdout).toContain(`interface: ${nameA}\n  public key: ${ka1}\n`);
    expect((await lab.cwg(A, ['show', String(a2.pid), String(net), '0'])).stdout).toContain(`interface: ${nameA}\n  public key: ${ka2}\n`);
    expect((await lab.cwg(A, ['show', String(a2.pid), String(net), '0'])).stdout).toContain(`peer: ${kb2}\n`);

    // Each B container serves its own page; each A container gets its partner's.
    const serve = async (c: Container, text: string) => {
      const srv = lab.spawnOwned(which('nsenter')!, [
        '-t',
        String(c.pid),
        '-n',
        process.execPath,
        '-e',
        `require('http').createServer((q, s) => s.end(process.argv[1])).listen(8080, '${cwgAddr(net, 1)}', () => console.log('ready'))`,
        text,
      ]);
      let out = '';
      srv.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      expect(await waitFor(() => out.includes('ready'), 10_000)).toBe(true);
      return srv;
    };
    const fetchFrom = (c: Container) =>
      lab.inContainer(c, process.execPath, [
        '-e',
        'fetch(process.argv[1]).then((r) => r.text()).then((t) => process.stdout.write(t))',
        `http://${cwgAddr(net, 1)}:8080/`,
      ]);
    const servers = [await serve(b1, 'page of b1'), await serve(b2, 'page of b2')];
    expect((await fetchFrom(a1)).stdout).toBe('page of b1');
    expect((await fetchFrom(a2)).stdout).toBe('page of b2');

    // Destroying one link's device leaves the other working.
    expect((await lab.cwg(A, ['cwg_destroy', String(a1.pid), String(net), '0'])).code).toBe(0);
    await expectNothingLeft(a1, nameA, pa1);
    expect((await fetchFrom(a2)).stdout).toBe('page of b2');
    expect(await udpPortBound(lab, A, pa2)).toBe(true);
    for (const srv of servers) srv.kill('SIGKILL');
    expect((await lab.cwg(A, ['cwg_destroy', String(a2.pid), String(net), '0'])).code).toBe(0);
    await expectNothingLeft(a2, nameA, pa2);
    await Promise.all([b1, b2].map((c) => lab.stopContainer(c)));
  });

  it('rejects every kind of bad input and failure with one line, exit 1, nothing left behind', async () => {
    const c = await lab.container(A);
    const net = randomNet();
    const name = `cwg-${net}-0`;
    const port = randomPort();
    const devices = devicesIn(A);
    const pid = String(c.pid);
    const key = 'hbNhVyWZ0jyZ3DXYAwRkY+gIAT/7aW9lGrlvvsb6cV0=';
    const bad: Array<[string[], RegExp]> = [
      [[], /^cwg: missing command/],
      [['cwg_frob'], /^cwg: unknown command "cwg_frob"/],
      [['cwg_create', pid, String(net), '0'], /^cwg_create: expected 4 arguments \(<pid> <net> <host> <port>\), got 3$/],
      [['cwg_create', pid, String(net), '0', String(port), 'x'], /got 5/],
      [['cwg_connect', pid, String(net), '0', '1.2.3.4:5'], /^cwg_connect: expected 5 arguments/],
      [['cwg_destroy', pid, String(net)], /^cwg_destroy: expected 3 arguments/],
      [['cwg_create', `${pid}x`, String(net), '0', String(port)], /invalid pid/],
      [['cwg_create', pid, '8388608', '0', String(port)], /invalid net '8388608': out of range 0\.\.8388607/],
      [['cwg_create', pid, '-1', '0', String(port)], /invalid net '-1'/],
      [['cwg_create', pid, String(net), '2', String(port)], /invalid host '2'/],
      [['cwg_create', pid, String(net), '0', '65536'], /invalid port '65536'/],
      [['cwg_create', pid, String(net), '0', '0'], /invalid port '0'/],
      [['cwg_create', pid, String(net), '0', ' 1'], /invalid port/],
      [['cwg_create', '4194304', String(net), '0', String(port)], /no process with pid 4194304/],
      [['cwg_connect', pid, String(net), '0', '1.2.3.4', key], /invalid peer_endpoint '1\.2\.3\.4'/],
      [['cwg_connect', pid, String(net), '0', '1.2.3.4:99999', key], /invalid peer_endpoint/],
      [['cwg_connect', pid, String(net), '0', '300.2.3.4:9', key], /invalid peer_endpoint/],
      [['cwg_connect', pid, String(net), '0', 'host.example:9', key], /invalid peer_endpoint/],
      [['cwg_connect', pid, String(net), '0', '::1:9', key], /brackets/],
      [['cwg_connect', pid, String(net), '0', '1.2.3.4:9', key.slice(1)], /invalid peer_key/],
      [['cwg_connect', pid, String(net), '0', '1.2.3.4:9', `${key.slice(0, 42)}1=`], /invalid peer_key/],
      [['cwg_connect', pid, String(net), '0', '1.2.3.4:9', key], new RegExp(`^cwg_connect: no device ${name} in the network namespace of pid ${pid}$`)],
      [['cwg_destroy', pid, String(net), '0'], new RegExp(`^cwg_destroy: no device ${name} in the network namespace of pid ${pid}$`)],
      [['show', pid, String(net), '0'], /^cwg show: no device/],
      [['genkey', 'x'], /^Usage: cwg genkey$/],
    ];
    for (const [args, pattern] of bad) {
      const r = await lab.cwg(A, args);
      expectFailure(r, pattern);
    }
    await expectNothingLeft(c, name, port);

    // The prefix is the service's: a caller's CWG_PREFIX changes nothing.
    const viaEnv = await lab.cwg(A, ['cwg_create', pid, String(net), '0', String(port)], cleanEnv({ CWG_PREFIX: 'other' }));
    expect(viaEnv.code).toBe(0);
    expect((await deviceState(c, name)).exists).toBe(true);
    expect((await lab.cwg(A, ['cwg_destroy', pid, String(net), '0'])).code).toBe(0);

    // Port already in use in the site namespace.
    const holder = lab.spawnOwned(which('ip')!, [
      'netns',
      'exec',
      A.ns,
      process.execPath,
      '-e',
      `const s = require('dgram').createSocket('udp4'); s.bind(${port}, () => console.log('bound'));`,
    ]);
    let held = '';
    holder.stdout!.setEncoding('utf8').on('data', (d: string) => (held += d));
    expect(await waitFor(() => held.includes('bound'), 10_000)).toBe(true);
    expectFailure(await lab.cwg(A, ['cwg_create', pid, String(net), '0', String(port)]), new RegExp(`^cwg_create: UDP port ${port} is already in use$`));
    await expectNothingLeft(c, name, null);
    holder.kill('SIGKILL');
    await waitFor(async () => !(await udpPortBound(lab, A, port)), 3000);

    // Device already present: the second create fails and the first device is untouched.
    const first = await lab.cwg(A, ['cwg_create', pid, String(net), '0', String(port)]);
    expect(first.code).toBe(0);
    expectFailure(
      await lab.cwg(A, ['cwg_create', pid, String(net), '0', String(port + 1)]),
      new RegExp(`^cwg_create: device ${name} in the network namespace of pid ${pid} already exists$`),
    );
    expect(await udpPortBound(lab, A, port + 1)).toBe(false);
    const shown = await lab.cwg(A, ['show', pid, String(net), '0']);
    expect(shown.stdout).toContain(`public key: ${first.stdout}`);
    expect(shown.stdout).toContain(`listening port: ${port}\n`);
    expect((await lab.cwg(A, ['cwg_destroy', pid, String(net), '0'])).code).toBe(0);
    await expectNothingLeft(c, name, port);
    expect(devicesIn(A)).toBe(devices);
  });

  // The unprivileged user (65534) runs a copy of the programs that it can reach: the checkout
  // may be in a private directory (mode 0700, as mktemp -d makes).
  const skipNonRoot = which('setpriv') ? otherUserSkipReason() : 'needs setpriv';
  it.skipIf(skipNonRoot !== null)(`refuses a user that is not root before touching anything${skipNonRoot ? ` (skipped: ${skipNonRoot})` : ''}`, async () => {
    const c = await lab.container(A);
    const net = randomNet();
    const port = randomPort();
    const copy = publicCopy();
    onTestFinished(() => copy.remove());
    await lab.client(A, ['show']); // as root: starts the site's service if nothing has yet
    const args = ['cwg_create', String(c.pid), String(net), '0', String(port)];
    const r = await run(
      which('ip')!,
      ['netns', 'exec', A.ns, which('setpriv')!, '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, copy.cwgBin, ...args],
      { env: cleanEnv(), cwd: '/' },
    );
    expectFailure(r, /^cwg_create: must be run as root/);
    await expectNothingLeft(c, `cwg-${net}-0`, port);
  });

  it("takes the prefix from the service's configuration only: too long for a net is an error, a bad one is refused", async () => {
    const P = lab.lonelySite('p');
    const dir = mkdtempSync(join(tmpdir(), 'cwg-conf-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const conf = join(dir, 'cwg.conf');
    writeFileSync(conf, 'prefix = abcdefgh\n', { mode: 0o644 });
    await lab.startService(P, ['--config', conf]);
    const c = await lab.container(P);
    const pid = String(c.pid);
    const port = randomPort();
    expectFailure(
      await lab.cwg(P, ['cwg_create', pid, '8388607', '0', String(port)]),
      /^cwg_create: device name 'abcdefgh-8388607-0' would be 18 bytes but Linux allows 15/,
    );
    expect(await lab.cwg(P, ['cwg_create', pid, '1', '0', String(port)], cleanEnv({ CWG_PREFIX: 'other' }))).toMatchObject({ code: 0, stderr: '' });
    expect((await deviceState(c, 'abcdefgh-1-0')).exists).toBe(true);
    writeFileSync(conf, 'prefix = bad-prefix\n');
    expectFailure(await lab.cwg(P, ['cwg_destroy', pid, '1', '0']), new RegExp(`^cwg_destroy: invalid prefix 'bad-prefix' in ${conf}:1`));
    writeFileSync(conf, 'prefix = other\n');
    expectFailure(await lab.cwg(P, ['cwg_destroy', pid, '1', '0']), /^cwg_destroy: no device other-1-0/);
    writeFileSync(conf, 'prefix = abcdefgh\n');
    expect((await lab.cwg(P, ['cwg_destroy', pid, '1', '0'])).code).toBe(0);
    await expectNothingLeft(c, 'abcdefgh-1-0', port);
  });

  it('creates twenty devices in parallel for twenty containers', async () => {
    const n = 20;
    const before = devicesIn(B);
    const cs = await Promise.all(Array.from({ length: n }, () => lab.container(B)));
    const net = randomNet();
    const base = randomPort();
    const results = await Promise.all(cs.map((c, i) => lab.cwg(B, ['cwg_create', String(c.pid), String(net), String(i % 2), String(base + i)])));
    for (const r of results) {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(KEY_LINE);
    }
    expect(new Set(results.map((r) => r.stdout)).size).toBe(n);
    for (let i = 0; i < n; i++) expect(await udpPortBound(lab, B, base + i)).toBe(true);
    // All go away with their containers.
    expect(devicesIn(B)).toBe(before + n);
    await Promise.all(cs.map((c) => lab.stopContainer(c)));
    expect(await waitFor(() => devicesIn(B) === before, 5000)).toBe(true);
    for (let i = 0; i < n; i++) expect(await udpPortBound(lab, B, base + i)).toBe(false);
  });
});
