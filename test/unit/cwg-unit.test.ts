/**
 * cwg without root: argument validation, the address scheme, the prefix and device names,
 * the key tools, `wg show` formatting, and the commands' logic over an in-memory system.
 */
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeBase64Key, encodeBase64Key } from '../../crypto/keys.js';
import { deterministicRng } from '../../crypto/random.js';
import { publicKey } from '../../crypto/x25519.js';
import { formatIp } from '../../noise/iptext.js';
import { hostAddress, hostCidr, netSubnet } from '../../src/cwg/addressing.js';
import { deviceName, isCwgName, loadPrefix, parseConfigText, validatePrefix } from '../../src/cwg/config.js';
import { CwgError } from '../../src/cwg/errors.js';
import { genkey, genpsk, pubkey } from '../../src/cwg/keytools.js';
import { formatShow } from '../../src/cwg/show.js';

const formatIPv6 = (b: Uint8Array) => formatIp(6, b);

import { type DeviceChange, type DeviceStatus, peerStatus } from '../../noise/types.js';
import {
  type CreateSpec,
  type CwgContext,
  type CwgDevice,
  type CwgNamespace,
  type CwgSystem,
  cwgConnect,
  cwgCreate,
  cwgDestroy,
  cwgShow,
} from '../../src/cwg/commands.js';
import { type RunIo, run } from '../../src/cwg/run.js';
import { parseEndpoint, parseHost, parseNet, parsePeerKey, parsePid, parsePort } from '../../src/cwg/validate.js';
import { formatSet } from '../../src/uapi/protocol.js';
import { filledKey } from '../helpers/keys.js';

const err = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CwgError);
    return (e as Error).message;
  }
  throw new Error('expected a CwgError');
};

describe('argument validation', () => {
  it('accepts decimal numbers in range only', () => {
    expect(parseNet('0')).toBe(0);
    expect(parseNet('8388607')).toBe(8388607);
    expect(parseHost('1')).toBe(1);
    expect(parsePort('65535')).toBe(65535);
    expect(parsePid('1')).toBe(1);
    for (const bad of ['', ' 1', '1 ', '+1', '-1', '1.0', '0x10', '1e3', '８', '01', '00', '٣']) {
      expect(() => parseNet(bad), bad).toThrow(CwgError);
    }
    expect(err(() => parseNet('8388608'))).toMatch(/out of range 0\.\.8388607/);
    expect(err(() => parseNet('99999999999999999999'))).toMatch(/out of range/);
    expect(err(() => parseHost('2'))).toMatch(/host '2'/);
    expect(err(() => parsePort('0'))).toMatch(/port '0'.*1\.\.65535/);
    expect(() => parsePort('65536')).toThrow(CwgError);
    expect(() => parsePid('0')).toThrow(CwgError);
    expect(() => parsePid('4194305')).toThrow(CwgError);
    expect(err(() => parseNet('01'))).toMatch(/leading zeros/);
  });

  it('parses endpoints strictly', () => {
    expect(parseEndpoint('192.168.1.2:51820')).toEqual({ address: '192.168.1.2', port: 51820, family: 4 });
    expect(parseEndpoint('[2001:db8::1]:1')).toEqual({ address: '2001:db8::1', port: 1, family: 6 });
    expect(parseEndpoint('[::ffff:1.2.3.4]:9')).toMatchObject({ family: 6, port: 9 });
    const bad = [
      '192.168.1.2',
      '192.168.1.2:',
      '192.168.1.2:0',
      '192.168.1.2:65536',
      '192.168.1.256:1',
      '192.168.1:1',
      '192.168.01.2:1',
      '1.2.3.4.5:1',
      'example.com:1',
      '2001:db8::1:1',
      '[2001:db8::1]',
      '[2001:db8::1]:',
      '[2001:db8::g]:1',
      '[fe80::1%eth0]:1',
      '0.0.0.0:1',
      '[::]:1',
      '[0::0]:1',
      ' 1.2.3.4:1',
      '1.2.3.4:1 ',
      '1.2.3.4:+1',
      '1.2.3.4:01',
      '[1.2.3.4]:1',
      '',
    ];
    for (const b of bad) expect(() => parseEndpoint(b), b).toThrow(CwgError);
    expect(err(() => parseEndpoint('[fe80::1%eth0]:1'))).toMatch(/zone/);
    expect(err(() => parseEndpoint('2001:db8::1:1'))).toMatch(/brackets/);
  });

  it('accepts only canonical 44-character base64 keys of 32 bytes', () => {
    const k = encodeBase64Key(new Uint8Array(32).fill(7));
    expect(parsePeerKey(k)).toEqual(new Uint8Array(32).fill(7));
    const nonCanonical = k.slice(0, 42) + 'x='; // low bits set in the last character
    for (const b of [k.slice(1), `${k}=`, ` ${k}`, k.replace('=', ''), nonCanonical, k.replace(/./, '-'), 'A'.repeat(43) + '=']) {
      expect(() => parsePeerKey(b), b).toThrow(CwgError);
    }
    expect(err(() => parsePeerKey('A'.repeat(43) + '='))).toMatch(/all-zero/);
  });
});

