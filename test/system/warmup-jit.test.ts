/**
 * The JIT warm-up only pays if V8 keeps what it optimized when real traffic arrives (see the
 * header of src/warmup.ts). This runs the compiled warm-up in a child Node with --trace-deopt,
 * then traffic shaped like the daemon's (its own sink closures, endpoints from the UDP layer's
 * factory, IPv4 pings), and fails if any data-path function is deoptimized meanwhile: a change
 * of object shapes or call sites that would quietly put the per-packet path back into slow code.
 * Then, as root, two real daemons under --trace-opt/--trace-deopt and the benchmark's pings:
 * nothing on the daemon's path may be compiled, invalidated or deoptimized from the end of the
 * warm-up's traffic (its garbage collection included) to the last ping.
 */

import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nsRun, skipReason, WG_TS, waitFor } from '../helpers/netns.js';
import { type Impl, Pair, startDaemonIn } from '../helpers/tunnel.js';

const dist = fileURLToPath(new URL('../../dist/', import.meta.url));
const built = existsSync(`${dist}src/warmup.js`);

const script = `
const d = ${JSON.stringify(dist)};
const { warmUp } = await import(d + 'src/warmup.js');
const { Device } = await import(d + 'noise/device.js');
const { parseCidr } = await import(d + 'noise/iptext.js');
const { endpointOf } = await import(d + 'noise/types.js');
const { createLogger } = await import(d + 'src/log.js');
const { generatePrivateKey, publicKey } = await import(d + 'crypto/x25519.js');
const { selectSuite } = await import(d + 'tun/openssl.js');
const crypto = selectSuite(undefined);
await warmUp({ udpRounds: 0, crypto });
await new Promise((r) => setTimeout(r, 300));
console.log('--- traffic');
const keys = [generatePrivateKey(), generatePrivateKey()];
const eps = [endpointOf('127.0.0.1', 10000, 4, '127.0.0.1', 1), endpointOf('127.0.0.1', 20000, 4, '127.0.0.1', 1)];
const queue = [];
let delivered = 0;
const logger = createLogger('error', '(t) ');
const devices = [0, 1].map((i) => new Device({ logger, crypto, mtu: 1420, sinks: {
  sendDatagram: (data) => { queue.push([1 - i, data.slice()]); },
  writePacket: () => { delivered++; },
} }));
devices.forEach((dev, i) => dev.apply({ privateKey: keys[i], peers: [{ publicKey: publicKey(keys[1 - i]), endpoint: eps[1 - i], allowedIps: [parseCidr('192.168.241.' + (2 - i) + '/32')] }] }));
const { ipv4Packet } = await import(d + 'noise/packets.js');
const ping = (s, t) => ipv4Packet('192.168.241.' + s, '192.168.241.' + t, 64, 1);
const drain = () => { for (let it = queue.shift(); it; it = queue.shift()) { devices[it[0]].receiveDatagram(it[1], eps[1 - it[0]]); devices[it[0]].tick(); } };
for (let i = 0; i < 40; i++) {
  devices[0].sendPacket(ping(1, 2)); devices[0].tick(); drain();
  devices[1].sendPacket(ping(2, 1)); devices[1].tick(); drain();
  await new Promise((r) => setTimeout(r, 2));
}
console.log('delivered', delivered);
`;

/** Functions on the per-packet path (Device, Peer, keypairs, replay, routing, crypto wrappers). */
const DATA_NAMES =
  'sendPacket|receiveDatagram|receiveTransport|transmit|send|encryptAndTransmit|tick|lookup|ipFamily|innerPacketLength|canSend|canReceive|update|seal|open|counterNonce|dataSent|dataReceived|keepKeyFreshSending|keepKeyFreshReceiving|rxView|txBuffer|txSealView|paddingFor|writeTransportHeader';
/** The same, plus the daemon's glue and the TUN and UDP layers (src/daemon.ts, tun/tun.ts, tun/udp.ts). */
const DAEMON_NAMES = `${DATA_NAMES}|afterBatch|#?onBatch|flush|#?endpoint|updateEndpoint|sendDatagram|writePacket|write|onTimer|scheduleTick`;
/** A --trace-opt/--trace-deopt line about one of `names` (bailouts and markings name a JSFunction, invalidations a SharedFunctionInfo). */
const about = (names: string) => new RegExp(`<(?:JSFunction|SharedFunctionInfo) (?:${names})[ >]`);
const DATA_PATH = about(DATA_NAMES);
const DAEMON_PATH = about(DAEMON_NAMES);

