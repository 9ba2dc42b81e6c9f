/**
 * Interoperability with a real wireguard-go: our Device (in this process, on a node:dgram
 * socket at 127.0.0.1) handshakes and exchanges ICMP with the kernel behind wireguard-go,
 * whose TUN lives in a private network namespace. Each side initiates in turn, with and
 * without a preshared key; then cookies under load, each side in turn being the loaded one.
 */

import { createSocket, type Socket } from 'node:dgram';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase64Key } from '../../crypto/keys.js';
import { randomBytes } from '../../crypto/random.js';
import { generatePrivateKey, publicKey } from '../../crypto/x25519.js';
import { Device } from '../../noise/device.js';
import { parseCidr } from '../../noise/iptext.js';
import type { Endpoint } from '../../noise/types.js';
import { checksum, icmpEcho, ipv4Packet } from '../helpers/device.js';
import { runOk, waitUntil, which } from '../helpers/proc.js';
import { ip, WireguardGo, wg, wggoSkipReason } from '../helpers/wggo.js';

const SKIP = wggoSkipReason();

const OUR_ADDR = '10.77.0.2';
const THEIR_ADDR = '10.77.0.1';

interface Received {
  packet: Uint8Array;
}

describe.skipIf(SKIP !== null)(`interop with wireguard-go${SKIP ? ` (skipped: ${SKIP})` : ''}`, () => {
  let go!: WireguardGo;
  let sock: Socket;
  let ourPort = 0;
  let device: Device | null = null;
  let ticker: NodeJS.Timeout | null = null;
  const received: Received[] = [];

  beforeAll(async () => {
    // The last 256 KiB of its log (under a flood, wireguard-go logs a line per packet).
    go = await WireguardGo.start('iop', 'i', 262_144);
    await ip('-n', go.ns, 'link', 'set', 'lo', 'up');
    await ip('-n', go.ns, 'addr', 'add', `${THEIR_ADDR}/24`, 'dev', go.ifname);
    await ip('-n', go.ns, 'link', 'set', go.ifname, 'up');
    sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    ourPort = sock.address().port;
    sock.on('message', (msg, rinfo) => {
      const from: Endpoint = { address: rinfo.address, port: rinfo.port, family: 4 };
      device?.receiveDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), from);
    });
  }, 30_000);

  afterAll(async () => {
    if (ticker) clearInterval(ticker);
    device?.close();
    try {
      sock?.close();
    } catch {
      /* already closed */
    }
    await go?.stop();
  }, 30_000);

  /** Fresh keys on both sides (so each case starts without a session) and a fresh Device. */
  async function configure(withPsk: boolean, underLoad: boolean | 'auto' = 'auto'): Promise<{ theirPub: Uint8Array; ourPub: Uint8Array }> {
    if (ticker) clearInterval(ticker);
    device?.close();
    received.length = 0;
    const ourPriv = generatePrivateKey();
    const theirPriv = generatePrivateKey();
    const psk = withPsk ? randomBytes(32) : null;
    const ourPub = publicKey(ourPriv);
    const theirPub = publicKey(theirPriv);
    const conf = join(go.dir, 'wg.conf');
    writeFileSync(
      conf,
      [
        '[Interface]',
        `PrivateKey = ${encodeBase64Key(theirPriv)}`,
        '[Peer]',
        `PublicKey = ${encodeBase64Key(ourPub)}`,
        ...(psk ? [`PresharedKey = ${encodeBase64Key(psk)}`] : []),
        `AllowedIPs = ${OUR_ADDR}/32`,
        `Endpoint = 127.0.0.1:${ourPort}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    await wg('setconf', go.ifname, conf);
    rmSync(conf);
    const theirPort = Number((await wg('show', go.ifname, 'listen-port')).trim());
    expect(theirPort).toBeGreaterThan(0);

    device = new Device({
      underLoad,
      sinks: {
        sendDatagram: (data, to) => sock.send(Buffer.from(data), to.port, to.address),
        writePacket: (packet) => {
          const copy = packet.slice();
          received.push({ packet: copy });
          // Answer echo requests to our address, so a ping from the namespace succeeds.
          if (copy[9] === 1 && copy[20] === 8 && copy.subarray(16, 20).join('.') === OUR_ADDR) {
            const icmp = copy.slice(20);
            icmp[0] = 0;
            icmp[2] = icmp[3] = 0;
            const c = checksum(icmp);
            icmp[2] = c >>> 8;
            icmp[3] = c & 0xff;
            device!.sendPacket(ipv4Packet(OUR_ADDR, copy.subarray(12, 16).join('.'), icmp, 1));
          }
        },
      },
    });
    device.apply({
      privateKey: ourPriv,
      peers: [
        {
          publicKey: theirPub,
          presharedKey: psk,
          endpoint: { address: '127.0.0.1', port: theirPort, family: 4 },
          allowedIps: [parseCidr(`${THEIR_ADDR}/32`)],
        },
      ],
    });
    const d = device;
    ticker = setInterval(() => d.tick(), 50);
    return { theirPub, ourPub };
  }

  /** Send an ICMP echo request we built and verify the reply from the kernel behind wireguard-go. */
  async function pingThroughWireguardGo(seq: number): Promise<void> {
    const data = new TextEncoder().encode(`wireguard-ts interop ${seq} ${go.ifname}`);
    const ident = 0x4242;
    const sent = received.length;
    device!.sendPacket(icmpEcho(OUR_ADDR, THEIR_ADDR, ident, seq, data));
    const isReply = (p: Uint8Array) => p[9] === 1 && p[20] === 0 && ((p[24]! << 8) | p[25]!) === ident && ((p[26]! << 8) | p[27]!) === seq;
    await waitUntil(`echo reply ${seq} (wireguard-go log:\n${go.log.slice(-2000)})`, () => received.slice(sent).some((r) => isReply(r.packet)), 10_000, 20);
    const reply = received.slice(sent).find((r) => isReply(r.packet))!.packet;
    expect(reply[0]! >>> 4).toBe(4);
    expect(checksum(reply, 0, (reply[0]! & 15) * 4)).toBe(0);
    expect(reply.subarray(12, 16).join('.')).toBe(THEIR_ADDR);
    expect(reply.subarray(16, 20).join('.')).toBe(OUR_ADDR);
    expect(((reply[2]! << 8) | reply[3]!) === reply.length).toBe(true);
    const icmp = reply.subarray(20);
    expect(checksum(icmp)).toBe(0);
    expect(icmp.subarray(8)).toEqual(data);
  }

  for (const withPsk of [false, true]) {
    const label = withPsk ? 'with preshared key' : 'without preshared key';

    it(`we initiate, then ICMP echo is answered (${label})`, async () => {
      const { theirPub } = await configure(withPsk);
      await pingThroughWireguardGo(1);
      const st = device!.inspectPeer(theirPub)!;
      expect(st.currentIsInitiator).toBe(true);
      expect(device!.status().peers[0]!.lastHandshakeSec).toBeGreaterThan(0);
      await pingThroughWireguardGo(2);
      const drops = Object.entries(device!.drops).filter(([, n]) => n > 0);
      expect(drops).toEqual([]);
    });

    it(`wireguard-go initiates, then ICMP echo is answered (${label})`, async () => {
      const { theirPub } = await configure(withPsk);
      // A ping from the namespace makes wireguard-go initiate; we answer the echo ourselves.
      const ping = runOk(which('ip')!, ['netns', 'exec', go.ns, 'ping', '-c', '1', '-W', '5', OUR_ADDR], { timeoutMs: 15_000 });
      await ping;
      const st = device!.inspectPeer(theirPub)!;
      expect(st.currentIsInitiator).toBe(false);
      expect(received.some((r) => r.packet[9] === 1 && r.packet[20] === 8)).toBe(true);
      await pingThroughWireguardGo(3);
      // Byte counters agree with wireguard-go's (both count whole UDP payloads).
      let theirs: number[] = [];
      await waitUntil(
        'transfer counters to agree with wireguard-go',
        async () => {
          theirs = (await wg('show', go.ifname, 'transfer')).trim().split('\t').slice(1).map(Number);
          const ours = device!.status().peers[0]!;
          return theirs[0] === ours.txBytes && theirs[1] === ours.rxBytes;
        },
        5000,
        20,
      );
      expect(theirs[0]).toBeGreaterThan(148);
      expect(Object.entries(device!.drops).filter(([, n]) => n > 0)).toEqual([]);
    });
  }

  it('under load we answer with a cookie reply; wireguard-go retries with a valid mac2 and the handshake completes', async () => {
    const { theirPub } = await configure(false, true);
    // wireguard-go initiates; we answer with a cookie reply instead of a response. It keeps the
    // cookie and its next initiation (after REKEY_TIMEOUT, 5 s plus jitter) carries mac2.
    await runOk(which('ip')!, ['netns', 'exec', go.ns, 'ping', '-c', '1', '-W', '12', OUR_ADDR], { timeoutMs: 20_000 });
    expect(device!.stats.cookieRepliesOut).toBeGreaterThanOrEqual(1);
    expect(device!.drops['cookie-sent']).toBeGreaterThanOrEqual(1);
    expect(go.log).toMatch(/Receiving cookie response/);
    expect(device!.inspectPeer(theirPub)!.currentIsInitiator).toBe(false);
    expect(device!.stats.handshakesIn).toBeGreaterThanOrEqual(1);
    await pingThroughWireguardGo(4);
  }, 30_000);

  it('wireguard-go under load answers us with a cookie reply; our retry carries a valid mac2 and the handshake completes', async () => {
    const { theirPub } = await configure(false);
    const theirPort = Number((await wg('show', go.ifname, 'listen-port')).trim());
    // A flood of well-formed initiations (valid mac1, from a key wireguard-go does not know) from
    // 127.0.0.2: each costs it a Diffie-Hellman, so its handshake queue passes 512 messages and
    // it goes under load (for a second after each time it sees that), answering initiations that
    // lack a valid mac2 with cookie replies. Its rate limiter counts 127.0.0.2, not us.
    let initiation: Uint8Array | null = null;
    const flooderKey = generatePrivateKey();
    const flooder = new Device({
      sinks: {
        sendDatagram: (data) => {
          initiation ??= data.slice();
        },
        writePacket: () => {},
      },
    });
    flooder.apply({
      privateKey: flooderKey,
      peers: [{ publicKey: theirPub, endpoint: { address: '127.0.0.1', port: theirPort, family: 4 }, allowedIps: [parseCidr(`${THEIR_ADDR}/32`)] }],
    });
    flooder.sendPacket(icmpEcho(OUR_ADDR, THEIR_ADDR, 1, 1, new Uint8Array(8)));
    flooder.tick();
    flooder.close();
    expect(initiation).not.toBeNull();
    expect(initiation![0]).toBe(1);
    const flood = createSocket('udp4');
    await new Promise<void>((r) => flood.bind(0, '127.0.0.2', () => r()));
    let cookiesToFlooder = 0;
    let lastCookieToFlooder = 0;
    flood.on('message', (msg) => {
      if (msg[0] === 3 && msg.length === 64) {
        cookiesToFlooder++;
        lastCookieToFlooder = Date.now();
      }
    });
    // Bursts of 2000 every 800 ms: each fills the queue past 512 (under load again before the
    // last time lapses), and none comes near its 4096 slots, where our own packets would be dropped.
    const burst = Buffer.from(initiation!);
    const sendBurst = () => {
      for (let i = 0; i < 2000; i++) flood.send(burst, theirPort, '127.0.0.1');
    };
    sendBurst();
    const flooding = setInterval(sendBurst, 800);
    try {
      await waitUntil('wireguard-go to go under load', () => cookiesToFlooder > 0, 10_000, 20);
      // Now we initiate: the answer is a cookie reply; our next initiation (REKEY_TIMEOUT, 5 s
      // plus jitter, later) carries mac2 computed from it, which wireguard-go checks under load.
      await pingThroughWireguardGo(5);
      const done = Date.now();
      expect(device!.stats.cookieRepliesIn).toBeGreaterThanOrEqual(1);
      expect(device!.drops['invalid-cookie-reply'] ?? 0).toBe(0);
      expect(device!.inspectPeer(theirPub)!.currentIsInitiator).toBe(true);
      // wireguard-go was still under load when it accepted our retry.
      expect(done - lastCookieToFlooder).toBeLessThan(1000);
    } finally {
      clearInterval(flooding);
      flood.close();
    }
  }, 40_000);
});
