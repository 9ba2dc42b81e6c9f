/**
 * The cross-platform userspace configuration protocol (wireguard.com/xplatform), text only:
 * parsing a `set=1` transaction into a validated DeviceChange, formatting the `get=1` answer,
 * and the inverse directions for clients (formatSet, parseGetResponse).
 *
 * Errno values in this module's API are positive (EINVAL = 22). On the wire wireguard-go
 * writes them negated ("errno=-22"), and `wg` relies on that sign (it sets errno = -value
 * before perror), so the server negates them; see `formatErrno` / `parseErrno`.
 */
import { decodeHexKey, encodeHexKey, isZero } from '../../crypto/keys.js';
import { publicKey as derivePublicKey } from '../../crypto/x25519.js';
import { formatCidr, formatEndpoint, numericZonesOnly, parseCidr, parseEndpoint, parseUint, type ZoneResolver } from '../../noise/iptext.js';
import { quote } from '../../noise/quote.js';
import { type Cidr, type DeviceChange, type DeviceStatus, type PeerChange, type PeerStatus, peerStatus } from '../../noise/types.js';
import { Errno } from '../../tun/errno.js';

/** The errno values wireguard-go's UAPI uses (ipc/uapi_unix.go), as positive numbers. */
export const EIO = Errno.EIO; // IpcErrorIO: reading or writing the socket failed
export const EINVAL = Errno.EINVAL; // IpcErrorInvalid: a key or value is invalid
export const ENOANO = Errno.ENOANO; // IpcErrorUnknown: an unexpected internal failure
export const EPROTO = Errno.EPROTO; // IpcErrorProtocol: a malformed line (no '='), an unknown operation
export const EADDRINUSE = Errno.EADDRINUSE; // IpcErrorPortInUse: listen_port / fwmark could not be applied

export const DEFAULT_SOCKET_DIR = '/var/run/wireguard';

/** /var/run/wireguard/IFNAME.sock, where `wg` looks for a userspace interface. */
export function uapiSocketPath(ifname: string, dir: string = DEFAULT_SOCKET_DIR): string {
  return `${dir}/${ifname}.sock`;
}

export type ParseSetResult = { change: DeviceChange } | { errno: number; message: string };

/** A UAPI failure with its (positive) errno. */
export class UapiError extends Error {
  override name = 'UapiError';
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(message);
  }
}

const echo = (s: string): string => quote(s);

const fail = (errno: number, message: string): { errno: number; message: string } => ({ errno, message });

/**
 * Parse and validate a whole `set=1` transaction: the key=value lines after "set=1" (an array
 * of lines, or text separated by '\n'; an empty line ends the transaction, as on the wire).
 * Nothing is applied here: either every line is valid and the change is returned, or an errno
 * (EINVAL for a bad key or value, EPROTO for a line without '=') with a message.
 *
 * Semantics follow wireguard-go: device keys (private_key, listen_port, fwmark, replace_peers)
 * come before the first public_key; every public_key starts a peer section; `remove=true`
 * makes the rest of its section ignored (but still validated); `replace_allowed_ips=true`
 * drops the allowed IPs listed before it in the same section too.
 *
 * `zoneIndex` resolves interface names in link-local endpoint zones ("[fe80::1%eth0]:port");
 * the daemon passes the lookup of the namespace its UDP socket lives in (tun/ip.ts).
 */