describe('address scheme', () => {
  it('maps net and host to the /31s of 10.0.0.0/8', () => {
    expect(netSubnet(0)).toBe('10.0.0.0/31');
    expect(netSubnet(1)).toBe('10.0.0.2/31');
    expect(netSubnet(1024)).toBe('10.0.8.0/31');
    expect(netSubnet(8388607)).toBe('10.255.255.254/31');
    expect(hostAddress(0, 1)).toBe('10.0.0.1');
    expect(hostAddress(128, 0)).toBe('10.0.1.0');
    expect(hostCidr(1024, 1)).toBe('10.0.8.1/31');
    expect(hostCidr(8388607, 1)).toBe('10.255.255.255/31');
    expect(() => netSubnet(8388608)).toThrow(CwgError);
  });
});

describe('prefix and device names', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cwg-conf-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const uid = process.getuid?.() ?? 0;
  const conf = (name: string, text: string, mode = 0o644) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    chmodSync(p, mode);
    return p;
  };

  it('names devices <prefix>-<net>-<host> and never truncates', () => {
    expect(deviceName('cwg', 0, 0)).toBe('cwg-0-0');
    expect(deviceName('cwg', 8388607, 1)).toBe('cwg-8388607-1');
    expect(deviceName('abcdefg', 1, 1)).toBe('abcdefg-1-1');
    expect(deviceName('abcde', 8388607, 1)).toBe('abcde-8388607-1'); // 15 bytes
    expect(err(() => deviceName('abcdef', 8388607, 1))).toMatch(/'abcdef-8388607-1' would be 16 bytes.*at most 5 characters/);
    expect(isCwgName('cwg', 'cwg-12-1')).toBe(true);
    expect(isCwgName('cwg', 'cwg-12-2')).toBe(false);
    expect(isCwgName('cwg', 'cwgx-12-1')).toBe(false);
    expect(isCwgName('cwg', 'cwg-012-1')).toBe(false);
    expect(isCwgName('cwg', 'eth0')).toBe(false);
  });

  it('validates prefixes', () => {
    expect(validatePrefix('wg', 'x')).toBe('wg');
    expect(validatePrefix('my_app2', 'x')).toBe('my_app2');
    for (const b of ['', '1wg', 'w-g', 'w g', 'wg/', 'w.g', 'abcdefghijkl', 'wé']) expect(() => validatePrefix(b, 'x'), b).toThrow(CwgError);
  });

  it('reads the configuration file, which wins over CWG_PREFIX', () => {
    const p = conf('a.conf', '# comment\n\nprefix = myapp\n');
    expect(loadPrefix({ path: p, env: { CWG_PREFIX: 'other' }, ownerUid: uid })).toEqual({ prefix: 'myapp', source: 'file', origin: p });
    expect(loadPrefix({ path: join(dir, 'missing'), env: { CWG_PREFIX: 'other' } })).toMatchObject({ prefix: 'other', source: 'env' });
    expect(loadPrefix({ path: join(dir, 'missing'), env: {} })).toMatchObject({ prefix: 'cwg', source: 'default' });
    // a file without a prefix setting leaves the choice to the environment
    const empty = conf('empty.conf', '# nothing\n');
    expect(loadPrefix({ path: empty, env: { CWG_PREFIX: 'envp' }, ownerUid: uid })).toMatchObject({ prefix: 'envp', source: 'env' });
    expect(() => loadPrefix({ path: join(dir, 'missing'), env: { CWG_PREFIX: 'bad-prefix' } })).toThrow(/CWG_PREFIX/);
  });

  it('refuses an insecure or malformed configuration file', () => {
    const ww = conf('ww.conf', 'prefix = x\n', 0o666);
    expect(() => loadPrefix({ path: ww, env: {}, ownerUid: uid })).toThrow(/writable by group or others/);
    const gw = conf('gw.conf', 'prefix = x\n', 0o664);
    expect(() => loadPrefix({ path: gw, env: {}, ownerUid: uid })).toThrow(/writable by group or others/);
    const ok = conf('ok.conf', 'prefix = x\n', 0o600);
    expect(() => loadPrefix({ path: ok, env: {}, ownerUid: uid + 1 })).toThrow(/must be owned by root/);
    const link = join(dir, 'link.conf');
    symlinkSync(ok, link);
    expect(() => loadPrefix({ path: link, env: {}, ownerUid: uid })).toThrow(/symbolic link/);
    expect(() => loadPrefix({ path: dir, env: {}, ownerUid: uid })).toThrow(CwgError);
    expect(() => parseConfigText('prefix: x\n', 'f')).toThrow(/f:1: expected 'prefix = NAME'/);
    expect(() => parseConfigText('\nport = 1\n', 'f')).toThrow(/f:2: unknown setting 'port'/);
    expect(() => parseConfigText('prefix = a-b\n', 'f')).toThrow(/invalid prefix 'a-b' in f:1/);
  });
});

