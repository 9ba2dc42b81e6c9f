import { describe, expect, it } from 'vitest';
import { publicKey } from '../../crypto/x25519.js';
import { formatCidr, formatEndpoint, parseCidr, parseEndpoint as parseEndpointText, type ZoneResolver } from '../../noise/iptext.js';
import { interfaceIndex } from '../../tun/ip.js';

// The UAPI parses endpoints with the lookup of the namespace its socket lives in, as the daemon does.
const parseEndpoint = (v: string, zones: ZoneResolver = interfaceIndex) => parseEndpointText(v, zones);

import { type DeviceChange, type DeviceStatus, type PeerStatus, peerStatus } from '../../noise/types.js';
import {
  EADDRINUSE,
  EINVAL,
  EIO,
  ENOANO,
  EPROTO,
  formatErrno,
  formatGet,
  formatSet,
  parseErrno,
  parseGetResponse,
  parseSet,
  UapiError,
  uapiSocketPath,
} from '../../src/uapi/protocol.js';
import { filledHexKey, filledKey } from '../helpers/keys.js';

const Z = '0'.repeat(64);

function ok(lines: string[] | string): DeviceChange {
  const r = parseSet(lines);
  if ('errno' in r) throw new Error(`unexpected errno ${r.errno}: ${r.message}`);
  return r.change;
}

function err(lines: string[] | string): { errno: number; message: string } {
  const r = parseSet(lines);
  if (!('errno' in r)) throw new Error(`expected an error, got ${JSON.stringify(r.change)}`);
  return r;
}

describe('errno values (wireguard-go ipc/uapi_unix.go)', () => {
  it('are the Linux errno numbers, written negated on the wire', () => {
    expect({ EIO, EINVAL, ENOANO, EPROTO, EADDRINUSE }).toEqual({ EIO: 5, EINVAL: 22, ENOANO: 55, EPROTO: 71, EADDRINUSE: 98 });
    expect(formatErrno(0)).toBe('errno=0\n\n');
    expect(formatErrno(22)).toBe('errno=-22\n\n');
    expect(parseErrno('-98')).toBe(98);
    expect(parseErrno('98')).toBe(98);
    expect(parseErrno('0')).toBe(0);
    expect(parseErrno('x')).toBeNull();
    expect(parseErrno('')).toBeNull();
    expect(uapiSocketPath('wg0')).toBe('/var/run/wireguard/wg0.sock');
  });
});

