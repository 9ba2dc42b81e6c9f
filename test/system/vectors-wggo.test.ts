/**
 * The published test vectors against a real wireguard-go: configured with a vector's
 * responder key, initiator key and preshared key, a fresh wireguard-go accepts the vector's
 * initiation bytes (sent from a UDP socket on 127.0.0.1) and answers with a response that the
 * vector's initiator state authenticates, computed by the independent transcription in
 * test/helpers/whitepaper.ts; a keepalive under the derived keys then completes the handshake
 * on wireguard-go's side (`wg show` reports it). The same initiation with one byte of its
 * encrypted static key changed (mac1 recomputed) gets no answer. wireguard-go's TUN lives in
 * a private network namespace; its UDP socket on the loopback of the test's namespace.
 */

import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_OUT } from '../../src/vectors/command.js';
import type { HandshakeVector, VectorFile } from '../../src/vectors/format.js';
import { sleep, waitUntil } from '../helpers/proc.js';
import { ip, WireguardGo, wg, wggoSkipReason } from '../helpers/wggo.js';
import { AEAD, concat, H, le32, le64, MAC, refConsumeResponse, refInitiation } from '../helpers/whitepaper.js';

const SKIP = wggoSkipReason();

const DOC = JSON.parse(readFileSync(DEFAULT_OUT, 'utf8')) as VectorFile;
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const b64 = (h: string): string => Buffer.from(h, 'hex').toString('base64');

describe.skipIf(SKIP !== null)(`test vectors against wireguard-go${SKIP ? ` (skipped: ${SKIP})` : ''}`, () => {
  let go!: WireguardGo;
  let sock: Socket | null = null;
  let ourPort = 0;
  const inbox: Uint8Array[] = [];

  beforeAll(async () => {
    go = await WireguardGo.start('vec', 'v', 65_536);
    await ip('-n', go.ns, 'link', 'set', go.ifname, 'up');
    const s = createSocket('udp4');
    sock = s;
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    ourPort = s.address().port;
    s.on('message', (msg) => inbox.push(new Uint8Array(msg)));
  }, 30_000);

  afterAll(async () => {
    try {
      sock?.close();
    } catch {
      /* already closed */
    }
    await go?.stop();
  }, 30_000);

  /** Configure wireguard-go as the vector's responder with a fresh peer (no timestamp seen); returns its port. */
  async function becomeResponder(h: HandshakeVector): Promise<number> {
    const conf = join(go.dir, 'wg.conf');
    const psk = h.inputs.Q === '00'.repeat(32) ? [] : [`PresharedKey = ${b64(h.inputs.Q)}`];
    writeFileSync(
      conf,
      [
        '[Interface]',
        `PrivateKey = ${b64(h.inputs['S_r^priv'])}`,
        '[Peer]',
        `PublicKey = ${b64(h.inputs['S_i^pub'])}`,
        ...psk,
        'AllowedIPs = 10.0.0.1/32',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    try {
      await wg('setconf', go.ifname, conf);
    } finally {
      rmSync(conf, { force: true });
    }
    const port = Number((await wg('show', go.ifname, 'listen-port')).trim());
    expect(port).toBeGreaterThan(0);
    return port;
  }

  function send(data: Uint8Array, port: number): Promise<void> {
    return new Promise((resolve, reject) => sock!.send(data, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
  }

  async function latestHandshake(pubHex: string): Promise<number> {
    const line = (await wg('show', go.ifname, 'latest-handshakes')).split('\n').find((l) => l.startsWith(b64(pubHex)));
    return line ? Number(line.split('\t')[1]) : 0;
  }

  for (const name of ['without-psk', 'with-psk']) {
    it(`${name}: wireguard-go accepts the vector's initiation and answers it; the handshake completes`, async () => {
      const h = DOC.handshakes.find((x) => x.name === name)!;
      const inp = h.inputs;
      const port = await becomeResponder(h);
      const init = bytes(h.initiation.bytes);
      const mac1key = (pub: string) => H(new TextEncoder().encode('mac1----'), bytes(pub));

      // Control: a changed encrypted static key (with mac1 made right again) is not answered.
      const bad = init.slice();
      bad[40]! ^= 1;
      bad.set(MAC(mac1key(inp['S_r^pub']), bad.subarray(0, 116)), 116);
      inbox.length = 0;
      await send(bad, port);
      await sleep(1000);
      expect(inbox, 'wireguard-go answered a corrupted initiation').toHaveLength(0);

      await send(init, port);
      await waitUntil(`wireguard-go's response (log:\n${go.log.slice(-2000)})`, () => inbox.some((m) => m[0] === 2), 10_000, 20);
      const resp = inbox.find((m) => m[0] === 2)!;
      expect(resp).toHaveLength(92);
      expect([...resp.subarray(1, 4)]).toEqual([0, 0, 0]);
      expect([...resp.subarray(8, 12)]).toEqual([...le32(inp.I_i)]);
      expect(resp.subarray(60, 76)).toEqual(MAC(mac1key(inp['S_i^pub']), resp.subarray(0, 60)));
      expect(resp.subarray(76, 92)).toEqual(new Uint8Array(16));

      const ref = refInitiation({
        sprivI: bytes(inp['S_i^priv']),
        spubR: bytes(inp['S_r^pub']),
        eprivI: bytes(inp['E_i^priv']),
        sender: inp.I_i,
        ms: inp.time.unixMilliseconds,
        cookie: null,
      });
      expect(ref.bytes).toEqual(init);
      const keys = refConsumeResponse(resp, { sprivI: bytes(inp['S_i^priv']), eprivI: bytes(inp['E_i^priv']), psk: bytes(inp.Q), C: ref.C, H: ref.H });
      expect(keys, "the vector's initiator could not authenticate wireguard-go's response").not.toBeNull();

      // wireguard-go's session is confirmed by our first transport message under the new keys.
      expect(await latestHandshake(inp['S_i^pub'])).toBe(0);
      const keepalive = concat(Uint8Array.of(4, 0, 0, 0), resp.subarray(4, 8), le64(0n), AEAD(keys!.send, 0n, new Uint8Array(0)));
      await send(keepalive, port);
      await waitUntil(
        `wireguard-go to confirm the session (log:\n${go.log.slice(-2000)})`,
        async () => (await latestHandshake(inp['S_i^pub'])) > 0,
        10_000,
        20,
      );
      const endpoint = (await wg('show', go.ifname, 'endpoints')).trim().split('\t')[1];
      expect(endpoint).toBe(`127.0.0.1:${ourPort}`);
    });
  }
});
