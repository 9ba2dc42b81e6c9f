/**
 * Debian's real `wg` against our UAPI server. `wg` only looks in /var/run/wireguard, so the
 * server listens on /var/run/wireguard/wgtsT<pid>.sock, removed again in afterAll.
 */

import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase64Key } from '../../crypto/keys.js';
import { publicKey } from '../../crypto/x25519.js';
import { formatCidr, parseCidr } from '../../noise/iptext.js';
import { type DeviceChange, type DeviceStatus, peerStatus } from '../../noise/types.js';
import { EADDRINUSE, formatGet, uapiSocketPath } from '../../src/uapi/protocol.js';
import { serveUapi, type UapiServer } from '../../src/uapi/server.js';
import { interfaceIndex } from '../../tun/ip.js';
import { clampedKey } from '../helpers/keys.js';
import { isRoot } from '../helpers/proc.js';

const run = promisify(execFile);
const WG = '/usr/bin/wg';

function haveWg(): boolean {
  try {
    accessSync(WG, constants.X_OK);
    accessSync('/var/run', constants.W_OK);
    return isRoot;
  } catch {
    return false;
  }
}

const b64 = (k: Uint8Array) => encodeBase64Key(k);

/** `wg` exit status and output, never throwing. */
async function wg(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(WG, args, { maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

describe.skipIf(!haveWg())('real wg(8) against the UAPI server', () => {
  const ifname = `wgtsT${process.pid}`;
  const sock = uapiSocketPath(ifname);
  let server: UapiServer | null = null;
  let dir = '';
  const changes: DeviceChange[] = [];
  let setErrno = 0;
  let status: DeviceStatus;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wgts-wg-'));
    status = {
      privateKey: clampedKey(1),
      listenPort: 51820,
      fwmark: 0x1234,
      peers: [
        {
          publicKey: publicKey(clampedKey(2)),
          presharedKey: clampedKey(3),
          endpoint: { address: '2001:db8::7', port: 4444, family: 6 },
          persistentKeepalive: 25,
          allowedIps: [parseCidr('10.0.0.0/8'), parseCidr('fd00::/64'), parseCidr('::ffff:0.0.0.0/96')],
          lastHandshakeSec: 1700000000,
          lastHandshakeNsec: 5,
          rxBytes: 1000,
          txBytes: 2000,
        },
        peerStatus(publicKey(clampedKey(4))),
      ],
    };
    server = await serveUapi(sock, {
      get: () => formatGet(status),
      set: (c) => {
        changes.push(c);
        return setErrno;
      },
      zoneIndex: interfaceIndex,
    });
  });

  afterAll(async () => {
    await server?.close();
    if (existsSync(sock)) rmSync(sock);
    rmSync(dir, { recursive: true, force: true });
  });

  it('wg show IFNAME dump matches the status', async () => {
    const r = await wg('show', ifname, 'dump');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const p1 = status.peers[0]!;
    expect(r.stdout.split('\n')).toEqual([
      [b64(clampedKey(1)), b64(publicKey(clampedKey(1))), '51820', '0x1234'].join('\t'),
      [b64(p1.publicKey), b64(clampedKey(3)), '[2001:db8::7]:4444', '10.0.0.0/8,fd00::/64,::ffff:0.0.0.0/96', '1700000000', '1000', '2000', '25'].join('\t'),
      [b64(status.peers[1]!.publicKey), '(none)', '(none)', '(none)', '0', '0', '0', 'off'].join('\t'),
      '',
    ]);
    const iface = await wg('show', 'interfaces');
    expect(iface.stdout.split(/\s+/)).toContain(ifname);
  });

  it('wg set sends every field, parsed into the change', async () => {
    const privFile = join(dir, 'priv');
    const pskFile = join(dir, 'psk');
    writeFileSync(privFile, b64(clampedKey(9)) + '\n');
    writeFileSync(pskFile, b64(clampedKey(10)) + '\n');
    changes.length = 0;
    const peerPub = b64(publicKey(clampedKey(11)));
    const r = await wg(
      'set',
      ifname,
      'listen-port',
      '1234',
      'fwmark',
      '0x10',
      'private-key',
      privFile,
      'peer',
      peerPub,
      'preshared-key',
      pskFile,
      'endpoint',
      '[2001:db8::1]:51820',
      'persistent-keepalive',
      '15',
      'allowed-ips',
      '10.1.2.3/16,fd00:1::/48',
      'peer',
      b64(publicKey(clampedKey(12))),
      'remove',
    );
    // wg warns about the host bits it passes on; we mask them as the kernel does
    expect(r.stderr.trim()).toBe('Warning: AllowedIP has nonzero host part: 10.1.2.3/16');
    expect(r.code).toBe(0);
    expect(changes.length).toBe(1);
    const c = changes[0]!;
    expect(c.privateKey).toEqual(clampedKey(9));
    expect(c.listenPort).toBe(1234);
    expect(c.fwmark).toBe(16);
    expect(c.peers.length).toBe(2);
    const p = c.peers[0]!;
    expect(b64(p.publicKey)).toBe(peerPub);
    expect(p.presharedKey).toEqual(clampedKey(10));
    expect(p.endpoint).toEqual({ address: '2001:db8::1', port: 51820, family: 6 });
    expect(p.persistentKeepalive).toBe(15);
    expect(p.replaceAllowedIps).toBe(true);
    expect(p.allowedIps.map(formatCidr)).toEqual(['10.1.0.0/16', 'fd00:1::/48']);
    expect(c.peers[1]).toEqual({ publicKey: publicKey(clampedKey(12)), remove: true, allowedIps: [] });
  });

  it('wg reports our errnos with the right text', async () => {
    setErrno = EADDRINUSE;
    try {
      const r = await wg('set', ifname, 'listen-port', '1');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/Address already in use/);
    } finally {
      setErrno = 0;
    }
  });

  it('takes a link-local endpoint with its zone as wg sends it, and wg shows it back by name', async () => {
    changes.length = 0;
    const r = await wg('set', ifname, 'peer', b64(publicKey(clampedKey(11))), 'endpoint', '[fe80::1%lo]:5');
    expect(r.code).toBe(0);
    const ep = changes[0]!.peers[0]!.endpoint!;
    expect(ep).toMatchObject({ address: 'fe80::1', port: 5, family: 6, ifindex: 1 }); // lo is always 1
    const saved = status.peers[1]!;
    status.peers[1] = { ...saved, endpoint: ep };
    try {
      expect((await wg('show', ifname, 'endpoints')).stdout).toContain(`${b64(publicKey(clampedKey(4)))}\t[fe80::1%lo]:5`);
    } finally {
      status.peers[1] = saved;
    }
  });

  it('wg setconf with 100,000 allowed IPs arrives complete; wg showconf reads them back', async () => {
    const ips: string[] = [];
    for (let i = 0; i < 100_000; i++) ips.push(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`);
    const conf = join(dir, 'big.conf');
    writeFileSync(
      conf,
      `[Interface]\nPrivateKey = ${b64(clampedKey(20))}\nListenPort = 5555\n\n[Peer]\nPublicKey = ${b64(publicKey(clampedKey(21)))}\nAllowedIPs = ${ips.join(', ')}\n`,
    );
    changes.length = 0;
    const r = await wg('setconf', ifname, conf);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const c = changes[0]!;
    expect(c.replacePeers).toBe(true);
    expect(c.listenPort).toBe(5555);
    expect(c.peers[0]!.allowedIps.map(formatCidr)).toEqual(ips);

    const saved = status;
    status = {
      privateKey: c.privateKey ?? null,
      listenPort: c.listenPort!,
      fwmark: 0,
      peers: [
        {
          publicKey: c.peers[0]!.publicKey,
          presharedKey: null,
          endpoint: null,
          persistentKeepalive: 0,
          allowedIps: c.peers[0]!.allowedIps,
          lastHandshakeSec: 0,
          lastHandshakeNsec: 0,
          rxBytes: 0,
          txBytes: 0,
        },
      ],
    };
    try {
      const show = await wg('showconf', ifname);
      expect(show.code).toBe(0);
      const line = show.stdout.split('\n').find((l) => l.startsWith('AllowedIPs = '))!;
      expect(line.slice('AllowedIPs = '.length).split(', ')).toEqual(ips);
    } finally {
      status = saved;
    }
  });
});
