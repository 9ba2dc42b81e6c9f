/**
 * The JIT warm-up only pays if V8 keeps what it optimized when real traffic arrives (see the
 * header of src/warmup.ts). This runs the compiled warm-up in a child Node with --trace-deopt,
 * then traffic shaped like the daemon's (its own sink closures, endpoints from the UDP layer's
 * factory, IPv4 pings), and fails if any data-path function is deoptimized meanwhile: a change
 * of object shapes or call sites that would quietly put the per-packet path back into slow code.
 * All in memory; test/system/warmup-jit.test.ts does the same with two real daemons.
 */

import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DAEMON_WATCHED, DATA_PATH, DATA_WATCHED, defines, missingFrom } from '../helpers/jit.js';

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

describe('JIT warm-up', () => {
  it.skipIf(!built)('watches functions that exist: every watched name is still defined where the guards say', () => {
    const gone = DAEMON_WATCHED.filter((x) => !defines(readFileSync(`${dist}${x.file}`, 'utf8'), x.name)).map((x) => `${x.file}: ${x.name}`);
    expect(gone).toEqual([]);
    // The check itself: a name that is not there is found missing.
    expect(defines(readFileSync(`${dist}noise/device.js`, 'utf8'), 'sendPackets')).toBe(false);
  });

  it.skipIf(!built)(
    'leaves optimized data-path code that real-shaped traffic does not throw away',
    async () => {
      const out = await new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          ['--trace-opt', '--trace-turbo-inlining', '--trace-deopt', '--input-type=module', '-e', script],
          { timeout: 60_000, maxBuffer: 256 << 20 },
          (err, stdout) => (err ? reject(err) : resolve(stdout)),
        ),
      );
      // Every watched function was optimized (or inlined into what was) by the warm-up: a
      // renamed one is missing here instead of silently leaving the check below.
      expect(missingFrom(out.slice(0, out.indexOf('--- traffic')), DATA_WATCHED)).toEqual([]);
      const after = out.slice(out.indexOf('--- traffic'));
      expect(after).toMatch(/delivered 80\b/);
      const deopts = after.split('\n').filter((l) => l.includes('bailout') && DATA_PATH.test(l));
      expect(deopts).toEqual([]);
    },
    90_000,
  );
});