describe('parseSet', () => {
  it('parses every device key', () => {
    const c = ok([`private_key=${filledHexKey(1)}`, 'listen_port=51820', 'fwmark=4294967295', 'replace_peers=true']);
    expect(c.privateKey).toEqual(filledKey(1));
    expect(c.listenPort).toBe(51820);
    expect(c.fwmark).toBe(0xffffffff);
    expect(c.replacePeers).toBe(true);
    expect(c.peers).toEqual([]);
  });

  it('treats an all-zero private key as removal and accepts port 0, leading zeros like Go', () => {
    const c = ok([`private_key=${Z}`, 'listen_port=0', 'fwmark=0']);
    expect(c.privateKey).toBeNull();
    expect(c.listenPort).toBe(0);
    expect(c.fwmark).toBe(0);
    expect(ok(['listen_port=0080']).listenPort).toBe(80);
    expect(ok([]).peers).toEqual([]);
    expect(ok('').peers).toEqual([]);
  });

  it('accepts upper-case hex keys', () => {
    expect(ok([`public_key=${filledHexKey(0xab).toUpperCase()}`]).peers[0]!.publicKey).toEqual(filledKey(0xab));
  });

  it('parses every peer key', () => {
    const c = ok([
      `public_key=${filledHexKey(2)}`,
      'protocol_version=1',
      `preshared_key=${filledHexKey(3)}`,
      'endpoint=192.0.2.1:51820',
      'persistent_keepalive_interval=25',
      'replace_allowed_ips=true',
      'allowed_ip=10.0.0.1/24',
      'allowed_ip=2001:db8::/32',
      'allowed_ip=::ffff:1.2.3.4/128',
      `public_key=${filledHexKey(4)}`,
      'update_only=true',
      'endpoint=[2001:db8::1]:1',
      `preshared_key=${Z}`,
      'persistent_keepalive_interval=0',
      `public_key=${filledHexKey(5)}`,
      'remove=true',
    ]);
    expect(c.peers.length).toBe(3);
    const [a, b, r] = c.peers;
    expect(a!.publicKey).toEqual(filledKey(2));
    expect(a!.presharedKey).toEqual(filledKey(3));
    expect(a!.endpoint).toEqual({ address: '192.0.2.1', port: 51820, family: 4 });
    expect(a!.persistentKeepalive).toBe(25);
    expect(a!.replaceAllowedIps).toBe(true);
    expect(a!.allowedIps.map(formatCidr)).toEqual(['10.0.0.0/24', '2001:db8::/32', '::ffff:1.2.3.4/128']);
    expect(a!.remove).toBeUndefined();
    expect(a!.updateOnly).toBeUndefined();
    expect(b!.updateOnly).toBe(true);
    expect(b!.endpoint).toEqual({ address: '2001:db8::1', port: 1, family: 6 });
    expect(b!.presharedKey).toBeNull();
    expect(b!.persistentKeepalive).toBe(0);
    expect(b!.allowedIps).toEqual([]);
    expect(b!.replaceAllowedIps).toBeUndefined();
    expect(r).toEqual({ publicKey: filledKey(5), remove: true, allowedIps: [] });
  });

  it('accepts text with a terminating blank line and ignores what follows it', () => {
    const c = ok(`listen_port=1\npublic_key=${filledHexKey(9)}\nallowed_ip=10.0.0.0/8\n\nlisten_port=garbage\n`);
    expect(c.listenPort).toBe(1);
    expect(c.peers[0]!.allowedIps.map(formatCidr)).toEqual(['10.0.0.0/8']);
  });

  it('replace_allowed_ips also drops the allowed IPs listed before it in the section', () => {
    const c = ok([`public_key=${filledHexKey(2)}`, 'allowed_ip=10.0.0.0/8', 'replace_allowed_ips=true', 'allowed_ip=10.1.0.0/16']);
    expect(c.peers[0]!.replaceAllowedIps).toBe(true);
    expect(c.peers[0]!.allowedIps.map(formatCidr)).toEqual(['10.1.0.0/16']);
  });

  it('remove=true makes the rest of the section moot but still validated', () => {
    const c = ok([`public_key=${filledHexKey(2)}`, 'allowed_ip=10.0.0.0/8', 'remove=true', 'endpoint=1.2.3.4:5', 'allowed_ip=10.1.0.0/16']);
    expect(c.peers[0]).toEqual({ publicKey: filledKey(2), remove: true, allowedIps: [] });
    expect(err([`public_key=${filledHexKey(2)}`, 'remove=true', 'endpoint=1.2.3.4']).errno).toBe(EINVAL);
  });

  it('keeps repeated public keys as separate, ordered sections', () => {
    const c = ok([`public_key=${filledHexKey(2)}`, 'remove=true', `public_key=${filledHexKey(2)}`, 'allowed_ip=10.0.0.0/8']);
    expect(c.peers.length).toBe(2);
    expect(c.peers[0]!.remove).toBe(true);
    expect(c.peers[1]!.allowedIps.length).toBe(1);
  });

  it('parses endpoints strictly', () => {
    expect(parseEndpoint('1.2.3.4:0')).toEqual({ address: '1.2.3.4', port: 0, family: 4 });
    expect(parseEndpoint('1.2.3.4:65535')).toEqual({ address: '1.2.3.4', port: 65535, family: 4 });
    expect(parseEndpoint('[::ffff:1.2.3.4]:80')).toEqual({ address: '::ffff:1.2.3.4', port: 80, family: 6 });
    expect(parseEndpoint('[2001:DB8:0:0::1]:80')).toEqual({ address: '2001:db8::1', port: 80, family: 6 });
    expect(formatEndpoint({ address: '2001:db8::1', port: 80, family: 6 })).toBe('[2001:db8::1]:80');
    expect(formatEndpoint({ address: '1.2.3.4', port: 80, family: 4 })).toBe('1.2.3.4:80');
    for (const bad of [
      '1.2.3.4',
      '1.2.3.4:',
      '1.2.3.4:65536',
      '1.2.3.4:-1',
      '1.2.3.4:+1',
      '1.2.3.4:0x10',
      ':80',
      '2001:db8::1:80',
      '[2001:db8::1]',
      '[2001:db8::1]80',
      '[2001:db8::1]:',
      '[1.2.3.4]:80',
      '[fe80::1%nosuchif0]:80',
      '[fe80::1%0]:80',
      '[fe80::1%]:80',
      '[fe80::1%4294967296]:80',
      '1.2.3.4%lo:80',
      'example.com:80',
      '01.2.3.4:80',
      '',
      '[]:80',
      '[::1',
      '1.2.3.4:80 ',
      ' 1.2.3.4:80',
    ]) {
      expect(typeof parseEndpoint(bad), bad).toBe('string');
      const r = err([`public_key=${filledHexKey(1)}`, `endpoint=${bad}`]);
      expect(r.errno, bad).toBe(EINVAL);
      expect(r.message).toMatch(/endpoint/);
    }
    expect(parseEndpoint('[fe80::1%nosuchif0]:80')).toMatch(/no interface "nosuchif0" for the zone/);
  });

  it('parses and formats IPv6 zones: interface names (resolved here) and indexes', () => {
    const zones = (name: string) => (name === 'eth7' ? 7 : 0);
    expect(parseEndpoint('[fe80::1%eth7]:80', zones)).toEqual({ address: 'fe80::1', port: 80, family: 6, ifindex: 7 });
    expect(parseEndpoint('[FE80::1%3]:80', zones)).toEqual({ address: 'fe80::1', port: 80, family: 6, ifindex: 3 });
    expect(parseEndpoint('[fe80::1%lo]:80')).toEqual({ address: 'fe80::1', port: 80, family: 6, ifindex: 1 }); // the real lookup
    expect(typeof parseEndpoint('[fe80::1%eth8]:80', zones)).toBe('string');
    expect(formatEndpoint({ address: 'fe80::1', port: 80, family: 6, ifindex: 7 })).toBe('[fe80::1%7]:80');
    expect(formatEndpoint({ address: 'febf::1', port: 80, family: 6, ifindex: 7 })).toBe('[febf::1%7]:80');
    // A zone only means something on link-local addresses; learned endpoints carry an ifindex always.
    expect(formatEndpoint({ address: '2001:db8::1', port: 80, family: 6, ifindex: 7 })).toBe('[2001:db8::1]:80');
    expect(formatEndpoint({ address: 'fec0::1', port: 80, family: 6, ifindex: 7 })).toBe('[fec0::1]:80');
    expect(formatEndpoint({ address: '10.0.0.1', port: 80, family: 4, ifindex: 7 })).toBe('10.0.0.1:80');
    expect(ok([`public_key=${filledHexKey(1)}`, 'endpoint=[fe80::9%12]:51820']).peers[0]!.endpoint).toEqual({
      address: 'fe80::9',
      port: 51820,
      family: 6,
      ifindex: 12,
    });
  });

  it('rejects every kind of invalid input with wireguard-go errnos', () => {
    const cases: [string[], number, RegExp][] = [
      [['listen_port'], EPROTO, /parse a line/],
      [['garbage'], EPROTO, /parse a line/],
      [[`private_key=${filledHexKey(1).slice(1)}`], EINVAL, /private_key/],
      [[`private_key=${filledHexKey(1)}0`], EINVAL, /private_key/],
      [[`private_key=${'g'.repeat(64)}`], EINVAL, /private_key/],
      [['private_key=QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE='], EINVAL, /private_key/],
      [['listen_port=65536'], EINVAL, /listen_port/],
      [['listen_port=-1'], EINVAL, /listen_port/],
      [['listen_port='], EINVAL, /listen_port/],
      [['listen_port=+5'], EINVAL, /listen_port/],
      [['listen_port= 5'], EINVAL, /listen_port/],
      [['listen_port=5.0'], EINVAL, /listen_port/],
      [['fwmark=4294967296'], EINVAL, /fwmark/],
      [['fwmark=0x10'], EINVAL, /fwmark/],
      [['replace_peers=false'], EINVAL, /replace_peers/],
      [['replace_peers=TRUE'], EINVAL, /replace_peers/],
      [['unknown_key=1'], EINVAL, /device key/],
      [['LISTEN_PORT=1'], EINVAL, /device key/],
      [['endpoint=1.2.3.4:5'], EINVAL, /device key/], // a peer key before public_key
      [['allowed_ip=10.0.0.0/8'], EINVAL, /device key/],
      [['protocol_version=1'], EINVAL, /device key/],
      [['public_key=abc'], EINVAL, /public key/],
      [['public_key='], EINVAL, /public key/],
      [[`public_key=${filledHexKey(1)}`, 'listen_port=1'], EINVAL, /peer key/], // a device key inside a peer
      [[`public_key=${filledHexKey(1)}`, 'private_key=' + filledHexKey(1)], EINVAL, /peer key/],
      [[`public_key=${filledHexKey(1)}`, 'bogus=1'], EINVAL, /peer key/],
      [[`public_key=${filledHexKey(1)}`, 'protocol_version=2'], EINVAL, /protocol version/],
      [[`public_key=${filledHexKey(1)}`, 'protocol_version=0'], EINVAL, /protocol version/],
      [[`public_key=${filledHexKey(1)}`, 'preshared_key=00'], EINVAL, /preshared/],
      [[`public_key=${filledHexKey(1)}`, 'persistent_keepalive_interval=65536'], EINVAL, /keepalive/],
      [[`public_key=${filledHexKey(1)}`, 'persistent_keepalive_interval=-1'], EINVAL, /keepalive/],
      [[`public_key=${filledHexKey(1)}`, 'replace_allowed_ips=false'], EINVAL, /allowedips/],
      [[`public_key=${filledHexKey(1)}`, 'remove=false'], EINVAL, /remove/],
      [[`public_key=${filledHexKey(1)}`, 'update_only=1'], EINVAL, /update only/],
      [[`public_key=${filledHexKey(1)}`, 'allowed_ip=10.0.0.0/33'], EINVAL, /allowed ip.*out of range/],
      [[`public_key=${filledHexKey(1)}`, 'allowed_ip=::/129'], EINVAL, /allowed ip/],
      [[`public_key=${filledHexKey(1)}`, 'allowed_ip=10.0.0.256/8'], EINVAL, /allowed ip/],
      [[`public_key=${filledHexKey(1)}`, 'allowed_ip=fe80::1%eth0/64'], EINVAL, /zone/],
      [[`public_key=${filledHexKey(1)}`, 'allowed_ip='], EINVAL, /allowed ip/],
      [[`public_key=${filledHexKey(1)}`, 'allowed_ip'], EPROTO, /parse a line/],
    ];
    for (const [lines, errno, re] of cases) {
      const r = err(lines);
      expect(r.errno, lines.join('|')).toBe(errno);
      expect(r.message, lines.join('|')).toMatch(re);
    }
  });

  it('is transactional: one bad line anywhere yields only an errno', () => {
    const lines = [`private_key=${filledHexKey(1)}`, 'listen_port=1234', 'replace_peers=true'];
    for (let i = 0; i < 50; i++) lines.push(`public_key=${filledHexKey(i + 10)}`, `allowed_ip=10.${i}.0.0/16`);
    expect(ok(lines).peers.length).toBe(50);
    const bad = [...lines, 'allowed_ip=10.0.0.0/99'];
    const r = parseSet(bad);
    expect('change' in r).toBe(false);
    expect(r).toEqual({ errno: EINVAL, message: expect.stringMatching(/allowed ip/) });
  });
});

