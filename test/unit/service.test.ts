/**
 * The host service's logic without root (test/helpers/fake-service.ts): the contract's
 * commands through the control server, the caller's rights, the namespace the client sent,
 * all-or-nothing creates, cancellation, state records, and the control protocol's bounds.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jsSuite } from '../../crypto/suite.js';
import { publicKey } from '../../crypto/x25519.js';
import { createLogger } from '../../src/log.js';
import { MAX_ARGS } from '../../src/service/control.js';
import { Service } from '../../src/service/service.js';
import { FakeConnection, FakeOs } from '../helpers/fake-service-os.js';

const KEY_LINE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n$/;

let os: FakeOs;
let service: Service;
let dir: string;

function makeService(config = ''): Service {
  const configPath = join(dir, 'cwg.conf');
  if (config) writeFileSync(configPath, config, { mode: 0o644 });
  return new Service({
    os,
    crypto: jsSuite,
    logger: createLogger('silent', ''),
    configPath,
    env: {},
    stateDir: join(dir, 'state'),
    runBase: join(dir, 'run', 'cwg'),
    hostNamespaces: new Map(),
  });
}

beforeEach(() => {
  os = new FakeOs();
  dir = mkdtempSync(join(tmpdir(), 'wgts-service-'));
  service = makeService();
});

afterEach(async () => {
  await service.close();
  os.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** One request through the control server, as the client makes it. */
async function ask(argv: string[], opts: { ns?: string; uid?: number; groups?: number[]; nsField?: string } = {}) {
  const conn = new FakeConnection(opts.uid ?? 0, opts.uid ?? 0, opts.groups ?? []);
  service.control.accept(conn);
  const fd = opts.ns !== undefined ? os.open(opts.ns) : -1;
  conn.request([opts.nsField ?? (fd >= 0 ? 'fd' : 'none'), ...argv], fd);
  await conn.finished();
  return conn.answer!;
}

