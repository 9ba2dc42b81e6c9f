/**
 * TUN read strategies, packets/s (docs/IO.md has the figures and the reasoning).
 *
 *   node dist/bench/io.js [--seconds 2] [--sizes 64,1400]
 *   KOFFI_DIR=/some/dir/node_modules   adds the koffi variant (koffi is never a dependency:
 *                                      npm install --prefix /some/dir koffi)
 *
 * A TUN device is created and moved into a fresh network namespace (held by an
 * `unshare --net sleep` child, killed at the end: nothing is left behind). A child process floods
 * it from inside the namespace with UDP datagrams routed into the TUN (sendmmsg, 64 a call),
 * while this process reads the TUN with each strategy in turn:
 *   fs.read      one fs.read per packet: a libuv thread-pool job each (1 and 4 in flight)
 *   addon        the addon: uv_poll_t + read() until EAGAIN, up to 128 packets per JS call
 *   koffi        koffi's synchronous read() in a loop until EAGAIN, re-armed by setImmediate
 *                (koffi cannot hook an fd into libuv: no readiness, so it has to poll)
 * Needs root; takes about (strategies x sizes x seconds) seconds.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { read as fsRead } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { native, POLL_TUN } from '../tun/addon.js';
import * as ipx from '../tun/ip.js';
import { Tun } from '../tun/tun.js';
import { UdpBind } from '../tun/udp.js';

const TUN_NAME = 'wgbench0';
const TUN_ADDR = '10.201.0.1/24';
const SINK = '10.201.0.2';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Child mode: flood SINK through the TUN from inside the namespace until killed. */
async function generator(pid: number, size: number): Promise<void> {
  const bind = UdpBind.open(0, { netnsPid: pid });
  const payload = new Uint8Array(size);
  const to = { address: SINK, port: 9, family: 4 as const };
  for (;;) {
    for (let i = 0; i < 64; i++) bind.send(payload, to);
    bind.flush();
    // Yield now and then so the SIGTERM handler (default: exit) is not starved.
    if ((bind.stats.txDatagrams & 0xffff) < 64) await new Promise((r) => setImmediate(r));
  }
}

interface Strategy {
  name: string;
  /** Starts reading; calls `count(n)` for packets read; returns a stop function. */
  run(tun: Tun, count: (n: number) => void): () => void;
}

const fsReadStrategy = (inflight: number): Strategy => ({
  name: `fs.read x${inflight} (thread pool)`,
  run(tun, count) {
    let stopped = false;
    for (let k = 0; k < inflight; k++) {
      const buf = Buffer.alloc(65535);
      const onPacket = (_p: Uint8Array): void => count(1);
      const again = (): void => {
        if (stopped) return;
        fsRead(tun.fd, buf, 0, buf.length, null, (err, n) => {
          if (err) {
            // The fd is non-blocking (as the daemon needs it): EAGAIN when the queue is empty.
            if (!stopped) setImmediate(again);
            return;
          }
          if (n > 0) onPacket(buf.subarray(0, n));
          again();
        });
      };
      again();
    }
    return () => {
      stopped = true;
    };
  },
});

const addonStrategy: Strategy = {
  name: 'addon (uv_poll, batched)',
  run(tun, count) {
    let n = 0;
    tun.start(
      () => n++,
      () => {
        count(n);
        n = 0;
      },
    );
    return () => tun.stop();
  },
};

/** The addon with one packet per wake-up and JS call: what batching saves. */
const addonUnbatched: Strategy = {
  name: 'addon, 1 packet per JS call',
  run(tun, count) {
    const addon = native();
    const buf = new Uint8Array(65536);
    const meta = new Int32Array(2);
    const onPacket = (_p: Uint8Array): void => count(1);
    const h = addon.pollStart(tun.fd, POLL_TUN, buf, meta, 1, (n) => {
      if (n === 1) onPacket(buf.subarray(meta[0]!, meta[0]! + meta[1]!));
    });
    return () => addon.pollStop(h);
  },
};

interface Koffi {
  load(lib: string): { func(decl: string): (...a: unknown[]) => number };
  errno(): number;
}