function samplePeer(i: number, extra: Partial<PeerStatus> = {}): PeerStatus {
  return peerStatus(filledKey(i), extra);
}

describe('formatGet', () => {
  it('writes wireguard-go keys in wireguard-go order', () => {
    const st: DeviceStatus = {
      privateKey: filledKey(1),
      listenPort: 51820,
      fwmark: 7,
      peers: [
        samplePeer(2, {
          presharedKey: filledKey(3),
          endpoint: { address: '2001:db8::1', port: 9, family: 6 },
          persistentKeepalive: 25,
          allowedIps: [parseCidr('10.0.0.0/8'), parseCidr('fd00::/8')],
          lastHandshakeSec: 1700000000,
          lastHandshakeNsec: 123456789,
          rxBytes: 2 ** 53 + 2,
          txBytes: 42,
        }),
        samplePeer(4, { endpoint: { address: '192.0.2.7', port: 51820, family: 4 } }),
      ],
    };
    expect(formatGet(st)).toBe(
      [
        `private_key=${filledHexKey(1)}`,
        'listen_port=51820',
        'fwmark=7',
        `public_key=${filledHexKey(2)}`,
        `preshared_key=${filledHexKey(3)}`,
        'protocol_version=1',
        'endpoint=[2001:db8::1]:9',
        'last_handshake_time_sec=1700000000',
        'last_handshake_time_nsec=123456789',
        'tx_bytes=42',
        'rx_bytes=9007199254740994',
        'persistent_keepalive_interval=25',
        'allowed_ip=10.0.0.0/8',
        'allowed_ip=fd00::/8',
        `public_key=${filledHexKey(4)}`,
        `preshared_key=${Z}`,
        'protocol_version=1',
        'endpoint=192.0.2.7:51820',
        'last_handshake_time_sec=0',
        'last_handshake_time_nsec=0',
        'tx_bytes=0',
        'rx_bytes=0',
        'persistent_keepalive_interval=0',
        '',
      ].join('\n'),
    );
  });

  it('omits an unset private key, a zero port and a zero fwmark', () => {
    expect(formatGet({ privateKey: null, listenPort: 0, fwmark: 0, peers: [] })).toBe('');
    expect(formatGet({ privateKey: new Uint8Array(32), listenPort: 0, fwmark: 0, peers: [] })).toBe('');
  });

  it('round-trips through parseGetResponse', () => {
    const st: DeviceStatus = {
      privateKey: filledKey(1),
      listenPort: 1,
      fwmark: 0xffffffff,
      peers: [
        samplePeer(2, {
          presharedKey: filledKey(3),
          endpoint: { address: '::ffff:1.2.3.4', port: 65535, family: 6 },
          persistentKeepalive: 65535,
          allowedIps: [parseCidr('0.0.0.0/0'), parseCidr('::/0'), parseCidr('10.1.2.3/32')],
          lastHandshakeSec: 5,
          lastHandshakeNsec: 6,
          rxBytes: 7,
          txBytes: 8,
        }),
        samplePeer(9),
      ],
    };
    const got = parseGetResponse(formatGet(st) + formatErrno(0));
    expect(got).toEqual({ ...st, publicKey: publicKey(filledKey(1)) });
  });

  it('formats and parses back 100,000 allowed IPs', () => {
    const ips = [];
    for (let i = 0; i < 100_000; i++) ips.push({ family: 4 as const, bytes: Uint8Array.of(10, i >> 16, (i >> 8) & 255, i & 255), prefix: 32 });
    const text = formatGet({ privateKey: null, listenPort: 0, fwmark: 0, peers: [samplePeer(1, { allowedIps: ips })] });
    expect(text.split('\n').length).toBe(100_000 + 8 + 1);
    const back = parseGetResponse(text + 'errno=0\n\n');
    expect(back.peers[0]!.allowedIps.length).toBe(100_000);
    expect(formatCidr(back.peers[0]!.allowedIps[99_999]!)).toBe('10.1.134.159/32');
  });
});

