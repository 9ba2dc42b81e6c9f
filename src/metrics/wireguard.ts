/**
 * The WireGuard metrics of a set of devices (docs/METRICS.md lists them all).
 *
 * Three groups:
 * - the names and labels of wireguard_exporter (labels `device`, `public_key`) and of
 *   prometheus_wireguard_exporter (labels `interface`, `public_key`), so that the dashboards
 *   and alerts written for either keep working. Both read the UAPI, as `wg show` does; so do
 *   these (the same rx/tx bytes and last handshake time). Their allowed-IPs labels are left
 *   out: a peer may have 100,000 allowed IPs, and a label that size is no label.
 * - our own, prefixed `wireguard_ts_`, labelled `interface` (and `public_key` per peer): what
 *   only the engine knows (drops by reason, packets, handshake outcomes, keypair ages, staged
 *   packets, cookies).
 * Every series of a device carries the device's identifying labels; the host service adds
 * `netns` (the container's network namespace inode), as two containers may each hold a device
 * of the same name. No key but public keys appears anywhere.
 */
import { encodeBase64Key } from '../../crypto/keys.js';
import { DROP_REASONS } from '../../noise/drops.js';
import { formatEndpoint } from '../../noise/iptext.js';
import type { DeviceMetrics } from '../../noise/metrics.js';
import { type Exposition, labelText } from './exposition.js';

export interface MetricsDevice {
  /** The interface name. */
  readonly name: string;
  /** Its container's network namespace inode (the host service), or absent (the daemon). */
  readonly netns?: number;
  readonly metrics: DeviceMetrics & { readonly listenPort: number };
}

const KEYPAIR_SLOTS = ['previous', 'current', 'next'] as const;