export function parseSet(input: readonly string[] | string, zoneIndex: ZoneResolver = numericZonesOnly): ParseSetResult {
  const lines = typeof input === 'string' ? input.split('\n') : input;
  const change: DeviceChange = { peers: [] };
  let peer: PeerChange | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') break; // blank line: end of the transaction
    const eq = line.indexOf('=');
    // Not echoed: a mistyped line may hold key material, which never goes to a log.
    if (eq < 0) return fail(EPROTO, `failed to parse a line of ${line.length} characters: no '='`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);

    if (key === 'public_key') {
      let pk: Uint8Array;
      try {
        pk = decodeHexKey(value, 'public_key');
      } catch (e) {
        return fail(EINVAL, `failed to get peer by public key: ${(e as Error).message}`);
      }
      peer = { publicKey: pk, allowedIps: [] };
      change.peers.push(peer);
      continue;
    }

    if (peer === null) {
      switch (key) {
        case 'private_key': {
          let k: Uint8Array;
          try {
            k = decodeHexKey(value, 'private_key');
          } catch (e) {
            return fail(EINVAL, `failed to set private_key: ${(e as Error).message}`);
          }
          change.privateKey = isZero(k) ? null : k;
          break;
        }
        case 'listen_port': {
          const p = parseUint(value, 65535);
          if (p === null) return fail(EINVAL, `failed to parse listen_port: invalid value ${echo(value)}`);
          change.listenPort = p;
          break;
        }
        case 'fwmark': {
          const m = parseUint(value, 0xffffffff);
          if (m === null) return fail(EINVAL, `invalid fwmark: ${echo(value)}`);
          change.fwmark = m;
          break;
        }
        case 'replace_peers':
          if (value !== 'true') return fail(EINVAL, `failed to set replace_peers, invalid value: ${echo(value)}`);
          change.replacePeers = true;
          break;
        default:
          return fail(EINVAL, `invalid UAPI device key: ${echo(key)}`);
      }
      continue;
    }

    // Peer section. Lines after remove=true are validated but have no effect.
    const live = !peer.remove;
    switch (key) {
      case 'update_only':
        if (value !== 'true') return fail(EINVAL, `failed to set update only, invalid value: ${echo(value)}`);
        if (live) peer.updateOnly = true;
        break;
      case 'remove':
        if (value !== 'true') return fail(EINVAL, `failed to set remove, invalid value: ${echo(value)}`);
        peer.remove = true;
        break;
      case 'preshared_key': {
        let k: Uint8Array;
        try {
          k = decodeHexKey(value, 'preshared_key');
        } catch (e) {
          return fail(EINVAL, `failed to set preshared key: ${(e as Error).message}`);
        }
        if (live) peer.presharedKey = isZero(k) ? null : k;
        break;
      }
      case 'endpoint': {
        const ep = parseEndpoint(value, zoneIndex);
        if (typeof ep === 'string') return fail(EINVAL, `failed to set endpoint: ${ep}`);
        if (live) peer.endpoint = ep;
        break;
      }
      case 'persistent_keepalive_interval': {
        const s = parseUint(value, 65535);
        if (s === null) return fail(EINVAL, `failed to set persistent keepalive interval: invalid value ${echo(value)}`);
        if (live) peer.persistentKeepalive = s;
        break;
      }
      case 'replace_allowed_ips':
        if (value !== 'true') return fail(EINVAL, `failed to replace allowedips, invalid value: ${echo(value)}`);
        if (live) {
          peer.replaceAllowedIps = true;
          peer.allowedIps.length = 0;
        }
        break;
      case 'allowed_ip': {
        let c: Cidr;
        try {
          c = parseCidr(value);
        } catch (e) {
          return fail(EINVAL, `failed to set allowed ip: ${(e as Error).message}`);
        }
        if (live) peer.allowedIps.push(c);
        break;
      }
      case 'protocol_version':
        if (value !== '1') return fail(EINVAL, `invalid protocol version: ${echo(value)}`);
        break;
      default:
        return fail(EINVAL, `invalid UAPI peer key: ${echo(key)}`);
    }
  }
  for (const p of change.peers) {
    if (p.remove) {
      // The other fields are ignored for a removed peer: make that explicit.
      delete p.updateOnly;
      delete p.presharedKey;
      delete p.endpoint;
      delete p.persistentKeepalive;
      delete p.replaceAllowedIps;
      p.allowedIps = [];
    }
  }
  return { change };
}

