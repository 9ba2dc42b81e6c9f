/**
 * Where the metrics are served: `127.0.0.1:9586`, `[::1]:9586`, or an absolute UNIX socket
 * path. Only literal IP addresses (a host name could resolve elsewhere tomorrow). An address
 * that is not loopback is refused unless the administrator allows it explicitly: the metrics
 * name every peer's public key and endpoint, which is nobody else's business.
 */
import { parseIp } from '../../noise/iptext.js';
import { quote } from '../../noise/quote.js';
import { SUN_PATH_MAX } from '../socket-file.js';

export type MetricsAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly family: 4 | 6 }
  | { readonly kind: 'unix'; readonly path: string };

/** 127.0.0.0/8, ::1, and ::ffff:127.0.0.0/104 (IPv4-mapped loopback). */
export function isLoopback(family: 4 | 6, b: Uint8Array): boolean {
  if (family === 4) return b[0] === 127;
  if (b.subarray(0, 15).every((x) => x === 0) && b[15] === 1) return true;
  return b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff && b[12] === 127;
}

/**
 * Parse a metrics address; a string is the problem, to be shown after the value. `allowPublic`
 * lets a non-loopback address through; `allowHint` says how the administrator allows it.
 */
export function parseMetricsAddress(text: string, allowPublic: boolean, allowHint: string): MetricsAddress | string {
  if (text.startsWith('/')) {
    if (text.includes('\0')) return 'a socket path cannot contain NUL';
    if (text.endsWith('/')) return 'a socket path names a file, not a directory';
    if (Buffer.byteLength(text) > SUN_PATH_MAX) return `a UNIX socket path is at most ${SUN_PATH_MAX} bytes`;
    return { kind: 'unix', path: text };
  }
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(text);
  if (m === null) {
    return text.split(':').length > 2
      ? 'write an IPv6 address in brackets, e.g. [::1]:9586'
      : 'expected ADDRESS:PORT (e.g. 127.0.0.1:9586 or [::1]:9586) or an absolute UNIX socket path';
  }
  const hostText = m[1] ?? m[2]!;
  const ip = parseIp(hostText);
  if (ip === null || (m[1] !== undefined && ip.family !== 6) || (m[2] !== undefined && ip.family !== 4)) {
    return `${quote(hostText)} is not an IP address (write 127.0.0.1:9586, [::1]:9586 or a socket path; host names are not resolved)`;
  }
  const portText = m[3]!;
  if (!/^[1-9][0-9]{0,4}$/.test(portText) || Number(portText) > 65535) return `invalid port ${quote(portText)} (1-65535)`;
  if (!allowPublic && !isLoopback(ip.family, ip.bytes)) {
    return `${hostText} is not a loopback address: the metrics show every peer's public key and endpoint, so they are served only on loopback or a UNIX socket unless ${allowHint}`;
  }
  return { kind: 'tcp', host: hostText, port: Number(portText), family: ip.family };
}

/** The address as it is written. */
export function formatMetricsAddress(a: MetricsAddress): string {
  if (a.kind === 'unix') return a.path;
  return a.family === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