describe('formatSet', () => {
  it('round-trips through parseSet', () => {
    const change: DeviceChange = {
      privateKey: filledKey(1),
      listenPort: 51820,
      fwmark: 3,
      replacePeers: true,
      peers: [
        {
          publicKey: filledKey(2),
          presharedKey: filledKey(3),
          endpoint: { address: '2001:db8::5', port: 1, family: 6 },
          persistentKeepalive: 10,
          replaceAllowedIps: true,
          allowedIps: [parseCidr('10.0.0.0/8'), parseCidr('2001:db8::/64')],
        },
        { publicKey: filledKey(4), remove: true, allowedIps: [] },
        { publicKey: filledKey(5), updateOnly: true, presharedKey: null, allowedIps: [] },
      ],
    };
    expect(ok(formatSet(change))).toEqual(change);
    expect(ok(formatSet({ privateKey: null, peers: [] }))).toEqual({ privateKey: null, peers: [] });
    expect(formatSet({ privateKey: null, peers: [] })).toEqual([`private_key=${Z}`]);
  });
});

describe('parseGetResponse', () => {
  it('reports errors and malformed answers', () => {
    expect(() => parseGetResponse('errno=-5\n\n')).toThrow(UapiError);
    try {
      parseGetResponse('errno=-5\n\n');
    } catch (e) {
      expect((e as UapiError).errno).toBe(5);
    }
    expect(() => parseGetResponse('listen_port=1\n')).toThrow(/no errno/);
    expect(() => parseGetResponse('listen_port=x\nerrno=0\n\n')).toThrow(/invalid number/);
    expect(() => parseGetResponse('garbage\nerrno=0\n\n')).toThrow(/no '='/);
    expect(() => parseGetResponse(`public_key=${filledHexKey(1)}\nallowed_ip=1.2.3.4/40\nerrno=0\n\n`)).toThrow(/allowed_ip/);
    expect(() => parseGetResponse(`public_key=${filledHexKey(1)}\nprotocol_version=2\nerrno=0\n\n`)).toThrow(/protocol/);
    expect(() => parseGetResponse('private_key=00\nerrno=0\n\n')).toThrow(UapiError);
  });

  it('skips unknown keys and accepts a zone from other implementations', () => {
    const r = parseGetResponse(`jc=4\npublic_key=${filledHexKey(1)}\nendpoint=[fe80::1%3]:51820\nfuture_key=1\nerrno=0\n\n`);
    expect(r.peers[0]!.endpoint).toEqual({ address: 'fe80::1', port: 51820, family: 6, ifindex: 3 });
    const named = parseGetResponse(`public_key=${filledHexKey(1)}\nendpoint=[fe80::1%nosuchif0]:51820\nerrno=0\n\n`);
    expect(named.peers[0]!.endpoint).toEqual({ address: 'fe80::1', port: 51820, family: 6 });
    expect(r.privateKey).toBeNull();
    expect(r.publicKey).toBeNull();
  });
});

describe('secrets stay out of messages', () => {
  it('does not echo a malformed line, which may hold a key', () => {
    const key = 'ab'.repeat(32);
    const r = parseSet([`private_key ${key}`]);
    expect('errno' in r && r.errno).toBeTruthy();
    expect('message' in r ? r.message : '').not.toContain(key.slice(0, 16));
  });
});