describe('key tools', () => {
  it('genkey gives clamped keys, genpsk random bytes', () => {
    const k = decodeBase64Key(genkey().trimEnd());
    expect(k[0]! & 7).toBe(0);
    expect(k[31]! & 0x80).toBe(0);
    expect(k[31]! & 0x40).toBe(0x40);
    expect(genkey()).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(genpsk()).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(genpsk()).not.toBe(genpsk());
    expect(genkey(deterministicRng(1))).toBe(genkey(deterministicRng(1)));
  });

  it('pubkey follows wg pubkey', () => {
    const priv = genkey(deterministicRng(5));
    const want = `${encodeBase64Key(publicKey(decodeBase64Key(priv.trimEnd())))}\n`;
    const b = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
    expect(pubkey(b(priv))).toEqual({ ok: true, output: want });
    expect(pubkey(b(priv.trimEnd()))).toEqual({ ok: true, output: want });
    expect(pubkey(b(`${priv.trimEnd()} \t\r\n\n\0`))).toEqual({ ok: true, output: want });
    expect(pubkey(b(''))).toEqual({ ok: false, error: 'Key is not the correct length or format' });
    // as wg: the first 44 bytes are the key, whatever follows is checked first
    expect(pubkey(b(` ${priv}`))).toEqual({ ok: false, error: 'Trailing characters found after key' });
    expect(pubkey(b(` ${priv.slice(0, 43)}`))).toEqual({ ok: false, error: 'Key is not the correct length or format' });
    expect(pubkey(b(priv.slice(0, 40)))).toEqual({ ok: false, error: 'Key is not the correct length or format' });
    expect(pubkey(b(`${priv.trimEnd()}x`))).toEqual({ ok: false, error: 'Trailing characters found after key' });
    expect(pubkey(b(`${priv.slice(0, 42)}B=`))).toEqual({ ok: false, error: 'Key is not the correct length or format' });
  });
});