describe('the host service', () => {
  it('creates, connects, shows and destroys; the records follow', async () => {
    const ns = os.namespace();
    const created = await ask(['cwg_create', '100', '1024', '1', '0'], { ns });
    expect(created).toEqual({ code: 1, stdout: '', stderr: "cwg_create: invalid port '0': out of range 1..65535\n" });
    const ok = await ask(['cwg_create', '100', '1024', '1', '41000'], { ns });
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(KEY_LINE);
    const key = String(statSync(ns).ino);
    const link = os.links.get(key)!.get('cwg-1024-1')!;
    expect(link).toMatchObject({ addrs: ['10.0.8.1/31'], up: true });
    const dev = service.registry.get(key, 'cwg-1024-1')!;
    expect(dev.port).toBe(41000);
    // The record: root-only directory, 0600 file, the key whose public key was printed.
    const stateDir = join(dir, 'state');
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    const [file] = readdirSync(stateDir);
    expect(statSync(join(stateDir, file!)).mode & 0o777).toBe(0o600);
    const rec = JSON.parse(readFileSync(join(stateDir, file!), 'utf8')) as { privateKey: string; port: number; peer: unknown };
    expect(`${Buffer.from(publicKey(new Uint8Array(Buffer.from(rec.privateKey, 'hex')))).toString('base64')}\n`).toBe(ok.stdout);
    expect(rec).toMatchObject({ port: 41000, peer: null });
    // Its UAPI socket, root's only.
    const sock = join(dir, 'run', 'cwg', key, 'cwg-1024-1.sock');
    expect(statSync(sock).isSocket()).toBe(true);
    expect(statSync(join(dir, 'run', 'cwg', key)).mode & 0o777).toBe(0o700);

    const peer = Buffer.alloc(32, 3).toString('base64');
    expect(await ask(['cwg_connect', '100', '1024', '1', '192.168.7.2:51821', peer], { ns })).toEqual({ code: 0, stdout: '', stderr: '' });
    const rec2 = JSON.parse(readFileSync(join(stateDir, file!), 'utf8')) as { peer: { publicKey: string; endpoint: string } };
    expect(rec2.peer).toEqual({ publicKey: Buffer.alloc(32, 3).toString('hex'), endpoint: '192.168.7.2:51821' });
    const shown = await ask(['show', '100', '1024', '1'], { ns });
    expect(shown.stdout).toContain(
      `interface: cwg-1024-1\n  public key: ${ok.stdout}  private key: (hidden)\n  listening port: 41000\n\npeer: ${peer}\n  endpoint: 192.168.7.2:51821\n  allowed ips: 10.0.8.0/31\n`,
    );

    expect(await ask(['cwg_destroy', '100', '1024', '1'], { ns })).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(os.links.get(key)!.size).toBe(0);
    expect(readdirSync(stateDir)).toEqual([]);
    expect(existsSync(sock)).toBe(false);
    expect(existsSync(join(dir, 'run', 'cwg', key))).toBe(false);
    expect(await ask(['cwg_destroy', '100', '1024', '1'], { ns })).toEqual({
      code: 1,
      stdout: '',
      stderr: 'cwg_destroy: no device cwg-1024-1 in the network namespace of pid 100\n',
    });
  });

  it('keeps same-named devices of two namespaces apart, and refuses a second one in the same', async () => {
    const [a, b] = [os.namespace(), os.namespace()];
    const ka = await ask(['cwg_create', '7', '7', '0', '41010'], { ns: a });
    const kb = await ask(['cwg_create', '8', '7', '0', '41011'], { ns: b });
    expect(ka.code + kb.code).toBe(0);
    expect(ka.stdout).not.toBe(kb.stdout);
    expect((await ask(['cwg_create', '9', '7', '0', '41012'], { ns: a })).stderr).toBe(
      'cwg_create: device cwg-7-0 in the network namespace of pid 9 already exists\n',
    );
    expect((await ask(['show', '8', '7', '0'], { ns: b })).stdout).toContain(`public key: ${kb.stdout}`);
    expect((await ask(['cwg_destroy', '8', '7', '0'], { ns: b })).code).toBe(0);
    expect((await ask(['show', '7', '7', '0'], { ns: a })).stdout).toContain(`public key: ${ka.stdout}`);
  });

  it('fails all or nothing: a port in use, a step that fails', async () => {
    const ns = os.namespace();
    expect((await ask(['cwg_create', '1', '1', '0', '41020'], { ns })).code).toBe(0);
    const other = os.namespace();
    expect(await ask(['cwg_create', '2', '1', '0', '41020'], { ns: other })).toEqual({
      code: 1,
      stdout: '',
      stderr: 'cwg_create: UDP port 41020 is already in use\n',
    });
    for (const step of ['createTun', 'addAddress', 'setUp'] as const) {
      os.failNext = step;
      const r = await ask(['cwg_create', '2', '1', '0', '41021'], { ns: other });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^cwg_create: cannot create device cwg-1-0: ${step} failed`));
    }
    expect(os.links.get(String(statSync(other).ino))?.size ?? 0).toBe(0);
    expect(service.registry.size).toBe(1);
    expect(readdirSync(join(dir, 'state'))).toHaveLength(1);
    // The port of a failed create is free again.
    expect((await ask(['cwg_create', '2', '1', '0', '41021'], { ns: other })).code).toBe(0);
  });

  it('checks the caller: root, or a member of the configured group', async () => {
    const ns = os.namespace();
    const r = await ask(['cwg_create', '1', '5', '0', '41030'], { ns, uid: 1000 });
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'cwg_create: must be run as root (it creates network devices in other network namespaces)\n' });
    await service.close();
    service = makeService('group = root\n');
    expect((await ask(['cwg_create', '1', '5', '0', '41030'], { ns, uid: 1000, groups: [4, 0] })).code).toBe(0);
    expect((await ask(['show', '1', '5', '0'], { ns, uid: 1000, groups: [4] })).stderr).toBe(
      'cwg show: must be run as root or as a member of group root (it creates network devices in other network namespaces)\n',
    );
    // Argument errors come first, as before.
    expect((await ask(['cwg_create', '1', '5', '0'], { ns, uid: 1000 })).stderr).toBe('cwg_create: expected 4 arguments (<pid> <net> <host> <port>), got 3\n');
  });

  it('reports what the client could not open, and refuses the host namespaces', async () => {
    expect((await ask(['cwg_create', '4194304', '5', '0', '41040'], { nsField: 'errno:2' })).stderr).toBe(
      'cwg_create: no process with pid 4194304 (no /proc/4194304/ns/net)\n',
    );
    expect((await ask(['cwg_destroy', '77', '5', '0'], { nsField: 'errno:13' })).stderr).toBe(
      'cwg_destroy: cannot access the network namespace of pid 77 (EACCES)\n',
    );
    await service.close();
    const host = os.namespace();
    service = new Service({
      os,
      crypto: jsSuite,
      logger: createLogger('silent', ''),
      configPath: join(dir, 'none.conf'),
      env: {},
      stateDir: join(dir, 'state'),
      runBase: join(dir, 'run', 'cwg'),
      hostNamespaces: new Map([[String(statSync(host).ino), "pid 1's"]]),
    });
    expect((await ask(['cwg_create', '2', '5', '0', '41040'], { ns: host })).stderr).toMatch(
      /^cwg_create: the network namespace of pid 2 is pid 1's, not a container's; refusing to put a device there/,
    );
    expect(os.links.size === 0 || [...os.links.values()].every((m) => m.size === 0)).toBe(true);
  });

  it('takes the prefix from its configuration, never from a client', async () => {
    await service.close();
    service = makeService('prefix = myapp\n');
    const ns = os.namespace();
    expect((await ask(['cwg_create', '1', '3', '1', '41050'], { ns })).code).toBe(0);
    expect(os.links.get(String(statSync(ns).ino))!.has('myapp-3-1')).toBe(true);
    expect((await ask(['cwg_destroy', '1', '3', '1'], { ns })).code).toBe(0);
    writeFileSync(join(dir, 'cwg.conf'), 'prefix = bad-prefix\n');
    expect((await ask(['cwg_create', '1', '3', '1', '41050'], { ns })).stderr).toMatch(/^cwg_create: invalid prefix 'bad-prefix' in .*cwg\.conf:1/);
  });
});

describe('the control server', () => {
  it('sends heartbeats while a request waits, and undoes a create whose client went away', async () => {
    const ns = os.namespace();
    // A slow first request holds the queue for over a second: the second client hears `wait`.
    const slow = new FakeConnection();
    service.control.accept(slow);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const handle = service.handle.bind(service);
    let first = true;
    service.handle = async (req) => {
      if (first) {
        first = false;
        await gate;
      }
      return handle(req);
    };
    slow.request(['fd', 'cwg_create', '1', '9', '0', '41060'], os.open(ns));
    const waiting = new FakeConnection();
    service.control.accept(waiting);
    waiting.request(['fd', 'cwg_create', '2', '9', '1', '41061'], os.open(ns));
    await new Promise((r) => setTimeout(r, 1300));
    expect(waiting.sent.some((f) => f[1] === 'wait')).toBe(true);
    // The second client goes away before its turn: nothing is made for it.
    waiting.close();
    release();
    await slow.finished();
    expect(slow.answer!.code).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(service.registry.get(String(statSync(ns).ino), 'cwg-9-1')).toBeNull();
    expect(service.control.stats.cancelled).toBe(1);
  });

  it('undoes a create whose client goes away while it runs', async () => {
    const ns = os.namespace();
    const conn = new FakeConnection();
    service.control.accept(conn);
    const create = service.registry.create.bind(service.registry);
    service.registry.create = async (fd, spec) => {
      const d = await create(fd, spec);
      conn.close(); // killed just before the answer
      return d;
    };
    conn.request(['fd', 'cwg_create', '1', '11', '0', '41070'], os.open(ns));
    await new Promise((r) => setTimeout(r, 100));
    expect(service.registry.size).toBe(0);
    expect(readdirSync(join(dir, 'state'))).toEqual([]);
    expect(os.links.get(String(statSync(ns).ino))!.size).toBe(0);
  });

  it('refuses malformed requests with one line', async () => {
    const r1 = await ask(['frob'], { nsField: 'bogus' });
    expect(r1).toEqual({ code: 1, stdout: '', stderr: 'cwg: bad namespace field\n' });
    const r2 = await ask(Array.from({ length: MAX_ARGS + 1 }, () => 'x'));
    expect(r2.stderr).toBe(`cwg: too many arguments (at most ${MAX_ARGS})\n`);
    const conn = new FakeConnection();
    service.control.accept(conn);
    conn.request(['fd', 'show', '1', '1', '0']); // says fd, sends none
    await conn.finished();
    expect(conn.answer!.stderr).toBe("cwg: the request says 'fd' but carries no descriptor\n");
  });
});