/** An unsigned integer in decimal, never in exponent notation. */
function u64(n: number): string {
  if (!(n > 0)) return '0';
  const t = Math.floor(n);
  return t <= Number.MAX_SAFE_INTEGER ? String(t) : BigInt(t).toString();
}

/**
 * The body of a `get=1` answer: key=value lines in wireguard-go's order, each ending in '\n'
 * (the server appends "errno=0\n\n"). private_key only when set, listen_port and fwmark only
 * when non-zero; per peer public_key, preshared_key (all zeros when there is none, as
 * wireguard-go and the kernel report it), protocol_version=1, endpoint when known,
 * last_handshake_time_sec/nsec, tx_bytes, rx_bytes, persistent_keepalive_interval, then one
 * allowed_ip line per prefix.
 */
export function formatGet(status: DeviceStatus): string {
  const out: string[] = [];
  if (status.privateKey && !isZero(status.privateKey)) out.push(`private_key=${encodeHexKey(status.privateKey)}`);
  if (status.listenPort) out.push(`listen_port=${status.listenPort}`);
  if (status.fwmark) out.push(`fwmark=${status.fwmark >>> 0}`);
  const zeroKey = '0'.repeat(64);
  for (const p of status.peers) {
    out.push(`public_key=${encodeHexKey(p.publicKey)}`);
    out.push(`preshared_key=${p.presharedKey ? encodeHexKey(p.presharedKey) : zeroKey}`);
    out.push('protocol_version=1');
    if (p.endpoint) out.push(`endpoint=${formatEndpoint(p.endpoint)}`);
    out.push(`last_handshake_time_sec=${u64(p.lastHandshakeSec)}`);
    out.push(`last_handshake_time_nsec=${u64(p.lastHandshakeNsec)}`);
    out.push(`tx_bytes=${u64(p.txBytes)}`);
    out.push(`rx_bytes=${u64(p.rxBytes)}`);
    out.push(`persistent_keepalive_interval=${p.persistentKeepalive}`);
    for (const c of p.allowedIps) out.push(`allowed_ip=${formatCidr(c)}`);
  }
  return out.length ? out.join('\n') + '\n' : '';
}

/**
 * The key=value lines of a `set=1` transaction for `change` (without "set=1" and the final
 * blank line), as `wg` writes them. parseSet(formatSet(c)) gives c back.
 */
export function formatSet(change: DeviceChange): string[] {
  const out: string[] = [];
  if (change.privateKey !== undefined) {
    out.push(`private_key=${change.privateKey ? encodeHexKey(change.privateKey) : '0'.repeat(64)}`);
  }
  if (change.listenPort !== undefined) out.push(`listen_port=${change.listenPort}`);
  if (change.fwmark !== undefined) out.push(`fwmark=${change.fwmark >>> 0}`);
  if (change.replacePeers) out.push('replace_peers=true');
  for (const p of change.peers) {
    out.push(`public_key=${encodeHexKey(p.publicKey)}`);
    if (p.remove) {
      out.push('remove=true');
      continue;
    }
    if (p.updateOnly) out.push('update_only=true');
    if (p.presharedKey !== undefined) {
      out.push(`preshared_key=${p.presharedKey ? encodeHexKey(p.presharedKey) : '0'.repeat(64)}`);
    }
    if (p.endpoint) out.push(`endpoint=${formatEndpoint(p.endpoint)}`);
    if (p.persistentKeepalive !== undefined) out.push(`persistent_keepalive_interval=${p.persistentKeepalive}`);
    if (p.replaceAllowedIps) out.push('replace_allowed_ips=true');
    for (const c of p.allowedIps) out.push(`allowed_ip=${formatCidr(c)}`);
  }
  return out;
}

/** "errno=-22\n\n" for errno 22 (wireguard-go's sign), "errno=0\n\n" for success. */
export function formatErrno(errno: number): string {
  return errno === 0 ? 'errno=0\n\n' : `errno=${-Math.abs(errno)}\n\n`;
}