describe('wg show format', () => {
  const status = (): DeviceStatus => ({
    privateKey: filledKey(1),
    listenPort: 51820,
    fwmark: 0,
    peers: [
      {
        publicKey: filledKey(2),
        presharedKey: null,
        endpoint: { address: '192.168.56.11', port: 51821, family: 4 },
        persistentKeepalive: 10,
        allowedIps: [{ family: 4, bytes: new Uint8Array([10, 0, 10, 2]), prefix: 31 }],
        lastHandshakeSec: 1000 - 56,
        lastHandshakeNsec: 0,
        rxBytes: 532,
        txBytes: 4864,
      },
    ],
  });

  it('prints what wg show prints', () => {
    const out = formatShow('cwg-5-0', status(), filledKey(9), { nowSec: 1000, color: false });
    expect(out).toBe(
      [
        'interface: cwg-5-0',
        `  public key: ${encodeBase64Key(filledKey(9))}`,
        '  private key: (hidden)',
        '  listening port: 51820',
        '',
        `peer: ${encodeBase64Key(filledKey(2))}`,
        '  endpoint: 192.168.56.11:51821',
        '  allowed ips: 10.0.10.2/31',
        '  latest handshake: 56 seconds ago',
        '  transfer: 532 B received, 4.75 KiB sent',
        '  persistent keepalive: every 10 seconds',
        '',
      ].join('\n'),
    );
    const bare = formatShow('x', { privateKey: null, listenPort: 0, fwmark: 0, peers: [] }, null, { nowSec: 1, color: false });
    expect(bare).toBe('interface: x\n');
    const st = status();
    st.peers[0]!.allowedIps = [];
    st.peers[0]!.lastHandshakeSec = 1000 - 3661;
    st.peers[0]!.endpoint = { address: '2001:db8::1', port: 5, family: 6 };
    st.peers[0]!.rxBytes = 0;
    st.peers[0]!.txBytes = 0;
    st.peers[0]!.persistentKeepalive = 0;
    expect(formatShow('x', st, filledKey(9), { nowSec: 1000, color: false })).toContain(
      '  endpoint: [2001:db8::1]:5\n  allowed ips: (none)\n  latest handshake: 1 hour, 1 minute, 1 second ago\n',
    );
    expect(formatShow('x', st, filledKey(9), { nowSec: 1000, color: true })).toContain('\x1b[32minterface\x1b[0m'.replace('\x1b[32m', '\x1b[32m\x1b[1m'));
  });

  it('formats IPv6 as inet_ntop', () => {
    const v6 = (s: string) => {
      const out = new Uint8Array(16);
      const [h, t] = s.split('::');
      const hg = h ? h.split(':') : [];
      const tg = t ? t.split(':') : [];
      const groups = [...hg, ...Array(8 - hg.length - tg.length).fill('0'), ...tg];
      groups.forEach((g, i) => {
        const n = parseInt(g, 16);
        out[2 * i] = n >> 8;
        out[2 * i + 1] = n & 0xff;
      });
      return out;
    };
    expect(formatIPv6(v6('2001:db8::1'))).toBe('2001:db8::1');
    expect(formatIPv6(v6('::'))).toBe('::');
    expect(formatIPv6(v6('::1'))).toBe('::1');
    expect(formatIPv6(v6('fe80::'))).toBe('fe80::');
    expect(formatIPv6(v6('1:0:0:2:0:0:0:3'))).toBe('1:0:0:2::3');
    expect(formatIPv6(v6('1:0:2:3:4:5:6:7'))).toBe('1:0:2:3:4:5:6:7');
    expect(formatIPv6(v6('::ffff:102:304'))).toBe('::ffff:1.2.3.4');
  });
});

/** An in-memory system: namespaces are pids, links are names, daemons are sockets. */
/** The service's side in memory: namespaces by pid, links and devices by namespace. */
class FakeSystem implements CwgSystem {
  root = true;
  failCreate = false;
  readonly devices = new Map<string, { dev: CwgDevice; status: DeviceStatus; port: number }>();
  readonly foreignLinks = new Set<string>();
  readonly usedPorts = new Set<number>();
  readonly changes: DeviceChange[] = [];
  constructor(readonly pids: Map<number, number>) {}
  checkPrivileges(): void {
    if (!this.root) throw new CwgError('must be run as root');
  }
  namespace(pid: number): CwgNamespace {
    const ino = this.pids.get(pid);
    if (ino === undefined) throw new CwgError(`no process with pid ${pid}`);
    return { pid, key: String(ino), inode: ino };
  }
  device(ns: CwgNamespace, name: string): CwgDevice | null {
    return this.devices.get(`${ns.key}/${name}`)?.dev ?? null;
  }
  linkExists(ns: CwgNamespace, name: string): boolean {
    return this.devices.has(`${ns.key}/${name}`) || this.foreignLinks.has(`${ns.key}/${name}`);
  }
  async createDevice(spec: CreateSpec): Promise<CwgDevice> {
    if (this.usedPorts.has(spec.port)) throw new CwgError(`UDP port ${spec.port} is already in use`);
    if (this.failCreate) throw new CwgError('cannot create device: failed (injected)');
    const status: DeviceStatus = { privateKey: spec.privateKey.slice(), listenPort: spec.port, fwmark: 0, peers: [] };
    const dev: CwgDevice = {
      name: spec.name,
      configure: (c) => {
        this.changes.push(c);
        if (c.replacePeers) status.peers = [];
        for (const p of c.peers) status.peers.push(peerStatus(p.publicKey, { endpoint: p.endpoint ?? null, allowedIps: p.allowedIps }));
        return 0;
      },
      status: () => ({ ...status, privateKey: status.privateKey!.slice() }),
    };
    this.devices.set(`${spec.ns.key}/${spec.name}`, { dev, status, port: spec.port });
    this.usedPorts.add(spec.port);
    return dev;
  }
  async destroyDevice(ns: CwgNamespace, name: string): Promise<boolean> {
    const id = `${ns.key}/${name}`;
    const d = this.devices.get(id);
    if (d) {
      this.devices.delete(id);
      this.usedPorts.delete(d.port);
      return true;
    }
    return this.foreignLinks.delete(id);
  }
}

