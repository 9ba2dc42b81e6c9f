/**
 * `wg show IFNAME` output for a device's status (from a UAPI get), byte for byte as
 * wireguard-tools prints it (show.c: pretty_print), colours included when asked for.
 * The private key is always "(hidden)": cwg never prints a private key here.
 */
import { encodeBase64Key } from '../../crypto/keys.js';
import { formatEndpoint, formatIp } from '../../noise/iptext.js';
import type { DeviceStatus, PeerStatus } from '../../noise/types.js';

const RESET = '\x1b[0m';
const FG_RED = '\x1b[31m';
const FG_GREEN = '\x1b[32m';
const FG_YELLOW = '\x1b[33m';
const FG_CYAN = '\x1b[36m';
const BOLD = '\x1b[1m';

export interface ShowOptions {
  /** Wall-clock seconds now (for "latest handshake: ... ago"). */
  nowSec: number;
  color: boolean;
}

/** wg's rule: colour when stdout is a terminal, unless WG_COLOR_MODE says always/never. */
export function wantColor(isTty: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.WG_COLOR_MODE === 'always') return true;
  if (env.WG_COLOR_MODE === 'never') return false;
  return isTty;
}

class Painter {
  constructor(private readonly color: boolean) {}
  p(code: string): string {
    return this.color ? code : '';
  }
}

function prettyTime(left: number, c: Painter): string {
  const parts: string[] = [];
  const years = Math.floor(left / (365 * 24 * 3600));
  left %= 365 * 24 * 3600;
  const days = Math.floor(left / (24 * 3600));
  left %= 24 * 3600;
  const hours = Math.floor(left / 3600);
  left %= 3600;
  const minutes = Math.floor(left / 60);
  const seconds = left % 60;
  const unit = (n: number, u: string) => parts.push(`${n} ${c.p(FG_CYAN)}${u}${n === 1 ? '' : 's'}${c.p(RESET)}`);
  if (years) unit(years, 'year');
  if (days) unit(days, 'day');
  if (hours) unit(hours, 'hour');
  if (minutes) unit(minutes, 'minute');
  if (seconds) unit(seconds, 'second');
  return parts.join(', ');
}

function ago(sec: number, nowSec: number, c: Painter): string {
  if (nowSec === sec) return 'Now';
  if (nowSec < sec) return `(${c.p(FG_RED)}System clock wound backward; connection problems may ensue.${c.p(RESET)})`;
  return `${prettyTime(nowSec - sec, c)} ago`;
}

function bytes(b: number, c: Painter): string {
  const unit = (u: string) => ` ${c.p(FG_CYAN)}${u}${c.p(RESET)}`;
  if (b < 1024) return `${b}${unit('B')}`;
  if (b < 1024 ** 2) return `${(b / 1024).toFixed(2)}${unit('KiB')}`;
  if (b < 1024 ** 3) return `${(b / 1024 ** 2).toFixed(2)}${unit('MiB')}`;
  if (b < 1024 ** 4) return `${(b / 1024 ** 3).toFixed(2)}${unit('GiB')}`;
  return `${(b / 1024 ** 4).toFixed(2)}${unit('TiB')}`;
}

function isZeroKey(k: Uint8Array | null): boolean {
  return !k || k.every((x) => x === 0);
}

/**
 * The text `wg show <name>` prints for this status (ends with a newline). `devicePublicKey`
 * is the public key of the device's private key, null when it has none; `st.privateKey` is
 * not looked at.
 */
export function formatShow(name: string, st: DeviceStatus, devicePublicKey: Uint8Array | null, opts: ShowOptions): string {
  const c = new Painter(opts.color);
  const B = (label: string) => `  ${c.p(BOLD)}${label}${c.p(RESET)}: `;
  let out = c.p(RESET);
  out += `${c.p(FG_GREEN + BOLD)}interface${c.p(RESET)}: ${c.p(FG_GREEN)}${name}${c.p(RESET)}\n`;
  if (devicePublicKey) {
    out += `${B('public key')}${encodeBase64Key(devicePublicKey)}\n`;
    out += `${B('private key')}(hidden)\n`;
  }
  if (st.listenPort) out += `${B('listening port')}${st.listenPort}\n`;
  if (st.fwmark) out += `${B('fwmark')}0x${st.fwmark.toString(16)}\n`;
  // show.c sorts peers by latest handshake, most recent first.
  const peers: PeerStatus[] = [...st.peers].sort((a, b) => b.lastHandshakeSec - a.lastHandshakeSec || b.lastHandshakeNsec - a.lastHandshakeNsec);
  if (peers.length) out += '\n';
  peers.forEach((peer, i) => {
    out += `${c.p(FG_YELLOW + BOLD)}peer${c.p(RESET)}: ${c.p(FG_YELLOW)}${encodeBase64Key(peer.publicKey)}${c.p(RESET)}\n`;
    if (!isZeroKey(peer.presharedKey)) out += `${B('preshared key')}(hidden)\n`;
    if (peer.endpoint) out += `${B('endpoint')}${formatEndpoint(peer.endpoint)}\n`;
    out += B('allowed ips');
    if (peer.allowedIps.length) {
      out += peer.allowedIps.map((a) => `${formatIp(a.family, a.bytes)}${c.p(FG_CYAN)}/${c.p(RESET)}${a.prefix}`).join(', ');
      out += '\n';
    } else out += '(none)\n';
    if (peer.lastHandshakeSec) out += `${B('latest handshake')}${ago(peer.lastHandshakeSec, opts.nowSec, c)}\n`;
    if (peer.rxBytes || peer.txBytes) out += `${B('transfer')}${bytes(peer.rxBytes, c)} received, ${bytes(peer.txBytes, c)} sent\n`;
    if (peer.persistentKeepalive) out += `${B('persistent keepalive')}every ${prettyTime(peer.persistentKeepalive, c)}\n`;
    if (i < peers.length - 1) out += '\n';
  });
  return out;
}