/** Add the families of every device to `x`. */
export function addDeviceMetrics(x: Exposition, devices: readonly MetricsDevice[]): void {
  // wireguard_exporter (mdlayher): device, public_key.
  const deviceInfo = x.family('wireguard_device_info', 'gauge', 'Metadata about a device.');
  const peerInfo = x.family(
    'wireguard_peer_info',
    'gauge',
    "Metadata about a peer. The public_key label on peer metrics refers to the peer's public key; not the device's public key.",
  );
  const peerRx = x.family('wireguard_peer_receive_bytes_total', 'counter', 'Number of bytes received from a given peer.');
  const peerTx = x.family('wireguard_peer_transmit_bytes_total', 'counter', 'Number of bytes transmitted to a given peer.');
  const peerHs = x.family('wireguard_peer_last_handshake_seconds', 'gauge', 'UNIX timestamp for the last handshake with a given peer (0: none).');
  // prometheus_wireguard_exporter (MindFlavor): interface, public_key.
  const sent = x.family('wireguard_sent_bytes_total', 'counter', 'Bytes sent to the peer');
  const received = x.family('wireguard_received_bytes_total', 'counter', 'Bytes received from the peer');
  const latest = x.family('wireguard_latest_handshake_seconds', 'gauge', 'UNIX timestamp seconds of the last handshake (0: none)');
  const delay = x.family('wireguard_latest_handshake_delay_seconds', 'gauge', 'Seconds from the last handshake (absent: none yet)');

  // Our own, per device.
  const peers = x.family('wireguard_ts_device_peers', 'gauge', 'Peers configured on the device.');
  const port = x.family('wireguard_ts_device_listen_port', 'gauge', 'UDP port the device is bound to (0: none yet).');
  const underLoad = x.family(
    'wireguard_ts_device_under_load',
    'gauge',
    '1 while the device answers handshake messages with cookie replies (under load), else 0.',
  );
  const udpRxPackets = x.family('wireguard_ts_device_receive_datagrams_total', 'counter', 'UDP datagrams received by the device, valid or not.');
  const udpRxBytes = x.family('wireguard_ts_device_receive_bytes_total', 'counter', 'Bytes of the UDP datagrams received by the device, valid or not.');
  const udpTxPackets = x.family('wireguard_ts_device_transmit_datagrams_total', 'counter', 'UDP datagrams sent by the device.');
  const udpTxBytes = x.family('wireguard_ts_device_transmit_bytes_total', 'counter', 'Bytes of the UDP datagrams sent by the device.');
  const tunRead = x.family('wireguard_ts_device_tun_read_packets_total', 'counter', 'IP packets read from the TUN side (to send through the tunnel).');
  const tunReadBytes = x.family('wireguard_ts_device_tun_read_bytes_total', 'counter', 'Bytes of the IP packets read from the TUN side.');
  const tunWrite = x.family('wireguard_ts_device_tun_write_packets_total', 'counter', 'Decrypted IP packets written to the TUN side.');
  const tunWriteBytes = x.family('wireguard_ts_device_tun_write_bytes_total', 'counter', 'Bytes of the decrypted IP packets written to the TUN side.');
  const keepalives = x.family('wireguard_ts_device_keepalives_received_total', 'counter', 'Authenticated keepalives received.');
  const hsMessages = x.family('wireguard_ts_device_handshake_messages_received_total', 'counter', 'Valid handshake initiations and responses received.');
  const cookiesOut = x.family('wireguard_ts_device_cookie_replies_sent_total', 'counter', 'Cookie replies sent (under load).');
  const cookiesIn = x.family('wireguard_ts_device_cookie_replies_received_total', 'counter', 'Cookie replies received and accepted.');
  const drops = x.family(
    'wireguard_ts_device_drops_total',
    'counter',
    'Inputs (datagrams, TUN packets) and held packets the device dropped, by reason (noise/drops.ts).',
  );
  // Our own, per peer.
  const rxPackets = x.family(
    'wireguard_ts_peer_receive_packets_total',
    'counter',
    'Authenticated datagrams received from the peer (data, keepalives, handshake messages): the ones wireguard_peer_receive_bytes_total counts.',
  );
  const txPackets = x.family(
    'wireguard_ts_peer_transmit_packets_total',
    'counter',
    'Datagrams sent to the peer (data, keepalives, handshake messages): the ones wireguard_peer_transmit_bytes_total counts.',
  );
  const handshakes = x.family('wireguard_ts_peer_handshakes_total', 'counter', 'Handshakes completed with the peer, in either role.');
  const failures = x.family(
    'wireguard_ts_peer_handshake_failures_total',
    'counter',
    'Handshake initiations to the peer left unanswered for REKEY_TIMEOUT (5 s): each retransmission, and the final give-up.',
  );
  const hsAge = x.family(
    'wireguard_ts_peer_last_handshake_age_seconds',
    'gauge',
    'Seconds since the last completed handshake, on the monotonic clock (absent: none yet).',
  );
  const kpAge = x.family(
    'wireguard_ts_peer_keypair_age_seconds',
    'gauge',
    'Age of the keypair in each slot (previous, current, next: the next one awaits confirmation by the initiator); absent for an empty slot.',
  );
  const staged = x.family('wireguard_ts_peer_staged_packets', 'gauge', 'Packets queued for the peer, waiting for a session.');

  // Each device's and each peer's labels are rendered once (a thousand devices make ~58,000 samples).
  const reasons = DROP_REASONS.map((r) => labelText({ reason: r }));
  for (const d of devices) {
    const m = d.metrics;
    const ns = d.netns === undefined ? '' : `,${labelText({ netns: String(d.netns) })}`;
    const iface = `${labelText({ interface: d.name })}${ns}`;
    const dev = `${labelText({ device: d.name })}${ns}`;
    deviceInfo.addText(`${dev},${labelText({ public_key: m.publicKey ? encodeBase64Key(m.publicKey) : '' })}`, 1);
    peers.addText(iface, m.peers.length);
    port.addText(iface, m.listenPort);
    underLoad.addText(iface, m.underLoad ? 1 : 0);
    const s = m.stats;
    udpRxPackets.addText(iface, s.datagramsIn);
    udpRxBytes.addText(iface, s.bytesIn);
    udpTxPackets.addText(iface, s.datagramsOut);
    udpTxBytes.addText(iface, s.bytesOut);
    tunRead.addText(iface, s.packetsIn);
    tunReadBytes.addText(iface, s.packetBytesIn);
    tunWrite.addText(iface, s.packetsOut);
    tunWriteBytes.addText(iface, s.packetBytesOut);
    keepalives.addText(iface, s.keepalivesIn);
    hsMessages.addText(iface, s.handshakesIn);
    cookiesOut.addText(iface, s.cookieRepliesOut);
    cookiesIn.addText(iface, s.cookieRepliesIn);
    // Every reason, zeros too: a rate over a series that appears with its first drop misses it.
    for (let i = 0; i < DROP_REASONS.length; i++) drops.addText(`${iface},${reasons[i]}`, m.drops[DROP_REASONS[i]!]);

    for (const p of m.peers) {
      const key = `,${labelText({ public_key: encodeBase64Key(p.publicKey) })}`;
      const devPeer = dev + key;
      const ifPeer = iface + key;
      const handshakeSec = Math.floor(p.lastHandshakeWall / 1000);
      peerInfo.addText(`${devPeer},${labelText({ endpoint: p.endpoint ? formatEndpoint(p.endpoint) : '' })}`, 1);
      peerRx.addText(devPeer, p.rxBytes);
      peerTx.addText(devPeer, p.txBytes);
      peerHs.addText(devPeer, handshakeSec);
      sent.addText(ifPeer, p.txBytes);
      received.addText(ifPeer, p.rxBytes);
      latest.addText(ifPeer, handshakeSec);
      if (p.lastHandshakeAge !== null) {
        delay.addText(ifPeer, p.lastHandshakeAge);
        hsAge.addText(ifPeer, p.lastHandshakeAge);
      }
      rxPackets.addText(ifPeer, p.rxPackets);
      txPackets.addText(ifPeer, p.txPackets);
      handshakes.addText(ifPeer, p.handshakes);
      failures.addText(ifPeer, p.handshakeFailures);
      for (const slot of KEYPAIR_SLOTS) {
        const a = p.keypairAges[slot];
        if (a !== null) kpAge.addText(`${ifPeer},slot="${slot}"`, a);
      }
      staged.addText(ifPeer, p.stagedPackets);
    }
  }
}
