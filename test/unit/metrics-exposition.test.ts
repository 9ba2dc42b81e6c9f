/**
 * The metrics of the engine and their exposition: the per-peer counters the engine keeps for
 * them (packets, handshakes completed and failed, keypair ages, staged packets), the text
 * format (escaping, values, families together), the names both common exporters use, and the
 * real checker: Debian's promtool (`promtool check metrics`), when it is installed.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { encodeBase64Key } from '../../crypto/keys.js';
import { MAX_TIMER_HANDSHAKES, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX } from '../../noise/constants.js';
import type { Device } from '../../noise/device.js';
import { DROP_REASONS } from '../../noise/drops.js';
import { Exposition, escapeHelp, escapeLabelValue, formatValue } from '../../src/metrics/exposition.js';
import { addDeviceMetrics, type MetricsDevice } from '../../src/metrics/wireguard.js';
import { EP_A, EP_B, makePair } from '../helpers/device.js';
import { which } from '../helpers/proc.js';
import { parseExposition, samplesOf, sampleValue } from '../helpers/prom.js';

const asSource = (name: string, d: Device, netns?: number): MetricsDevice => ({
  name,
  ...(netns !== undefined ? { netns } : {}),
  metrics: { ...d.metrics(), listenPort: 51820 },
});

function render(devices: MetricsDevice[]): string {
  const x = new Exposition();
  addDeviceMetrics(x, devices);
  return x.text();
}

describe('engine counters for metrics', () => {
  it('counts packets each way, handshakes, keypair ages and staged packets', () => {
    const p = makePair();
    p.a.sendPacket(p.aToB('one'));
    let ma = p.a.metrics().peers[0]!;
    expect(ma.stagedPackets).toBe(1); // waiting for the handshake
    expect(ma.txPackets).toBe(1); // the initiation
    expect(ma.keypairAges).toEqual({ previous: null, current: null, next: null });
    expect(ma.lastHandshakeAge).toBeNull();
    expect(ma.handshakes).toBe(0);
    p.net.pump();
    p.clock.advance(3000);
    ma = p.a.metrics().peers[0]!;
    const mb = p.b.metrics().peers[0]!;
    // A sent the initiation and the data; B the response.
    expect([ma.txPackets, mb.rxPackets, mb.txPackets, ma.rxPackets]).toEqual([2, 2, 1, 1]);
    expect(ma.stagedPackets).toBe(0);
    expect([ma.handshakes, mb.handshakes]).toEqual([1, 1]); // B's completed when the data confirmed it
    expect(ma.keypairAges).toEqual({ previous: null, current: 3, next: null });
    expect(mb.keypairAges).toEqual({ previous: null, current: 3, next: null });
    expect(ma.lastHandshakeAge).toBe(3);
    const st = p.a.status().peers[0]!;
    expect([ma.rxBytes, ma.txBytes]).toEqual([st.rxBytes, st.txBytes]);
    expect(Math.floor(ma.lastHandshakeWall / 1000)).toBe(st.lastHandshakeSec);
    expect(encodeBase64Key(ma.publicKey)).toBe(encodeBase64Key(p.kb.pub));
    expect(ma.endpoint).toEqual(EP_B);
    expect(p.a.metrics().publicKey).toEqual(p.ka.pub);
  });

  it('shows a responder keypair as "next" until the initiator confirms it', () => {
    const p = makePair();
    p.net.filter = (d) => !(d.to === EP_B && d.data[0] === 4); // no transport message reaches B
    p.a.sendPacket(p.aToB('x'));
    p.net.pump();
    p.clock.advance(500);
    const mb = p.b.metrics().peers[0]!;
    expect(mb.keypairAges).toEqual({ previous: null, current: null, next: 0.5 });
    expect(mb.handshakes).toBe(0);
    expect(p.a.metrics().peers[0]!.handshakes).toBe(1);
  });

  it('counts every unanswered initiation as a failure, up to the give-up', () => {
    const p = makePair();
    p.net.filter = (d) => d.to !== EP_B; // B is unreachable
    p.a.sendPacket(p.aToB('lost'));
    p.net.pump();
    p.run(REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX + 250);
    expect(p.a.metrics().peers[0]!.handshakeFailures).toBe(1);
    p.run(200_000);
    const m = p.a.metrics().peers[0]!;
    // The first initiation and MAX_TIMER_HANDSHAKES + 1 retries, each of them timed out.
    expect(m.handshakeFailures).toBe(MAX_TIMER_HANDSHAKES + 2);
    expect(m.txPackets).toBe(MAX_TIMER_HANDSHAKES + 2);
    expect(m.stagedPackets).toBe(0);
    expect(p.a.metrics().drops['handshake-gave-up']).toBe(1);
  });

  it('hands out copies, never the live counters or keys', () => {
    const p = makePair();
    const m = p.a.metrics();
    (m.drops as Record<string, number>)['no-route'] = 99;
    m.peers[0]!.publicKey.fill(0);
    expect(p.a.drops['no-route']).toBe(0);
    expect(p.a.metrics().peers[0]!.publicKey).toEqual(p.kb.pub);
  });
});

describe('exposition format', () => {
  it('escapes label values and HELP text, and writes values Prometheus reads', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(escapeHelp('a\\b\nc "q"')).toBe('a\\\\b\\nc "q"');
    expect([0, 12, 1.5, 2 ** 53 + 2, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY].map(formatValue)).toEqual([
      '0',
      '12',
      '1.5',
      '9007199254740994',
      'NaN',
      '+Inf',
      '-Inf',
    ]);
  });

  it('keeps each family together, in declaration order, and leaves out families without samples', () => {
    const x = new Exposition();
    const a = x.family('t_a', 'gauge', 'A.');
    x.family('t_empty', 'gauge', 'Nothing.');
    const b = x.family('t_b_total', 'counter', 'B.');
    a.add({ k: '1' }, 1);
    b.add({}, 2);
    a.add({ k: '2' }, 3);
    expect(x.text()).toBe('# HELP t_a A.\n# TYPE t_a gauge\nt_a{k="1"} 1\nt_a{k="2"} 3\n# HELP t_b_total B.\n# TYPE t_b_total counter\nt_b_total 2\n');
    expect(x.family('t_a', 'gauge', 'A.')).toBe(a);
  });

  it('refuses invalid names, reserved label names, counters without _total and a changed type', () => {
    const x = new Exposition();
    expect(() => x.family('bad-name', 'gauge', '')).toThrow(/invalid metric name/);
    expect(() => x.family('c', 'counter', '')).toThrow(/_total/);
    expect(() => x.family('g', 'gauge', '').add({ 'bad-label': '' }, 1)).toThrow(/invalid label name/);
    expect(() => x.family('g', 'gauge', '').add({ __name__: '' }, 1)).toThrow(/invalid label name/);
    expect(() => x.family('g', 'counter', '')).toThrow(/declared as gauge/);
  });
});

describe('WireGuard metrics', () => {
  it('match what `wg show` reads, under both exporters names, with every drop reason', () => {
    const p = makePair();
    p.a.sendPacket(p.aToB('one'));
    p.net.pump();
    p.b.sendPacket(p.bToA('two'));
    p.net.pump();
    p.a.receiveDatagram(new Uint8Array([9, 0, 0, 0]), EP_B); // invalid-type
    p.clock.advance(2500);
    const s = parseExposition(render([asSource('wg0', p.a)]));
    const st = p.a.status().peers[0]!;
    const pub = encodeBase64Key(p.kb.pub);
    const dev = { device: 'wg0', public_key: pub };
    const iface = { interface: 'wg0', public_key: pub };
    expect(sampleValue(s, 'wireguard_peer_receive_bytes_total', dev)).toBe(st.rxBytes);
    expect(sampleValue(s, 'wireguard_peer_transmit_bytes_total', dev)).toBe(st.txBytes);
    expect(sampleValue(s, 'wireguard_peer_last_handshake_seconds', dev)).toBe(st.lastHandshakeSec);
    expect(sampleValue(s, 'wireguard_received_bytes_total', iface)).toBe(st.rxBytes);
    expect(sampleValue(s, 'wireguard_sent_bytes_total', iface)).toBe(st.txBytes);
    expect(sampleValue(s, 'wireguard_latest_handshake_seconds', iface)).toBe(st.lastHandshakeSec);
    expect(sampleValue(s, 'wireguard_latest_handshake_delay_seconds', iface)).toBe(2.5);
    expect(sampleValue(s, 'wireguard_ts_peer_last_handshake_age_seconds', iface)).toBe(2.5);
    expect(sampleValue(s, 'wireguard_device_info', { device: 'wg0' })).toBe(1);
    expect(samplesOf(s, 'wireguard_device_info')[0]!.labels.public_key).toBe(encodeBase64Key(p.ka.pub));
    expect(samplesOf(s, 'wireguard_peer_info', dev)[0]!.labels.endpoint).toBe(`${EP_B.address}:${EP_B.port}`);
    expect(sampleValue(s, 'wireguard_ts_peer_transmit_packets_total', iface)).toBe(2);
    expect(sampleValue(s, 'wireguard_ts_peer_receive_packets_total', iface)).toBe(2);
    expect(sampleValue(s, 'wireguard_ts_peer_handshakes_total', iface)).toBe(1);
    expect(sampleValue(s, 'wireguard_ts_peer_handshake_failures_total', iface)).toBe(0);
    expect(sampleValue(s, 'wireguard_ts_peer_keypair_age_seconds', { ...iface, slot: 'current' })).toBe(2.5);
    expect(samplesOf(s, 'wireguard_ts_peer_keypair_age_seconds', { ...iface, slot: 'next' })).toEqual([]);
    expect(sampleValue(s, 'wireguard_ts_peer_staged_packets', iface)).toBe(0);
    expect(sampleValue(s, 'wireguard_ts_device_peers', { interface: 'wg0' })).toBe(1);
    expect(sampleValue(s, 'wireguard_ts_device_listen_port', { interface: 'wg0' })).toBe(51820);
    expect(sampleValue(s, 'wireguard_ts_device_receive_datagrams_total', { interface: 'wg0' })).toBe(p.a.stats.datagramsIn);
    expect(sampleValue(s, 'wireguard_ts_device_tun_write_packets_total', { interface: 'wg0' })).toBe(1);
    const drops = samplesOf(s, 'wireguard_ts_device_drops_total', { interface: 'wg0' });
    expect(drops.map((d) => d.labels.reason)).toEqual([...DROP_REASONS]);
    expect(sampleValue(s, 'wireguard_ts_device_drops_total', { interface: 'wg0', reason: 'invalid-type' })).toBe(1);
    expect(drops.reduce((n, d) => n + d.value, 0)).toBe(1);
    for (const name of s.type.keys()) expect(s.help.get(name)).toBeTruthy();
  });

  it('never shows a private key, and tells two devices of one name apart by namespace', () => {
    const p = makePair();
    p.a.sendPacket(p.aToB('x'));
    p.net.pump();
    const text = render([asSource('cwg-1-0', p.a, 4026532001), asSource('cwg-1-0', p.b, 4026532002)]);
    for (const k of [p.ka.priv, p.kb.priv]) {
      expect(text).not.toContain(encodeBase64Key(k));
      expect(text).not.toContain(Buffer.from(k).toString('hex'));
    }
    const s = parseExposition(text);
    const info = samplesOf(s, 'wireguard_device_info', { device: 'cwg-1-0' });
    expect(info.map((i) => i.labels.netns)).toEqual(['4026532001', '4026532002']);
    expect(samplesOf(s, 'wireguard_ts_device_drops_total', { netns: '4026532002' })).toHaveLength(DROP_REASONS.length);
  });

  const promtool = which('promtool');
  it.skipIf(promtool === null)(`passes \`promtool check metrics\`${promtool === null ? ' (skipped: needs promtool: apt-get install prometheus)' : ''}`, () => {
    const p = makePair();
    p.a.sendPacket(p.aToB('x'));
    p.net.pump();
    p.net.filter = () => false;
    p.b.sendPacket(p.bToA('y'));
    p.run(12_000);
    const x = new Exposition();
    // A device name no interface can have, to see the escaping through the real parser.
    addDeviceMetrics(x, [asSource('wg0', p.a), asSource('we"ird\\name\nÿ', p.b, 4026532001)]);
    const text = x.text();
    expect(text).toContain('interface="we\\"ird\\\\name\\nÿ"');
    const r = spawnSync(promtool!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: r.status, out: `${r.stdout}${r.stderr}`.trim() }).toEqual({ status: 0, out: '' });
    // And promtool does fail on what is not valid (so the check above can fail).
    const bad = spawnSync(promtool!, ['check', 'metrics'], { input: '# TYPE x_total counter\nx_total{a="b} 1\n', encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
  });

  it('keeps B counting a handshake it answered while A never confirmed (and a staged packet)', () => {
    const p = makePair({ aKnowsB: true });
    p.net.filter = (d) => d.to !== EP_A; // B's answers never reach A
    p.a.sendPacket(p.aToB('x'));
    p.net.pump();
    p.b.sendPacket(p.bToA('waits'));
    const mb = p.b.metrics().peers[0]!;
    expect(mb.keypairAges.next).toBe(0);
    expect(mb.stagedPackets).toBe(1);
    expect(mb.rxPackets).toBe(1);
  });
});
