/**
 * Where metrics may be served: loopback addresses and UNIX socket paths, anything else refused
 * unless allowed, with the reason; the service configuration's `metrics` settings; the two
 * programs' flags (one line, exit 1, before anything else happens).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, parseConfigSettings } from '../../src/cwg/config.js';
import { formatMetricsAddress, parseMetricsAddress } from '../../src/metrics/address.js';
import { ROOT, run, WG_TS } from '../helpers/proc.js';

const HINT = '--metrics-allow-public is given';

describe('metrics addresses', () => {
  it('takes loopback addresses and socket paths', () => {
    expect(parseMetricsAddress('127.0.0.1:9586', false, HINT)).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 9586, family: 4 });
    expect(parseMetricsAddress('127.8.9.10:1', false, HINT)).toEqual({ kind: 'tcp', host: '127.8.9.10', port: 1, family: 4 });
    expect(parseMetricsAddress('[::1]:65535', false, HINT)).toEqual({ kind: 'tcp', host: '::1', port: 65535, family: 6 });
    expect(parseMetricsAddress('[::ffff:127.0.0.1]:9586', false, HINT)).toMatchObject({ kind: 'tcp', family: 6 });
    expect(parseMetricsAddress('/run/wireguard-ts/metrics.sock', false, HINT)).toEqual({ kind: 'unix', path: '/run/wireguard-ts/metrics.sock' });
    for (const t of ['127.0.0.1:9586', '[::1]:9586', '/a/b.sock']) expect(formatMetricsAddress(parseMetricsAddress(t, false, HINT) as never)).toBe(t);
  });

  it('refuses public addresses unless allowed, saying why and how', () => {
    for (const t of ['0.0.0.0:9586', '192.0.2.1:9586', '[::]:9586', '[2001:db8::1]:9586', '[::ffff:192.0.2.1]:9586']) {
      const r = parseMetricsAddress(t, false, HINT);
      expect(r).toMatch(/is not a loopback address: the metrics show every peer's public key and endpoint, .* unless --metrics-allow-public is given$/);
      expect(parseMetricsAddress(t, true, HINT)).toMatchObject({ kind: 'tcp' });
    }
  });

  it('refuses what is not an address, with the reason', () => {
    const cases: Array<[string, RegExp]> = [
      ['localhost:9586', /not an IP address .*host names are not resolved/],
      ['::1:9586', /IPv6 address in brackets/],
      ['[127.0.0.1]:9586', /not an IP address/],
      ['127.0.0.1', /expected ADDRESS:PORT/],
      ['127.0.0.1:0', /invalid port/],
      ['127.0.0.1:65536', /invalid port/],
      ['127.0.0.1:09586', /invalid port/],
      ['relative.sock', /expected ADDRESS:PORT/],
      ['/a/dir/', /not a directory/],
      [`/${'x'.repeat(107)}`, /at most 107 bytes/],
      ['', /expected ADDRESS:PORT/],
    ];
    for (const [t, re] of cases) expect(parseMetricsAddress(t, false, HINT)).toMatch(re);
  });
});

describe('the service configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wgts-mcfg-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads metrics and metrics_allow_public, in any order', () => {
    expect(parseConfigSettings('metrics = 127.0.0.1:9586\n', 'f').metrics).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 9586, family: 4 });
    expect(parseConfigSettings('metrics = 192.0.2.1:9586\nmetrics_allow_public = true\n', 'f').metrics).toMatchObject({ host: '192.0.2.1' });
    expect(parseConfigSettings('metrics_allow_public = true\nmetrics = [::]:9586\n', 'f').metrics).toMatchObject({ host: '::' });
    expect(parseConfigSettings('prefix = x\n', 'f').metrics).toBeUndefined();
  });

  it('refuses a bad or public metrics address with the file and line', () => {
    expect(() => parseConfigSettings('prefix = x\nmetrics = 0.0.0.0:9586\n', '/etc/c.conf')).toThrow(
      /^invalid metrics '0.0.0.0:9586' in \/etc\/c.conf:2: 0.0.0.0 is not a loopback address: .* unless the configuration sets metrics_allow_public = true$/,
    );
    expect(() => parseConfigSettings('metrics = nowhere\n', 'f')).toThrow(/^invalid metrics 'nowhere' in f:1: expected ADDRESS:PORT/);
    expect(() => parseConfigSettings('metrics_allow_public = yes\n', 'f')).toThrow(/expected true or false/);
  });

  it('gives the address through loadConfig (null without the setting)', () => {
    const f = join(dir, 'cwg.conf');
    writeFileSync(f, 'metrics = /run/m.sock\n', { mode: 0o644 });
    const uid = process.geteuid?.() ?? 0;
    expect(loadConfig({ path: f, env: {}, ownerUid: uid }).metrics).toEqual({ kind: 'unix', path: '/run/m.sock' });
    expect(loadConfig({ path: join(dir, 'absent.conf'), env: {}, ownerUid: uid }).metrics).toBeNull();
  });
});

describe('the programs refuse a bad --metrics with one line and exit 1', () => {
  const service = join(ROOT, 'bin', 'wireguard-ts-service');
  const cases: Array<[string, string[], RegExp]> = [
    [
      WG_TS,
      ['--metrics', '0.0.0.0:9586', 'wg0'],
      /^wireguard-ts: invalid --metrics "0.0.0.0:9586": 0.0.0.0 is not a loopback address: .*--metrics-allow-public/,
    ],
    [WG_TS, ['--metrics', 'localhost:1', 'wg0'], /^wireguard-ts: invalid --metrics "localhost:1": /],
    [WG_TS, ['--metrics-allow-public', 'wg0'], /^wireguard-ts: --metrics-allow-public without --metrics/],
    [WG_TS, ['wg0', '--metrics'], /^wireguard-ts: option '--metrics' needs a value/],
    [service, ['--metrics', '192.0.2.1:9586'], /^wireguard-ts-service: invalid --metrics "192.0.2.1:9586": .*not a loopback address/],
    [service, ['--metrics'], /^wireguard-ts-service: option --metrics needs an address/],
  ];
  for (const [prog, args, re] of cases) {
    it(`${prog.split('/').pop()} ${args.join(' ')}`, async () => {
      const r = await run(prog, args);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    });
  }
});