function koffiStrategy(dir: string): Strategy {
  const koffi = createRequire(dir.endsWith('/') ? dir : dir + '/')('koffi') as Koffi;
  const read = koffi.load('libc.so.6').func('long read(int, _Out_ uint8_t *buf, size_t)');
  return {
    name: 'koffi read() loop + setImmediate',
    run(tun, count) {
      let stopped = false;
      const buf = Buffer.alloc(65535);
      let seen = 0;
      const onPacket = (_p: Uint8Array): void => {
        seen++;
      };
      const loop = (): void => {
        if (stopped) return;
        // The same per-packet work as the addon's Tun.start: a view handed to a callback.
        for (let i = 0; i < 128; i++) {
          const n = read(tun.fd, buf, buf.length);
          if (n <= 0) break;
          onPacket(buf.subarray(0, n));
        }
        count(seen);
        seen = 0;
        setImmediate(loop);
      };
      setImmediate(loop);
      return () => {
        stopped = true;
      };
    },
  };
}

function tunCounters(pid: number): { tx: number; dropped: number } {
  const j = JSON.parse(ipx.ip(['-s', '-j', 'link', 'show', 'dev', TUN_NAME], { netnsPid: pid })) as {
    stats64?: { tx?: { packets?: number; dropped?: number } };
  }[];
  const tx = j[0]?.stats64?.tx;
  return { tx: tx?.packets ?? 0, dropped: tx?.dropped ?? 0 };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--gen') return generator(Number(process.argv[3]), Number(process.argv[4]));
  if (process.getuid?.() !== 0) throw new Error('bench/io needs root (TUN, namespaces)');
  const seconds = Number(arg('--seconds', '2'));
  const sizes = arg('--sizes', '64,1400').split(',').map(Number);
  const strategies: Strategy[] = [fsReadStrategy(1), fsReadStrategy(4), addonUnbatched, addonStrategy];
  if (process.env.KOFFI_DIR) strategies.push(koffiStrategy(process.env.KOFFI_DIR));

  const holder = spawn('/usr/bin/unshare', ['--net', '--', '/bin/sleep', '600'], { stdio: 'ignore' });
  const children: ChildProcess[] = [holder];
  let tun: Tun | undefined;
  try {
    const pid = holder.pid!;
    const self = ipx.netnsInode('self');
    for (let i = 0; i < 200 && ipx.netnsInode(pid) === self; i++) await sleep(10);
    tun = Tun.create(TUN_NAME, { netnsPid: pid, offload: false }); // plain reads: this measures read strategies
    ipx.addrAdd(TUN_NAME, TUN_ADDR, { netnsPid: pid });
    ipx.ip(['link', 'set', 'dev', TUN_NAME, 'txqueuelen', '1000'], { netnsPid: pid });
    ipx.linkSetUp(TUN_NAME, { netnsPid: pid });
    void native(); // loaded before timing
    console.log(`TUN read, ${seconds} s per run, flood of UDP payloads of <size> bytes from a second process (2 cores in all)`);
    console.log('size  strategy                              read pkt/s   offered pkt/s  dropped pkt/s  reader CPU');
    for (const size of [0, ...sizes]) {
      for (const s of strategies) {
        // size 0: no flood at all, to see what each strategy costs while the tunnel is idle.
        const gen = size === 0 ? null : spawn(process.execPath, [fileURLToPath(import.meta.url), '--gen', String(pid), String(size)], { stdio: 'inherit' });
        if (gen) children.push(gen);
        await sleep(300); // flood established
        let read = 0;
        const c0 = tunCounters(pid);
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const stop = s.run(tun, (n) => (read += n));
        await sleep(seconds * 1000);
        stop();
        const dt = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        const perPkt = read >= 100 ? `${((cpu.user + cpu.system) / read).toFixed(2).padStart(6)} us/pkt` : '     - us/pkt';
        const c1 = tunCounters(pid);
        if (gen) {
          gen.kill('SIGKILL');
          await new Promise((r) => gen.once('exit', r));
        }
        await sleep(100);
        const rate = (x: number): string => String(Math.round(x / dt)).padStart(12);
        console.log(
          `${size === 0 ? 'idle' : String(size).padStart(4)}  ${s.name.padEnd(36)}${rate(read)}    ${rate(c1.tx + c1.dropped - c0.tx - c0.dropped)}   ${rate(c1.dropped - c0.dropped)}  ${perPkt} (${Math.round(((cpu.user + cpu.system) / 1e6 / dt) * 100)}% of a core)`,
        );
      }
    }
  } finally {
    tun?.close();
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
