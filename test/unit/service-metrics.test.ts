/**
 * The host service's metrics without root (test/helpers/fake-service-os.ts): every device once,
 * labelled by name and container namespace, more devices than one collection slice takes, the
 * registry's counts; and the service's metrics endpoint over loopback.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jsSuite } from '../../crypto/suite.js';
import { createLogger } from '../../src/log.js';
import { Exposition } from '../../src/metrics/exposition.js';
import { serveMetrics } from '../../src/metrics/server.js';
import { Service } from '../../src/service/service.js';
import { FakeConnection, FakeOs } from '../helpers/fake-service-os.js';
import { addonBuilt } from '../helpers/proc.js';
import { parseExposition, samplesOf, sampleValue } from '../helpers/prom.js';

let os: FakeOs;
let service: Service;
let dir: string;

beforeEach(() => {
  os = new FakeOs();
  dir = mkdtempSync(join(tmpdir(), 'wgts-smetrics-'));
  service = new Service({
    os,
    crypto: jsSuite,
    logger: createLogger('silent', ''),
    configPath: join(dir, 'cwg.conf'),
    env: {},
    stateDir: join(dir, 'state'),
    runBase: join(dir, 'run', 'cwg'),
    hostNamespaces: new Map(),
  });
});

afterEach(async () => {
  await service.close();
  os.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function ask(argv: string[], ns: string) {
  const conn = new FakeConnection(0, 0, []);
  service.control.accept(conn);
  conn.request(['fd', ...argv], os.open(ns));
  await conn.finished();
  return conn.answer!;
}

async function scrape(): Promise<ReturnType<typeof parseExposition>> {
  const x = new Exposition();
  await service.collectMetrics(x);
  return parseExposition(x.text());
}

describe.skipIf(!addonBuilt)(`the host service's metrics${addonBuilt ? '' : ' (skipped: needs the addon, npm ci)'}`, () => {
  it('shows each device once by name and namespace, past one collection slice, with the registry counts', async () => {
    const [a, b] = [os.namespace(), os.namespace()];
    const ia = String(statSync(a).ino);
    const ib = String(statSync(b).ino);
    const keyA = (await ask(['cwg_create', '1', '5', '0', '42000'], a)).stdout.trim();
    const keyB = (await ask(['cwg_create', '2', '5', '0', '42001'], b)).stdout.trim();
    for (let i = 0; i < 110; i++) expect((await ask(['cwg_create', '1', String(100 + i), '1', String(42100 + i)], a)).code).toBe(0);
    const peer = Buffer.alloc(32, 7).toString('base64');
    expect((await ask(['cwg_connect', '1', '5', '0', '192.0.2.9:51820', peer], a)).code).toBe(0);
    expect((await ask(['cwg_destroy', '1', '100', '1'], a)).code).toBe(0);

    const s = await scrape();
    const info = samplesOf(s, 'wireguard_device_info', { device: 'cwg-5-0' });
    expect(info.map((i) => [i.labels.netns, i.labels.public_key])).toEqual([
      [ia, keyA],
      [ib, keyB],
    ]);
    expect(samplesOf(s, 'wireguard_device_info')).toHaveLength(111);
    expect(samplesOf(s, 'wireguard_device_info', { device: 'cwg-100-1' })).toEqual([]);
    expect(sampleValue(s, 'wireguard_ts_device_listen_port', { interface: 'cwg-5-0', netns: ib })).toBe(42001);
    expect(sampleValue(s, 'wireguard_ts_device_peers', { interface: 'cwg-5-0', netns: ia })).toBe(1);
    expect(samplesOf(s, 'wireguard_peer_info', { device: 'cwg-5-0', netns: ia, public_key: peer })[0]!.labels.endpoint).toBe('192.0.2.9:51820');
    expect(sampleValue(s, 'wireguard_ts_service_devices')).toBe(111);
    expect(sampleValue(s, 'wireguard_ts_service_devices_created_total')).toBe(112);
    expect(sampleValue(s, 'wireguard_ts_service_devices_removed_total', { reason: 'destroyed' })).toBe(1);
  }, 60_000);

  it('serves them on its endpoint', async () => {
    const ns = os.namespace();
    expect((await ask(['cwg_create', '1', '9', '0', '42300'], ns)).code).toBe(0);
    const m = await serveMetrics({ kind: 'tcp', host: '127.0.0.1', port: 0, family: 4 }, (x) => service.collectMetrics(x));
    try {
      const res = await fetch(`http://127.0.0.1:${m.port}/metrics`);
      expect(res.status).toBe(200);
      const s = parseExposition(await res.text());
      expect(sampleValue(s, 'wireguard_ts_device_peers', { interface: 'cwg-9-0', netns: String(statSync(ns).ino) })).toBe(0);
    } finally {
      await m.close();
    }
  });
});
