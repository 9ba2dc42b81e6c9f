/**
 * Metrics against the real thing (root): two daemons in namespaces carry traffic with
 * `--metrics` on loopback; a real Prometheus (Debian's package) scrapes them, and queries
 * through its HTTP API return the counters, equal to what `wg show` reports; promtool accepts
 * the live exposition. Then the host service: devices made with cwg in containers of two
 * sites, metrics from its configuration file (site A) and from its flag (site B), two devices
 * of one name told apart by namespace, figures equal to the UAPI's and `cwg show`'s.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DROP_REASONS } from '../../noise/drops.js';
import { uapiGetRaw } from '../../src/uapi/client.js';
import { nsPids, nsRun, skipReason } from '../helpers/netns.js';
import { pidAlive, type RunResult, run, sleep, WG_TS, waitFor, waitUntil, which } from '../helpers/proc.js';
import { parseExposition, type Scrape, samplesOf, sampleValue } from '../helpers/prom.js';
import { Prometheus } from '../helpers/prometheus.js';
import { cwgAddr, e2eSkipReason, Lab, RUN_BASE, randomNet, randomPort, type Site } from '../helpers/sites.js';
import { type Impl, iperf, Pair } from '../helpers/tunnel.js';

const tools = ['wg', 'ping', 'iperf3', 'curl', 'prometheus', 'promtool'];
const skip = skipReason(...tools);
const skipService = e2eSkipReason(['curl', 'prometheus', 'promtool', 'ping']);
const DROP_REASON_COUNT = DROP_REASONS.length;

/** Start `wireguard-ts ARGS IFNAME` in `ns0`, then move its device into `target`. */
async function startDaemonWith(ns0: string, args: string[], ifname: string, target: string): Promise<void> {
  const env = { ...process.env };
  delete env.LOG_LEVEL;
  await nsRun(ns0, WG_TS, [...args, ifname], { env });
  await waitUntil(`${ifname} to exist`, async () => (await run('ip', ['-n', ns0, 'link', 'show', ifname])).code === 0);
  await nsRun(ns0, 'ip', ['link', 'set', ifname, 'netns', target]);
}

/** Two daemons as in daemon-tunnel.test.ts, each serving metrics on its own loopback port in ns0. */
class MetricsPair extends Pair {
  readonly metricsPort = new Map<string, number>();
  override async startDaemon(_impl: Impl, ifname: string, ns: string): Promise<void> {
    const port = 9586 + this.metricsPort.size;
    this.metricsPort.set(ifname, port);
    await startDaemonWith(this.ns0, ['--metrics', `127.0.0.1:${port}`], ifname, ns);
  }
}

async function curlIn(ns: string, args: string[]): Promise<string> {
  return (await nsRun(ns, which('curl')!, ['-sS', '--max-time', '5', ...args])).stdout;
}