describe('commands over an in-memory system', () => {
  const setup = () => {
    const sys = new FakeSystem(
      new Map([
        [100, 4001],
        [200, 4002],
        [300, 4001],
      ]),
    );
    const ctx: CwgContext = { prefix: 'cwg', sys };
    return { sys, ctx };
  };

  it('creates, connects, shows and destroys', async () => {
    const { sys, ctx } = setup();
    const pub = await cwgCreate(ctx, ['100', '1024', '1', '51820']);
    expect(pub).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    const d = sys.devices.get('4001/cwg-1024-1')!;
    expect(d.port).toBe(51820);
    expect(`${encodeBase64Key(publicKey(d.status.privateKey!))}\n`).toBe(pub);

    const peer = encodeBase64Key(filledKey(3));
    await cwgConnect(ctx, ['100', '1024', '1', '192.168.7.2:51821', peer]);
    expect(formatSet(sys.changes[0]!)).toEqual([
      'replace_peers=true',
      `public_key=${Buffer.from(filledKey(3)).toString('hex')}`,
      'endpoint=192.168.7.2:51821',
      'replace_allowed_ips=true',
      'allowed_ip=10.0.8.0/31',
    ]);
    await cwgConnect(ctx, ['100', '1024', '1', '[2001:db8::2]:9', encodeBase64Key(filledKey(4))]);
    expect(d.status.peers).toHaveLength(1);
    const shown = await cwgShow(ctx, ['100', '1024', '1'], { nowSec: 0, color: false });
    expect(shown).toContain(`peer: ${encodeBase64Key(filledKey(4))}\n  endpoint: [2001:db8::2]:9\n  allowed ips: 10.0.8.0/31\n`);
    expect(shown).toContain(`  public key: ${pub}`);
    expect(shown).not.toContain(encodeBase64Key(d.status.privateKey!));

    await cwgDestroy(ctx, ['100', '1024', '1']);
    expect(sys.devices.size).toBe(0);
    expect(sys.usedPorts.size).toBe(0);
    await expect(cwgDestroy(ctx, ['100', '1024', '1'])).rejects.toThrow('no device cwg-1024-1 in the network namespace of pid 100');
    // A link of that name that is not ours is refused by connect and show, removed by destroy.
    sys.foreignLinks.add('4001/cwg-1024-1');
    await expect(cwgConnect(ctx, ['100', '1024', '1', '1.2.3.4:5', peer])).rejects.toThrow(
      'device cwg-1024-1 in the network namespace of pid 100 is not managed by cwg',
    );
    await expect(cwgCreate(ctx, ['100', '1024', '1', '51820'])).rejects.toThrow('already exists');
    await cwgDestroy(ctx, ['100', '1024', '1']);
    expect(sys.foreignLinks.size).toBe(0);
  });

  it('undoes a create whose caller went away', async () => {
    const { sys, ctx } = setup();
    const ac = new AbortController();
    const create = sys.createDevice.bind(sys);
    sys.createDevice = async (spec) => {
      const d = await create(spec);
      ac.abort('client gone'); // the caller goes away while the device is made
      return d;
    };
    await expect(cwgCreate({ ...ctx, signal: ac.signal }, ['100', '3', '1', '7000'])).rejects.toThrow('interrupted; nothing was left behind');
    expect(sys.devices.size).toBe(0);
    expect(sys.usedPorts.size).toBe(0);
    // aborted before anything was made: nothing is made at all
    sys.createDevice = create;
    await expect(cwgCreate({ ...ctx, signal: ac.signal }, ['100', '3', '1', '7000'])).rejects.toThrow('interrupted');
    expect(sys.devices.size).toBe(0);
  });

  it('keeps same-named devices of different namespaces apart', async () => {
    const { sys, ctx } = setup();
    await cwgCreate(ctx, ['100', '7', '0', '1000']);
    await cwgCreate(ctx, ['200', '7', '0', '1001']);
    await expect(cwgCreate(ctx, ['300', '7', '0', '1002'])).rejects.toThrow(/cwg-7-0 in the network namespace of pid 300 already exists/);
    await cwgDestroy(ctx, ['200', '7', '0']);
    expect(sys.devices.has('4001/cwg-7-0')).toBe(true);
    await expect(cwgConnect(ctx, ['200', '7', '0', '1.2.3.4:5', encodeBase64Key(filledKey(1))])).rejects.toThrow(/no device cwg-7-0/);
  });

  it('fails cleanly and leaves nothing behind', async () => {
    const { sys, ctx } = setup();
    sys.usedPorts.add(5000);
    await expect(cwgCreate(ctx, ['100', '1', '0', '5000'])).rejects.toThrow('UDP port 5000 is already in use');
    await expect(cwgCreate(ctx, ['999', '1', '0', '5001'])).rejects.toThrow('no process with pid 999');
    sys.failCreate = true;
    await expect(cwgCreate(ctx, ['100', '1', '0', '5001'])).rejects.toThrow('cannot create device: failed (injected)');
    expect(sys.devices.size).toBe(0);
    expect(sys.usedPorts).toEqual(new Set([5000]));
    sys.failCreate = false;
    sys.root = false;
    await expect(cwgCreate(ctx, ['100', '1', '0', '5001'])).rejects.toThrow('must be run as root');
    // argument errors come before the privilege check
    await expect(cwgCreate(ctx, ['100', '1', '0', '0'])).rejects.toThrow(/invalid port/);
    await expect(cwgCreate(ctx, ['100', '1', '0'])).rejects.toThrow('expected 4 arguments (<pid> <net> <host> <port>), got 3');
    await expect(cwgCreate({ ...ctx, prefix: 'longprefix' }, ['100', '100000', '0', '1'])).rejects.toThrow(/15/);
  });
});

