/**
 * A private key is stored and reported clamped, as the kernel does (drivers/net/wireguard/
 * noise.c, wg_noise_set_static_identity_private_key: memcpy, then curve25519_clamp_secret;
 * netlink.c reports static_private) and as wireguard-go does (its UAPI parser clamps a
 * non-zero key: noise-helpers.go FromMaybeZeroHex).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeHexKey, encodeHexKey } from '../../crypto/keys.js';
import { clampPrivateKey, publicKey } from '../../crypto/x25519.js';
import { Device } from '../../noise/device.js';
import { uapiGet, uapiGetRaw, uapiSet } from '../../src/uapi/client.js';
import { formatGet } from '../../src/uapi/protocol.js';
import { serveUapi } from '../../src/uapi/server.js';
import { makePair } from '../helpers/device.js';

/** The kernel's curve25519_clamp_secret, written out independently of crypto/x25519.ts. */
function kernelClamp(k: Uint8Array): Uint8Array {
  const c = k.slice();
  c[0] = c[0]! & 248;
  c[31] = (c[31]! & 127) | 64;
  return c;
}

/** `k` with every bit clamping clears set and the bit it sets cleared: the same scalar. */
function unclamp(k: Uint8Array): Uint8Array {
  const u = k.slice();
  u[0] = u[0]! | 7;
  u[31] = (u[31]! | 128) & ~64;
  return u;
}

const device = () => new Device({ sinks: { sendDatagram() {}, writePacket() {} } });

describe('private key clamping', () => {
  it('stores and reports a key clamped; the public key is that of the key as given', () => {
    for (const raw of [new Uint8Array(32).fill(0xff), Uint8Array.from({ length: 32 }, (_, i) => i * 37 + 1), unclamp(new Uint8Array(32).fill(0x5a))]) {
      const d = device();
      d.apply({ privateKey: raw, peers: [] });
      const want = kernelClamp(raw);
      expect(d.status().privateKey).toEqual(want);
      expect(d.publicKey).toEqual(publicKey(raw));
      expect(d.publicKey).toEqual(publicKey(want));
      expect(encodeHexKey(d.status().privateKey!)).not.toBe(encodeHexKey(raw));
      d.close();
    }
  });

  it('a clamped key is kept as it is; a key of only clamped-away bits is a key, all zeros is none', () => {
    const d = device();
    const clamped = clampPrivateKey(new Uint8Array(32).fill(0x33));
    d.apply({ privateKey: clamped, peers: [] });
    expect(d.status().privateKey).toEqual(clamped);
    const onlyClampedBits = new Uint8Array(32);
    onlyClampedBits[0] = 7;
    onlyClampedBits[31] = 128;
    d.apply({ privateKey: onlyClampedBits, peers: [] });
    expect(d.status().privateKey).toEqual(kernelClamp(onlyClampedBits)); // 0...0x40, as the kernel has it
    d.apply({ privateKey: new Uint8Array(32), peers: [] });
    expect(d.status().privateKey).toBeNull();
    d.close();
  });

  it('setting the unclamped form of the current key changes nothing: sessions stay up', () => {
    const p = makePair();
    p.a.sendPacket(p.aToB('first'));
    p.run(1000);
    expect(p.net.inbox(p.b).length).toBe(1);
    let initiations = 0;
    p.net.filter = (d) => {
      if (d.data[0] === 1) initiations++;
      return true;
    };
    p.a.apply({ privateKey: unclamp(p.ka.priv), peers: [] });
    expect(p.a.status().privateKey).toEqual(p.ka.priv);
    p.a.sendPacket(p.aToB('second'));
    p.run(1000);
    expect(p.net.inbox(p.b).length).toBe(2);
    expect(initiations).toBe(0);
  });

  it('over the UAPI: `wg set private-key` with an unclamped key reads back clamped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgts-clamp-'));
    const d = device();
    const server = await serveUapi(join(dir, 'wg.sock'), {
      get: () => formatGet(d.status()),
      set: (c) => {
        d.apply(c);
        return 0;
      },
    });
    try {
      const raw = 'ff'.repeat(32);
      expect(await uapiSet(server.path, [`private_key=${raw}`])).toBe(0);
      const text = await uapiGetRaw(server.path);
      expect(text).toContain(`private_key=f8${'ff'.repeat(30)}7f\n`);
      const info = await uapiGet(server.path);
      expect(info.publicKey).toEqual(publicKey(decodeHexKey(raw, 'k')));
    } finally {
      await server.close();
      d.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