const skipDaemon = !built ? 'needs the build (npm ci)' : skipReason('wg', 'ping', 'stdbuf');

/** A Pair whose bin/wireguard-ts daemons run in the foreground under --trace-opt/--trace-deopt, logging to files. */
class TracedPair extends Pair {
  log(ifname: string): string {
    return join(this.tmp, `${ifname}.log`);
  }

  override startDaemon(_impl: Impl, ifname: string, ns: string): Promise<void> {
    const wrapper = join(this.tmp, 'traced-wireguard-ts');
    // stdbuf: V8 prints its traces through C stdio, which would otherwise buffer them out of order.
    writeFileSync(
      wrapper,
      `#!/bin/sh\nLOG_LEVEL=verbose exec stdbuf -oL -eL ${JSON.stringify(process.execPath)} --trace-opt --trace-deopt ${JSON.stringify(WG_TS)} -f "$1" >"${this.tmp}/$1.log" 2>&1 </dev/null &\n`,
      { mode: 0o700 },
    );
    return startDaemonIn(this.ns0, wrapper, ifname, ns);
  }
}

describe('JIT warm-up', () => {
  it.skipIf(!built)(
    'leaves optimized data-path code that real-shaped traffic does not throw away',
    async () => {
      const out = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ['--trace-deopt', '--input-type=module', '-e', script], { timeout: 60_000, maxBuffer: 64 << 20 }, (err, stdout) =>
          err ? reject(err) : resolve(stdout),
        ),
      );
      const after = out.slice(out.indexOf('--- traffic'));
      expect(after).toMatch(/delivered 80\b/);
      const deopts = after.split('\n').filter((l) => l.includes('bailout') && DATA_PATH.test(l));
      expect(deopts).toEqual([]);
    },
    90_000,
  );
});

describe.skipIf(skipDaemon)(`JIT warm-up in the daemon${skipDaemon ? ` (skipped: ${skipDaemon})` : ''}`, () => {
  // As the tunnel benchmark does: two daemons, then 20 pings 50 ms apart once they are warm.
  // A function V8 optimizes only now was left just short of its tier-up budget by the warm-up:
  // its compile (5-30 ms on a background thread) lands in the middle of the pings, and on two
  // cores it showed as one 4-12 ms ping in every run. A deopt throws optimized code away.
  it("leaves nothing on the daemon's per-packet path for V8 to optimize or throw away under pings", async () => {
    const pair = new TracedPair();
    try {
      await pair.setup();
      const logs = [pair.a.ifname, pair.b.ifname].map((n) => pair.log(n));
      await waitFor('the warm-up to finish', () => logs.every((f) => existsSync(f) && readFileSync(f, 'utf8').includes('JIT warm-up took')), 20_000);
      // The traces work (the warm-up had V8 optimize the data path), so silence below means something.
      for (const f of logs)
        expect(
          readFileSync(f, 'utf8')
            .split('\n')
            .some((l) => l.startsWith('[marking 0x') && DAEMON_PATH.test(l)),
        ).toBe(true);
      // From the end of the warm-up's traffic (its garbage collection included): the handshake, then the measured pings.
      await nsRun(pair.a.ns, 'ping', ['-c', '1', '-W', '2', pair.b.v4], { timeout: 10_000 });
      const { stdout } = await nsRun(pair.a.ns, 'ping', ['-c', '20', '-i', '0.05', '-W', '1', pair.b.v4], { timeout: 20_000 });
      expect(stdout).toMatch(/20 received/);
      const events = logs.flatMap((f) => {
        const log = readFileSync(f, 'utf8');
        return log
          .slice(log.indexOf('JIT warm-up took'))
          .split('\n')
          .filter((l) => (l.startsWith('[marking 0x') || l.startsWith('[marking dependent code') || l.includes('bailout')) && DAEMON_PATH.test(l))
          .map((l) => l.slice(0, 160));
      });
      expect(events).toEqual([]);
    } finally {
      await pair.cleanup();
    }
  }, 60_000);
});