function promtoolCheck(text: string): { status: number | null; out: string } {
  const r = spawnSync(which('promtool')!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

/** The peer figures a metric scrape shows, under both exporters' names (they must agree). */
function peerFigures(s: Scrape, device: string, pub: string, netns?: string) {
  const ns: Record<string, string> = netns === undefined ? {} : { netns };
  const dev = { device, public_key: pub, ...ns };
  const iface = { interface: device, public_key: pub, ...ns };
  const rx = sampleValue(s, 'wireguard_peer_receive_bytes_total', dev);
  const tx = sampleValue(s, 'wireguard_peer_transmit_bytes_total', dev);
  const hs = sampleValue(s, 'wireguard_peer_last_handshake_seconds', dev);
  expect([sampleValue(s, 'wireguard_received_bytes_total', iface), sampleValue(s, 'wireguard_sent_bytes_total', iface)]).toEqual([rx, tx]);
  expect(sampleValue(s, 'wireguard_latest_handshake_seconds', iface)).toBe(hs);
  return { rx, tx, hs };
}

/**
 * Read the metrics and the reference figures until two scrapes around the reference agree (a
 * keepalive may pass in between), then return both.
 */
async function settled<R>(scrape: () => Promise<string>, reference: () => Promise<R>, figures: (s: Scrape) => unknown) {
  for (let i = 0; ; i++) {
    const before = parseExposition(await scrape());
    const ref = await reference();
    const afterText = await scrape();
    const after = parseExposition(afterText);
    if (JSON.stringify(figures(before)) === JSON.stringify(figures(after)) || i === 5) return { scrape: after, text: afterText, ref };
    await sleep(300);
  }
}

describe.skipIf(skip)(`Prometheus and the daemon${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const pair = new MetricsPair();
  let prom: Prometheus | null = null;
  const scrapeOf = (ifname: string) => () => curlIn(pair.ns0, [`http://127.0.0.1:${pair.metricsPort.get(ifname)}/metrics`]);

  beforeAll(async () => {
    await pair.setup();
    const targets = [...pair.metricsPort.values()].map((p) => `127.0.0.1:${p}`);
    prom = await Prometheus.start(pair.ns0, 9090, 'wireguard-ts', targets);
  });
  afterAll(async () => {
    await prom?.stop();
    await pair.cleanup();
  });

  it('serves metrics that promtool accepts and that agree with `wg show`', async () => {
    expect(await pair.ping(pair.a, pair.b.v4)).toBe(true);
    expect(await iperf(pair, pair.a, pair.b, { seconds: 1 })).toBeGreaterThan(1);
    const { scrape, text, ref } = await settled(
      scrapeOf(pair.a.ifname),
      async () =>
        (await pair.wg('show', pair.a.ifname, 'dump')).stdout
          .trim()
          .split('\n')
          .map((l) => l.split('\t')),
      (s) => peerFigures(s, pair.a.ifname, pair.b.pub),
    );
    const [iface, peer] = ref;
    const f = peerFigures(scrape, pair.a.ifname, pair.b.pub);
    expect(f).toEqual({ rx: Number(peer![5]), tx: Number(peer![6]), hs: Number(peer![4]) });
    expect(f.tx).toBeGreaterThan(1_000_000);
    expect(sampleValue(scrape, 'wireguard_device_info', { device: pair.a.ifname, public_key: iface![1]! })).toBe(1);
    expect(samplesOf(scrape, 'wireguard_peer_info', { device: pair.a.ifname, public_key: pair.b.pub })[0]!.labels.endpoint).toBe(peer![2]);
    const a = { interface: pair.a.ifname };
    const ap = { ...a, public_key: pair.b.pub };
    expect(sampleValue(scrape, 'wireguard_ts_device_listen_port', a)).toBe(Number(iface![2]));
    expect(Math.abs(sampleValue(scrape, 'wireguard_ts_peer_last_handshake_age_seconds', ap) - (Date.now() / 1000 - f.hs))).toBeLessThan(2);
    expect(sampleValue(scrape, 'wireguard_ts_peer_handshakes_total', ap)).toBeGreaterThanOrEqual(1);
    expect(sampleValue(scrape, 'wireguard_ts_peer_transmit_packets_total', ap)).toBeGreaterThan(100);
    expect(sampleValue(scrape, 'wireguard_ts_peer_keypair_age_seconds', { ...ap, slot: 'current' })).toBeGreaterThanOrEqual(0);
    expect(samplesOf(scrape, 'wireguard_ts_device_drops_total', a)).toHaveLength(DROP_REASON_COUNT);
    expect(sampleValue(scrape, 'process_resident_memory_bytes')).toBeGreaterThan(10e6);
    // The private key (the dump's first field, WG_HIDE_KEYS=never) appears nowhere.
    expect(iface![0]).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(text).not.toContain(iface![0]);
    expect(promtoolCheck(text)).toEqual({ status: 0, out: '' });
  });

  it('is scraped by Prometheus, whose queries return the counters `wg show` reports', async () => {
    const p = prom!;
    // Traffic while Prometheus scrapes.
    expect(await pair.ping(pair.b, pair.a.v4)).toBe(true);
    await waitUntil('both targets up', async () => (await p.query('up{job="wireguard-ts"} == 1')).length === 2, 20_000, 250);
    for (const [me, other] of [
      [pair.a, pair.b],
      [pair.b, pair.a],
    ] as const) {
      // Prometheus lags a scrape behind: wait until its figures are today's `wg show` figures.
      let last = '';
      const agree = await waitFor(
        async () => {
          const peer = (await pair.wg('show', me.ifname, 'dump')).stdout.trim().split('\n')[1]!.split('\t');
          const sel = `{device="${me.ifname}",public_key="${other.pub}"}`;
          const got = await Promise.all([
            p.query(`wireguard_peer_receive_bytes_total${sel}`),
            p.query(`wireguard_peer_transmit_bytes_total${sel}`),
            p.query(`wireguard_peer_last_handshake_seconds${sel}`),
          ]);
          const values = got.map((r) => (r.length === 1 ? r[0]!.value : Number.NaN));
          last = `prometheus ${values.join(' ')} vs wg show ${peer[5]} ${peer[6]} ${peer[4]}`;
          return values[0] === Number(peer[5]) && values[1] === Number(peer[6]) && values[2] === Number(peer[4]);
        },
        20_000,
        500,
      );
      expect(agree, last).toBe(true);
    }
    const drops = await p.query(`wireguard_ts_device_drops_total{interface="${pair.a.ifname}"}`);
    expect(drops).toHaveLength(DROP_REASON_COUNT);
    expect(drops.every((d) => d.metric.job === 'wireguard-ts' && d.metric.reason !== undefined)).toBe(true);
    const hs = await p.query(`wireguard_ts_peer_handshakes_total{interface="${pair.b.ifname}"}`);
    expect(hs.map((h) => h.metric.public_key)).toEqual([pair.a.pub]);
    expect(hs[0]!.value).toBeGreaterThanOrEqual(1);
    // Both endpoints answered Prometheus (and curl) every time: nothing refused or timed out.
    // (An answer counts those sent before it: the second scrape of each shows one.)
    await waitUntil(
      'each endpoint to count a served scrape',
      async () => (await p.query('wireguard_ts_metrics_requests_total{outcome="served"} >= 1')).length === 2,
      10_000,
      250,
    );
    expect((await p.query('sum(wireguard_ts_metrics_requests_total{outcome!="served"})'))[0]!.value).toBe(0);
  });

  it('serves on a UNIX socket (mode 0600), removed when the daemon exits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgts-msock-'));
    const sock = join(dir, 'm.sock');
    const ifname = `wm${pair.nss.tag}`;
    try {
      const env = { ...process.env };
      delete env.LOG_LEVEL; // else the daemon keeps our pipes
      await nsRun(pair.ns0, WG_TS, ['--metrics', sock, ifname], { env });
      expect(statSync(sock).mode & 0o777).toBe(0o600);
      const text = (await run(which('curl')!, ['-sS', '--max-time', '5', '--unix-socket', sock, 'http://x/metrics'])).stdout;
      const s = parseExposition(text);
      expect(sampleValue(s, 'wireguard_ts_device_peers', { interface: ifname })).toBe(0);
      expect(promtoolCheck(text)).toEqual({ status: 0, out: '' });
      const before = nsPids(pair.ns0);
      await nsRun(pair.ns0, 'ip', ['link', 'del', ifname]);
      await waitUntil('the socket to go', () => !existsSync(sock), 5000);
      await waitUntil('the daemon to exit', () => nsPids(pair.ns0).filter(pidAlive).length === before.length - 1, 5000);
    } finally {
      await run('ip', ['-n', pair.ns0, 'link', 'del', ifname]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!which('wg-quick'))('serves metrics under wg-quick through a two-line wrapper (docs/METRICS.md)', async () => {
    const ifname = `wq${pair.nss.tag}`;
    const wrapper = join(pair.tmp, 'wireguard-ts-metrics');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${WG_TS} --metrics 127.0.0.1:9600 "$@"\n`, { mode: 0o755 });
    const priv = (await run('wg', ['genkey'])).stdout.trim();
    const conf = join(pair.tmp, `${ifname}.conf`);
    writeFileSync(
      conf,
      `[Interface]\nPrivateKey = ${priv}\nAddress = 192.168.244.1/24\nListenPort = 41001\n\n[Peer]\nPublicKey = ${pair.b.pub}\nAllowedIPs = 192.168.244.2/32\n`,
      {
        mode: 0o600,
      },
    );
    const env: NodeJS.ProcessEnv = { ...process.env, WG_QUICK_USERSPACE_IMPLEMENTATION: wrapper };
    delete env.LOG_LEVEL;
    await nsRun(pair.ns0, 'wg-quick', ['up', conf], { env });
    try {
      const s = parseExposition(await curlIn(pair.ns0, ['http://127.0.0.1:9600/metrics']));
      expect(sampleValue(s, 'wireguard_ts_device_listen_port', { interface: ifname })).toBe(41001);
      expect(samplesOf(s, 'wireguard_peer_info', { device: ifname }).map((x) => x.labels.public_key)).toEqual([pair.b.pub]);
    } finally {
      await nsRun(pair.ns0, 'wg-quick', ['down', conf], { env });
    }
    await waitUntil(
      'the metrics port to close',
      async () => (await run('ip', ['netns', 'exec', pair.ns0, which('curl')!, '-s', 'http://127.0.0.1:9600/metrics'])).code !== 0,
    );
  });

  it('refuses to start with one line when the metrics port is taken, leaving nothing behind', async () => {
    const ifname = `wx${pair.nss.tag}`;
    const taken = pair.metricsPort.get(pair.a.ifname)!;
    const env = { ...process.env };
    delete env.LOG_LEVEL;
    const r = await run('ip', ['netns', 'exec', pair.ns0, WG_TS, '--metrics', `127.0.0.1:${taken}`, ifname], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`wireguard-ts: metrics address 127.0.0.1:${taken} is already in use\n`);
    expect((await run('ip', ['-n', pair.ns0, 'link', 'show', ifname])).code).not.toBe(0);
    expect(existsSync(`/var/run/wireguard/${ifname}.sock`)).toBe(false);
  });
});

/** rx_bytes, tx_bytes and last_handshake_time_sec of the one peer, read from the UAPI socket directly. */
async function uapiFigures(sock: string): Promise<{ rx: number; tx: number; hs: number }> {
  const text = await uapiGetRaw(sock);
  const field = (k: string) => Number(text.match(new RegExp(`^${k}=(\\d+)$`, 'm'))?.[1] ?? Number.NaN);
  return { rx: field('rx_bytes'), tx: field('tx_bytes'), hs: field('last_handshake_time_sec') };
}

/** wg's way of printing a byte count (show.c: bytes). */
function wgBytes(b: number): string {
  if (b < 1024) return `${b} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = b / 1024;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(2)} ${units[i]}`;
}

describe.skipIf(skipService !== null)(`Prometheus and the host service${skipService ? ` (skipped: ${skipService})` : ''}`, () => {
  const lab = new Lab();
  let A: Site;
  let B: Site;
  let prom: Prometheus | null = null;
  const cfgDir = mkdtempSync(join(tmpdir(), 'wgts-mcfg-'));

  beforeAll(async () => {
    [A, B] = lab.setup();
    const cfg = join(cfgDir, 'cwg.conf');
    writeFileSync(cfg, '# metrics for Prometheus\nmetrics = 127.0.0.1:9586\n', { mode: 0o644 });
    await lab.startService(A, ['--config', cfg]);
    await lab.startService(B, ['--config', join(cfgDir, 'none.conf'), '--metrics', '127.0.0.1:9586']);
  });
  afterAll(async () => {
    await prom?.stop();
    await lab.cleanup();
    rmSync(cfgDir, { recursive: true, force: true });
  });

  it('shows every cwg device by name and namespace, with the figures of the UAPI and `cwg show`', async () => {
    const cA = await lab.container(A);
    const cA2 = await lab.container(A);
    const cB = await lab.container(B);
    const net = randomNet();
    const port = randomPort();
    const name0 = `cwg-${net}-0`;
    const ok = (r: RunResult) => expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const keyA = (await lab.cwg(A, ['cwg_create', String(cA.pid), String(net), '0', String(port)])).stdout.trim();
    const keyB = (await lab.cwg(B, ['cwg_create', String(cB.pid), String(net), '1', String(port + 1)])).stdout.trim();
    ok(await lab.cwg(B, ['cwg_connect', String(cB.pid), String(net), '1', `${A.addr}:${port}`, keyA]));
    ok(await lab.cwg(A, ['cwg_connect', String(cA.pid), String(net), '0', `${B.addr}:${port + 1}`, keyB]));
    // A second container of site A holds a device of the same name.
    ok(await lab.cwg(A, ['cwg_create', String(cA2.pid), String(net), '0', String(port + 2)]));
    const ping = await lab.inContainer(cA, which('ping')!, ['-c', '5', '-i', '0.2', '-W', '3', cwgAddr(net, 1)]);
    expect(ping.code).toBe(0);

    const scrapeA = () => curlIn(A.ns, ['http://127.0.0.1:9586/metrics']);
    const sock = join(RUN_BASE, String(cA.inode), `${name0}.sock`);
    const { scrape, text, ref } = await settled(
      scrapeA,
      () => uapiFigures(sock),
      (s) => peerFigures(s, name0, keyB, String(cA.inode)),
    );
    expect(peerFigures(scrape, name0, keyB, String(cA.inode))).toEqual(ref);
    expect(ref.rx).toBeGreaterThan(0);
    const info = samplesOf(scrape, 'wireguard_device_info', { device: name0 });
    expect(info.map((i) => i.labels.netns).sort()).toEqual([String(cA.inode), String(cA2.inode)].sort());
    expect(info.find((i) => i.labels.netns === String(cA.inode))!.labels.public_key).toBe(keyA);
    expect(sampleValue(scrape, 'wireguard_ts_device_peers', { interface: name0, netns: String(cA2.inode) })).toBe(0);
    expect(sampleValue(scrape, 'wireguard_ts_device_listen_port', { interface: name0, netns: String(cA2.inode) })).toBe(port + 2);
    expect(sampleValue(scrape, 'wireguard_ts_service_devices')).toBe(2);
    expect(samplesOf(scrape, 'wireguard_ts_device_drops_total', { interface: name0, netns: String(cA.inode) })).toHaveLength(DROP_REASON_COUNT);
    expect(promtoolCheck(text)).toEqual({ status: 0, out: '' });
    // `cwg show` prints the same transfer figures (as wg does).
    const show = await lab.cwg(A, ['show', String(cA.pid), String(net), '0']);
    expect(show.stdout).toContain(`transfer: ${wgBytes(ref.rx)} received, ${wgBytes(ref.tx)} sent`);

    // Site B's service took its address from the flag.
    const sb = parseExposition(await curlIn(B.ns, ['http://127.0.0.1:9586/metrics']));
    expect(samplesOf(sb, 'wireguard_device_info', { device: `cwg-${net}-1` }).map((i) => i.labels.netns)).toEqual([String(cB.inode)]);

    // A real Prometheus in site A scrapes the service; its queries return the UAPI's figures.
    prom = await Prometheus.start(A.ns, 9090, 'cwg', ['127.0.0.1:9586']);
    const p = prom;
    const sel = `{device="${name0}",netns="${cA.inode}",public_key="${keyB}"}`;
    let last = '';
    const agree = await waitFor(
      async () => {
        const now = await uapiFigures(sock);
        const got = await Promise.all([p.query(`wireguard_peer_receive_bytes_total${sel}`), p.query(`wireguard_peer_transmit_bytes_total${sel}`)]);
        const values = got.map((r) => (r.length === 1 ? r[0]!.value : Number.NaN));
        last = `prometheus ${values.join(' ')} vs UAPI ${now.rx} ${now.tx}`;
        return values[0] === now.rx && values[1] === now.tx;
      },
      20_000,
      500,
    );
    expect(agree, last).toBe(true);
    const devices = await p.query('count by (netns) (wireguard_device_info{job="cwg"})');
    expect(devices.map((d) => d.metric.netns).sort()).toEqual([String(cA.inode), String(cA2.inode)].sort());
  });
});
