/**
 * Issue 12's two UAPI reproductions against a real daemon, in a namespace of the test's own:
 *   1. one connection: "set=1" then 256 MiB of "a\n" lines and no blank line (crashed the
 *      daemon: Node aborted before the old 256 MiB request cap applied);
 *   2. four connections, each "set=1" then 16 MiB of "a=b" lines inside the open set (held
 *      ~750 MB, still held after they closed).
 * After each, the daemon must be alive, answer `wg show` within 1 s, its RSS be back within
 * 10 MB of where it started, and nothing of the attack be applied. A third attack holds valid
 * lines open until the limits drop them. The same attacks run against Debian's wireguard-go
 * when it is installed, for the figures (logged; nothing is asserted about wireguard-go).
 */
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Namespaces, nsPids, nsRun, skipReason } from '../helpers/netns.js';
import { pidAlive, sleep, WG_TS, which } from '../helpers/proc.js';
import { wgKeypair } from '../helpers/tunnel.js';
import { repeat, type Talk, talk } from '../helpers/uapi-session.js';

const skip = skipReason('wg');

/** VmRSS of `pid` in MB, or null if it is gone. */
function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Wait until RSS has moved less than 1 MB over 2 s (the warm-up and its collection are done). */
async function settledRss(pid: number, maxMs = 30_000): Promise<number> {
  const samples: number[] = [];
  const end = Date.now() + maxMs;
  for (;;) {
    const r = rssMb(pid);
    if (r === null) throw new Error(`daemon ${pid} is gone`);
    samples.push(r);
    const last = samples.slice(-9);
    if (last.length === 9 && Math.max(...last) - Math.min(...last) < 1) return r;
    if (Date.now() > end) return r;
    await sleep(250);
  }
}

/** Chunks of valid allowed_ip lines for peer `k`: 2800 lines (~73 KiB) each, `count` of them. */
function allowedIpChunks(k: number, count: number): () => Buffer | null {
  let i = 0;
  return () => {
    if (i >= count) return null;
    let t = i === 0 ? `public_key=${(k + 1).toString(16).padStart(2, '0').repeat(32)}\n` : '';
    for (let j = 0; j < 2800; j++) {
      const n = i * 2800 + j;
      t += `allowed_ip=10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}/32\n`;
    }
    i++;
    return Buffer.from(t);
  };
}

const ATTACKS: Record<string, (sock: string) => Promise<Talk[]>> = {
  'one connection, set=1 then 256 MiB of "a\\n"': async (sock) => [
    await talk(sock, ['set=1\n', repeat(Buffer.from('a\n'.repeat(32768)), 4096)], { timeoutMs: 60_000 }),
  ],
  'four connections, set=1 then 16 MiB of "a=b\\n" each': (sock) =>
    Promise.all([0, 1, 2, 3].map(() => talk(sock, ['set=1\n', repeat(Buffer.from('a=b\n'.repeat(16384)), 256)], { timeoutMs: 60_000 }))),
  // Not in the issue: valid lines, held open. Ours keeps each at 24 bytes an allowed IP until
  // the shared budget (64 MiB) refuses one, and drops the rest at the idle timeout (10 s);
  // wireguard-go applies every line as it arrives, so for it this is a real configuration.
  'six connections, set=1 then 716,800 valid allowed_ip lines each, left open': (sock) =>
    Promise.all([0, 1, 2, 3, 4, 5].map((k) => talk(sock, ['set=1\n', allowedIpChunks(k, 256)], { timeoutMs: 30_000 }))),
};

interface Figures {
  impl: string;
  attack: string;
  before: number;
  peak: number;
  after: number;
  answers: string[];
}

/** A daemon (ours or wireguard-go) for a fresh interface in namespace `ns`, configured by wg. */
async function startDaemon(ns: string, program: string, ifname: string, dir: string): Promise<number> {
  const env = { ...process.env };
  delete env.LOG_LEVEL;
  await nsRun(ns, program, [ifname], { env });
  const pids = nsPids(ns);
  expect(pids.length).toBe(1);
  const { privFile } = await wgKeypair(dir, `${ifname}.key`);
  const { pub } = await wgKeypair(dir, `${ifname}.peer`);
  await nsRun(ns, 'wg', ['set', ifname, 'private-key', privFile, 'listen-port', '0', 'peer', pub, 'allowed-ips', '10.9.0.2/32', 'endpoint', '127.0.0.1:9']);
  await nsRun(ns, 'ip', ['link', 'set', ifname, 'up']);
  return pids[0]!;
}

