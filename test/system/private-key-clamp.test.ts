/**
 * `wg set private-key` with a key that is not clamped: our daemon stores and shows it clamped,
 * as the kernel does (noise.c clamps static_private; netlink.c reports it), so `wg show` and
 * `wg showconf` print what they would print for the kernel. wireguard-go does the same (its
 * UAPI parser clamps: noise-helpers.go FromMaybeZeroHex); checked too, side by side. The
 * public key is the same everywhere: X25519 clamps anyway.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Namespaces, nsRun, skipReason } from '../helpers/netns.js';
import { runOk as run, WG_TS, which } from '../helpers/proc.js';

const skip = skipReason('wg');

/** A base64 key with every bit clamping changes set the wrong way, and its clamped form. */
function unclampedKey(): { raw: string; clamped: string } {
  const k = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) k[i] = (i * 53 + 7) & 0xff;
  k[0] = k[0]! | 7;
  k[31] = (k[31]! | 0x80) & ~0x40;
  const c = Buffer.from(k);
  c[0] = c[0]! & 248;
  c[31] = (c[31]! & 127) | 64;
  return { raw: k.toString('base64'), clamped: c.toString('base64') };
}

describe.skipIf(skip)(`private key clamping, shown by wg${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const nss = new Namespaces();
  const dir = mkdtempSync(join(tmpdir(), 'wgts-clamp-'));
  const sockets: string[] = [];
  afterAll(async () => {
    await nss.cleanup();
    for (const s of sockets) rmSync(s, { force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  const key = unclampedKey();
  const keyFile = join(dir, 'raw.key');
  writeFileSync(keyFile, `${key.raw}\n`, { mode: 0o600 });

  async function shown(program: string, prefix: string): Promise<{ priv: string; pub: string; conf: string }> {
    const ns = await nss.add(prefix);
    const ifname = `${prefix}${nss.tag}`;
    sockets.push(`/var/run/wireguard/${ifname}.sock`);
    const env: NodeJS.ProcessEnv = { ...process.env, WG_HIDE_KEYS: 'never' };
    delete env.LOG_LEVEL;
    await nsRun(ns, program, [ifname], { env });
    await nsRun(ns, 'wg', ['set', ifname, 'private-key', keyFile]);
    const priv = (await nsRun(ns, 'wg', ['show', ifname, 'private-key'], { env })).stdout.trim();
    const pub = (await nsRun(ns, 'wg', ['show', ifname, 'public-key'], { env })).stdout.trim();
    const conf = (await nsRun(ns, 'wg', ['showconf', ifname], { env })).stdout;
    return { priv, pub, conf };
  }

  it('wireguard-ts shows the key clamped, as the kernel would; the public key is that of the key as given', async () => {
    const wantPub = (await run('wg', ['pubkey'], { input: `${key.raw}\n` })).stdout.trim();
    expect(key.clamped).not.toBe(key.raw);
    const ours = await shown(WG_TS, 'kc');
    expect(ours.priv).toBe(key.clamped);
    expect(ours.conf).toContain(`PrivateKey = ${key.clamped}\n`);
    expect(ours.pub).toBe(wantPub);
    expect((await run('wg', ['pubkey'], { input: `${key.clamped}\n` })).stdout.trim()).toBe(wantPub);
  });

  it.skipIf(!which('wireguard-go'))('wireguard-go shows the same clamped key', async () => {
    const go = await shown('/usr/bin/wireguard-go', 'kg');
    expect(go.priv).toBe(key.clamped);
    expect(go.conf).toContain(`PrivateKey = ${key.clamped}\n`);
    expect(go.pub).toBe((await run('wg', ['pubkey'], { input: `${key.raw}\n` })).stdout.trim());
  });
});
