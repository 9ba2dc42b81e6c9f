/**
 * The JIT warm-up only pays if V8 keeps what it optimized when real traffic arrives (see the
 * header of src/warmup.ts; test/unit/warmup-jit.test.ts checks it in memory). Here, as root,
 * two real daemons under --trace-opt/--trace-deopt and the benchmark's pings: nothing on the
 * daemon's path may be compiled, invalidated or deoptimized from the end of the warm-up's
 * traffic (its garbage collection included) to the last ping.
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DAEMON_PATH, DAEMON_WATCHED, missingFrom } from '../helpers/jit.js';
import { nsRun, skipReason } from '../helpers/netns.js';
import { ROOT, WG_TS, waitUntil } from '../helpers/proc.js';
import { type Impl, Pair, startDaemonIn } from '../helpers/tunnel.js';

const built = existsSync(join(ROOT, 'dist', 'src', 'warmup.js'));

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
      `#!/bin/sh\nLOG_LEVEL=verbose exec stdbuf -oL -eL ${JSON.stringify(process.execPath)} --trace-opt --trace-turbo-inlining --trace-deopt ${JSON.stringify(WG_TS)} -f "$1" >"${this.tmp}/$1.log" 2>&1 </dev/null &\n`,
      { mode: 0o700 },
    );
    return startDaemonIn(this.ns0, wrapper, ifname, ns);
  }
}

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
      await waitUntil('the warm-up to finish', () => logs.every((f) => existsSync(f) && readFileSync(f, 'utf8').includes('JIT warm-up took')), 20_000);
      // The traces work: the warm-up had V8 optimize (or inline) every watched function, so
      // silence below means something, and a renamed function fails here.
      for (const f of logs) {
        const log = readFileSync(f, 'utf8');
        expect(missingFrom(log.slice(0, log.indexOf('JIT warm-up took')), DAEMON_WATCHED)).toEqual([]);
      }
      // From the end of the warm-up's traffic (its garbage collection included): the handshake, then the measured pings.
      await nsRun(pair.a.ns, 'ping', ['-c', '1', '-W', '2', pair.b.v4], { timeoutMs: 10_000 });
      const { stdout } = await nsRun(pair.a.ns, 'ping', ['-c', '20', '-i', '0.05', '-W', '1', pair.b.v4], { timeoutMs: 20_000 });
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