/** Run each attack against the daemon `pid` serving `ifname`, with the checks for ours when `check`. */
async function attackAll(impl: string, ns: string, ifname: string, pid: number, check: boolean): Promise<Figures[]> {
  const sock = `/var/run/wireguard/${ifname}.sock`;
  const out: Figures[] = [];
  for (const [attack, run] of Object.entries(ATTACKS)) {
    const before = await settledRss(pid);
    let peak = before;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, rssMb(pid) ?? 0);
        await sleep(50);
      }
    })();
    const results = await run(sock);
    sampling = false;
    await sampler;
    // Back within 10 MB of the start: allowed up to 30 s to get there. The garbage goes back
    // to the system when V8's memory reducer runs, which takes longer on a busy machine (the
    // suite runs files in parallel: once 10 s were not enough, at 94.7 MB against 70.9).
    let after = rssMb(pid);
    for (let i = 0; i < 120 && after !== null && after > before + 10; i++) {
      await sleep(250);
      after = rssMb(pid);
    }
    const f: Figures = {
      impl,
      attack,
      before,
      peak,
      after: after ?? Number.NaN,
      answers: results.map((r) => `${r.text.trim() || '(none)'} after ${(r.sent / 2 ** 20).toFixed(1)} MiB (${r.how})`),
    };
    out.push(f);
    console.log(
      `${impl}: ${attack}: RSS ${before.toFixed(1)} MB before, ${peak.toFixed(1)} MB peak, ${f.after.toFixed(1)} MB after; answers: ${f.answers.join('; ')}`,
    );
    if (!check) continue;
    expect(pidAlive(pid), `${attack}: the daemon is alive`).toBe(true);
    const shown = await nsRun(ns, 'wg', ['show', ifname], { timeoutMs: 1000 });
    expect(shown.stdout).toContain(`interface: ${ifname}`);
    expect(after, `${attack}: RSS back within 10 MB`).not.toBeNull();
    expect(after!, `${attack}: RSS back within 10 MB`).toBeLessThanOrEqual(before + 10);
    for (const r of results) expect(r.text, attack).toMatch(/^errno=-\d+\n\n$/);
    expect(JSON.parse((await nsRun(ns, 'ip', ['-j', 'link', 'show', ifname])).stdout)[0].ifname).toBe(ifname);
    const peers = (await nsRun(ns, 'wg', ['show', ifname, 'peers'])).stdout.trim().split('\n');
    expect(peers.length, `${attack}: nothing of it applied`).toBe(1);
  }
  return out;
}

describe.skipIf(skip)(`UAPI attacks of issue 12 against a real daemon${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const nss = new Namespaces();
  const dirs: string[] = [];
  const sockets: string[] = [];
  afterAll(async () => {
    await nss.cleanup();
    for (const s of sockets) rmSync(s, { force: true });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function fresh(prefix: string): Promise<{ ns: string; ifname: string; dir: string }> {
    const ns = await nss.add(prefix);
    const ifname = `${prefix}${nss.tag}`;
    sockets.push(`/var/run/wireguard/${ifname}.sock`);
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'wgts-attack-'));
    dirs.push(dir);
    return { ns, ifname, dir };
  }

  it('wireguard-ts survives both, answers wg show within 1 s, and its RSS comes back within 10 MB', { timeout: 240_000 }, async () => {
    const { ns, ifname, dir } = await fresh('at');
    const pid = await startDaemon(ns, WG_TS, ifname, dir);
    await attackAll('wireguard-ts', ns, ifname, pid, true);
  });

  it.skipIf(!which('wireguard-go'))('wireguard-go, same attacks (figures only)', { timeout: 240_000 }, async () => {
    const { ns, ifname, dir } = await fresh('ag');
    const pid = await startDaemon(ns, '/usr/bin/wireguard-go', ifname, dir);
    await attackAll('wireguard-go', ns, ifname, pid, false);
  });
});