/** The errno of an "errno=N" value as a positive number (either sign accepted), or null. */
export function parseErrno(v: string): number | null {
  if (!/^-?[0-9]{1,10}$/.test(v)) return null;
  return Math.abs(Number(v));
}

/** What a `get=1` answer says: the device status, plus the public key derived from the private key. */
export interface UapiDeviceInfo extends DeviceStatus {
  publicKey: Uint8Array | null;
}

/**
 * Parse a whole `get=1` answer (key=value lines ending with "errno=N" and a blank line).
 * Throws UapiError with the errno when it is not 0, or with EPROTO when the answer is malformed.
 */
export function parseGetResponse(text: string, zoneIndex: ZoneResolver = numericZonesOnly): UapiDeviceInfo {
  const info: UapiDeviceInfo = { privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
  let peer: PeerStatus | null = null;
  let errno: number | null = null;
  const lines = text.split('\n');
  const bad = (line: string, why: string) => new UapiError(`malformed UAPI get answer at ${echo(line)}: ${why}`, EPROTO);
  for (const line of lines) {
    if (line === '') break;
    const eq = line.indexOf('=');
    if (eq < 0) throw bad(line, "no '='");
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'errno') {
      errno = parseErrno(value);
      if (errno === null) throw bad(line, 'invalid errno');
      break;
    }
    const num = (max: number): number => {
      const n = parseUint(value, max);
      if (n === null) throw bad(line, 'invalid number');
      return n;
    };
    const key32 = (): Uint8Array => {
      try {
        return decodeHexKey(value, key);
      } catch (e) {
        throw bad(line, (e as Error).message);
      }
    };
    if (key === 'public_key') {
      peer = peerStatus(key32());
      info.peers.push(peer);
      continue;
    }
    if (peer === null) {
      switch (key) {
        case 'private_key': {
          const k = key32();
          if (!isZero(k)) {
            info.privateKey = k;
            info.publicKey = derivePublicKey(k);
          }
          break;
        }
        case 'listen_port':
          info.listenPort = num(65535);
          break;
        case 'fwmark':
          info.fwmark = num(0xffffffff);
          break;
        default:
          break; // unknown device keys (extensions) are skipped
      }
      continue;
    }
    switch (key) {
      case 'preshared_key': {
        const k = key32();
        peer.presharedKey = isZero(k) ? null : k;
        break;
      }
      case 'endpoint': {
        // A zone naming an interface this process cannot see (the daemon's socket may live in
        // another namespace) is dropped rather than failing the whole answer.
        let ep = parseEndpoint(value, zoneIndex);
        if (typeof ep === 'string' && value.includes('%')) ep = parseEndpoint(value.replace(/%[^\]]*\]/, ']'));
        if (typeof ep === 'string') throw bad(line, ep);
        peer.endpoint = ep;
        break;
      }
      case 'persistent_keepalive_interval':
        peer.persistentKeepalive = num(65535);
        break;
      case 'allowed_ip':
        try {
          peer.allowedIps.push(parseCidr(value));
        } catch (e) {
          throw bad(line, (e as Error).message);
        }
        break;
      case 'last_handshake_time_sec':
        peer.lastHandshakeSec = num(Number.MAX_VALUE);
        break;
      case 'last_handshake_time_nsec':
        peer.lastHandshakeNsec = num(Number.MAX_VALUE);
        break;
      case 'tx_bytes':
        peer.txBytes = num(Number.MAX_VALUE);
        break;
      case 'rx_bytes':
        peer.rxBytes = num(Number.MAX_VALUE);
        break;
      case 'protocol_version':
        if (value !== '1') throw bad(line, 'unsupported protocol version');
        break;
      default:
        break;
    }
  }
  if (errno === null) throw new UapiError('malformed UAPI get answer: no errno line', EPROTO);
  if (errno !== 0) throw new UapiError(`UAPI get failed: errno ${errno}`, errno);
  return info;
}