describe('cli dispatch', () => {
  const io = (stdin = '', ctx?: CwgContext): RunIo => ({
    readStdin: async () => new Uint8Array(Buffer.from(stdin)),
    stdoutIsTty: false,
    stdoutWorldAccessible: false,
    env: {},
    context: async () => ctx ?? { prefix: 'cwg', sys: new FakeSystem(new Map()) },
  });

  it('prints usage and one-line errors', async () => {
    const help = await run(['--help'], io());
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('cwg_create <pid> <net> <host> <port>');
    expect((await run(['cwg_connect', '--help'], io())).stdout).toContain('Usage: cwg cwg_connect <pid> <net> <host> <peer_endpoint> <peer_key>');
    expect((await run(['help', 'show'], io())).stdout).toContain('Usage: cwg show <pid> <net> <host>');
    for (const argv of [
      [],
      ['nope'],
      ['cwg_create', '1'],
      ['cwg_destroy', 'x', '1', '0'],
      ['genkey', 'x'],
      ['cwg_connect', '1', '1', '0', '1.2.3.4:5', 'bad'],
    ]) {
      const r = await run(argv, io());
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.split('\n')).toHaveLength(2);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect((await run(['cwg_destroy', 'x', '1', '0'], io())).stderr).toBe(
      "cwg_destroy: invalid pid 'x': expected a decimal number in 1..4194304 (digits only)\n",
    );
    expect((await run(['pubkey'], io('nonsense'))).stderr).toBe('cwg: Key is not the correct length or format\n');
  });

  it('reports unexpected errors on one line', async () => {
    const sys = new FakeSystem(new Map([[1, 1]]));
    sys.destroyDevice = async () => {
      throw new TypeError('boom\nsecond line');
    };
    const r = await run(['cwg_destroy', '1', '1', '0'], io('', { prefix: 'cwg', sys }));
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'cwg_destroy: internal error: boom; second line\n' });
  });
});
