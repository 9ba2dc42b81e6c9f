/**
 * A routing loop, and what it costs (root; a few seconds per implementation).
 *
 *   node dist/bench/loop.js [--impl ts,go] [--pings 3] [--json]
 *
 * Two hosts joined by a veth pair, each a namespace with its daemon (UDP and device in the same
 * namespace). A has B's endpoint 192.168.61.2 inside B's allowed IPs (as AllowedIPs = 0.0.0.0/0
 * without wg-quick's policy rules does). Once the tunnel is up, the route to the endpoint is
 * pointed into A's own interface: A's datagrams to B now come back into A. Then a few 1400-byte
 * pings: each encrypted datagram exceeds the tunnel MTU, is fragmented into A's interface, and
 * every fragment would be encrypted again, and so on. The figure is what A's interface took in
 * (its TX counter: what the kernel handed the daemon) during the second after the pings, and
 * what went to B meanwhile (B's veth RX); with a loop guard, only the pings and the first lap.
 * Everything it creates is removed at the end.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Impl, inNs, Lab, PROGRAMS, sh, sleep } from './lab.js';

export interface LoopResult {
  impl: Impl;
  /** Bytes the kernel wrote into A's interface in the second after the pings. */
  loopedBytes: number;
  /** Bytes B's veth received in that second. */
  wireBytes: number;
  /** A's log (wireguard-ts only; LOG_LEVEL=error). */
  log: string;
}

async function linkBytes(ns: string, dev: string): Promise<{ rx: number; tx: number }> {
  const j = JSON.parse(await sh('ip', ['-n', ns, '-s', '-j', 'link', 'show', dev])) as Array<{ stats64: { rx: { bytes: number }; tx: { bytes: number } } }>;
  return { rx: j[0]!.stats64.rx.bytes, tx: j[0]!.stats64.tx.bytes };
}

export async function measureLoop(impl: Impl, pings = 3): Promise<LoopResult> {
  const lab = new Lab('lp');
  try {
    const t = lab.tag;
    const nsA = await lab.ns('a');
    const nsB = await lab.ns('b');
    const [la, lb, wa, wb] = [`la${t}`, `lb${t}`, `wa${t}`, `wb${t}`];
    await sh('ip', ['link', 'add', la, 'netns', nsA, 'type', 'veth', 'peer', 'name', lb, 'netns', nsB]);
    await sh('ip', ['-n', nsA, 'addr', 'add', '192.168.61.1/24', 'dev', la]);
    await sh('ip', ['-n', nsB, 'addr', 'add', '192.168.61.2/24', 'dev', lb]);
    await sh('ip', ['-n', nsA, 'link', 'set', la, 'up']);
    await sh('ip', ['-n', nsB, 'link', 'set', lb, 'up']);
    const [kA, kB] = [await lab.key('a.key'), await lab.key('b.key')];
    const log = join(lab.tmp, 'a.log');
    await lab.daemon(PROGRAMS[impl], wa, nsA, nsA, impl === 'ts' ? { log } : {});
    await lab.daemon(PROGRAMS.ts, wb, nsB, nsB);
    const wg = (ns: string, ...a: string[]) => inNs(ns, 'wg', a);
    await wg(
      nsA,
      'set',
      wa,
      'private-key',
      kA.file,
      'listen-port',
      '51000',
      'peer',
      kB.pub,
      'endpoint',
      '192.168.61.2:51001',
      'allowed-ips',
      '10.61.0.2/32,192.168.61.2/32',
    );
    await wg(nsB, 'set', wb, 'private-key', kB.file, 'listen-port', '51001', 'peer', kA.pub, 'endpoint', '192.168.61.1:51000', 'allowed-ips', '10.61.0.1/32');
    for (const [ns, dev, addr] of [
      [nsA, wa, '10.61.0.1/24'],
      [nsB, wb, '10.61.0.2/24'],
    ] as const) {
      await sh('ip', ['-n', ns, 'addr', 'add', addr, 'dev', dev]);
      await sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    await sleep(2500); // the JIT warm-up
    await inNs(nsA, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', '10.61.0.2']);
    // The loop: the endpoint routed into A's own interface.
    await sh('ip', ['-n', nsA, 'route', 'add', '192.168.61.2/32', 'dev', wa]);
    const a0 = await linkBytes(nsA, wa);
    const b0 = await linkBytes(nsB, lb);
    await inNs(nsA, 'ping', ['-c', String(pings), '-i', '0.01', '-s', '1400', '-W', '1', '10.61.0.2']).catch(() => '');
    await sleep(1000);
    const a1 = await linkBytes(nsA, wa);
    const b1 = await linkBytes(nsB, lb);
    await sh('ip', ['-n', nsA, 'route', 'del', '192.168.61.2/32', 'dev', wa]).catch(() => '');
    let text = '';
    try {
      text = readFileSync(log, 'utf8');
    } catch {
      /* not ours */
    }
    return { impl, loopedBytes: a1.tx - a0.tx, wireBytes: b1.rx - b0.rx, log: text };
  } finally {
    await lab.cleanup();
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('loop: needs root (namespaces, TUN devices)\n');
    process.exit(1);
  }
  const i = process.argv.indexOf('--impl');
  const impls = (i >= 0 ? (process.argv[i + 1] ?? '') : 'ts,go').split(',') as Impl[];
  for (const m of impls) if (!(m in PROGRAMS)) throw new Error(`unknown --impl '${m}' (ts, go)`);
  const p = process.argv.indexOf('--pings');
  const pings = p >= 0 ? Number(process.argv[p + 1]) : 3;
  const results: LoopResult[] = [];
  for (const m of impls) results.push(await measureLoop(m, pings));
  if (process.argv.includes('--json')) console.log(JSON.stringify(results, null, 1));
  else
    for (const r of results)
      console.log(`${r.impl}: ${(r.loopedBytes / 1e6).toFixed(3)} MB looped through the interface in 1 s, ${(r.wireBytes / 1e6).toFixed(3)} MB to the peer`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`loop: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
