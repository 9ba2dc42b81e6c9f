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
// Our server's limits (see server.ts); wireguard-go has none of these.
export const EBUSY = Errno.EBUSY; // too many connections at once
export const EMSGSIZE = Errno.EMSGSIZE; // a set transaction longer than its limit (bytes or lines)
export const ENOBUFS = Errno.ENOBUFS; // the connections together hold more than their budget
export const ETIMEDOUT = 110; // a connection idle longer than the idle timeout

export const DEFAULT_SOCKET_DIR = '/var/run/wireguard';

/** /var/run/wireguard/IFNAME.sock, where `wg` looks for a userspace interface. */
export function uapiSocketPath(ifname: string, dir: string = DEFAULT_SOCKET_DIR): string {
  return `${dir}/${ifname}.sock`;
}

export type ParseSetResult = { change: DeviceChange } | SetFailure;

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

/**
 * A value as it appears in a message: quoted, unless it looks like key material (a long run of
 * hex or base64 characters, which no other value has), since a key sent under the wrong name
 * must not reach a log.
 */
const keyLike = (s: string): boolean => /[A-Za-z0-9+/=]{16,}/.test(s);
const echo = (s: string): string => (keyLike(s) ? `(a value of ${s.length} characters)` : quote(s));

/**
 * An unknown key name as it appears in a message: only when it looks like a name (letters and
 * '_', as every real key), since a line with a misplaced '=' may start with key material.
 */
const echoKey = (k: string): string => (/^[A-Za-z_]{1,32}$/.test(k) ? `: ${quote(k)}` : ` of ${k.length} characters`);

/** A set transaction that cannot be applied: its (positive) errno and a one-line reason. */
export interface SetFailure {
  errno: number;
  message: string;
}

const fail = (errno: number, message: string): SetFailure => ({ errno, message });

/**
 * Heap bytes a peer section holds while its transaction is open (its PeerChange, public key,
 * preshared key, endpoint and bookkeeping): an upper estimate, measured on V8 at ~400.
 */
const PEER_SECTION_BYTES = 512;
/** What the change itself and the parser hold before any line (an estimate). */
const BASE_BYTES = 256;
/** One stored allowed IP: three doubles (see CidrStore), 24 bytes. */
const CIDR_SLOT = 3;
const CIDR_SLOT_BYTES = 24;
/** Allowed IPs per storage chunk: 192 KiB a chunk, above V8's 128 KiB regular object limit. */
const CIDRS_PER_CHUNK = 8192;

const TWO32 = 2 ** 32;
const TWO8 = 2 ** 8;

/** Bytes [at, at + 6) of `b` (zeros past its end) as one integer below 2^48. */
function six(b: Uint8Array, at: number): number {
  let v = 0;
  for (let i = at; i < at + 6; i++) v = v * TWO8 + (b[i] ?? 0);
  return v;
}

function unsix(v: number, out: Uint8Array, at: number): void {
  for (let i = at + 5; i >= at; i--) {
    if (i < out.length) out[i] = v % TWO8;
    v = Math.floor(v / TWO8);
  }
}

/**
 * The allowed IPs of an open transaction, 24 bytes each instead of one Cidr object (~160 bytes
 * on V8) per line: what an open transaction holds stays below the size of its text. Cidr
 * objects are made only by `take`, when the transaction is applied.
 *
 * An entry is three doubles in a plain array (exact integers below 2^53): the family and the
 * prefix with address bytes 0-3, then bytes 4-9, then bytes 10-15. Plain arrays of doubles
 * this size live in V8's large-object space, whose pages V8 unmaps as soon as a collection
 * finds them dead; typed arrays would be malloc'd, and the C heap, fragmented by socket reads
 * meanwhile, often keeps such memory resident after it is freed.
 */
class CidrStore {
  private chunks: number[][] = [];
  private n = 0;

  get length(): number {
    return this.n;
  }

  /** Bytes allocated. */
  get bytes(): number {
    return this.chunks.length * CIDRS_PER_CHUNK * CIDR_SLOT_BYTES;
  }

  push(c: Cidr): void {
    const ci = Math.floor(this.n / CIDRS_PER_CHUNK);
    if (ci === this.chunks.length) this.chunks.push(new Array<number>(CIDRS_PER_CHUNK * CIDR_SLOT).fill(0.5));
    const chunk = this.chunks[ci]!;
    const off = (this.n % CIDRS_PER_CHUNK) * CIDR_SLOT;
    const b = c.bytes;
    chunk[off] = (c.prefix + (c.family === 6 ? 256 : 0)) * TWO32 + (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0);
    chunk[off + 1] = c.family === 6 ? six(b, 4) : 0;
    chunk[off + 2] = c.family === 6 ? six(b, 10) : 0;
    this.n++;
  }

  /** Forget every entry from index `n` on (and the chunks no longer used). */
  truncate(n: number): void {
    if (n >= this.n) return;
    this.n = n;
    this.chunks.length = Math.ceil(n / CIDRS_PER_CHUNK);
  }

  /** Entries [from, to) as Cidr objects (fresh copies). */
  take(from: number, to: number): Cidr[] {
    const out: Cidr[] = new Array<Cidr>(to - from);
    for (let i = from; i < to; i++) {
      const chunk = this.chunks[Math.floor(i / CIDRS_PER_CHUNK)]!;
      const off = (i % CIDRS_PER_CHUNK) * CIDR_SLOT;
      const head = chunk[off]!;
      const tag = Math.floor(head / TWO32);
      const family = tag >= 256 ? 6 : 4;
      const bytes = new Uint8Array(family === 4 ? 4 : 16);
      const lo = head % TWO32;
      bytes[0] = lo >>> 24;
      bytes[1] = (lo >>> 16) & 255;
      bytes[2] = (lo >>> 8) & 255;
      bytes[3] = lo & 255;
      if (family === 6) {
        unsix(chunk[off + 1]!, bytes, 4);
        unsix(chunk[off + 2]!, bytes, 10);
      }
      out[i - from] = { family, bytes, prefix: tag & 255 };
    }
    return out;
  }

  clear(): void {
    this.chunks = [];
    this.n = 0;
  }
}

/**
 * An incremental parser for one `set=1` transaction: feed it the key=value lines as they
 * arrive (`line`), then `finish` it at the blank line. Each line is validated when it arrives
 * and only its validated meaning is kept (allowed IPs compactly, see CidrStore), never the
 * text, so `heldBytes` (what the open transaction holds) stays bounded by its input.
 *
 * Nothing is applied here: `finish` returns either the whole change, when every line was
 * valid, or the first failure (EINVAL for a bad key or value, EPROTO for a line without '=').
 * After a failure later lines are only counted, not parsed, and hold nothing.
 *
 * Semantics follow wireguard-go: device keys (private_key, listen_port, fwmark, replace_peers)
 * come before the first public_key; every public_key starts a peer section; `remove=true`
 * makes the rest of its section ignored (but still validated); `replace_allowed_ips=true`
 * drops the allowed IPs listed before it in the same section too. `zoneIndex` resolves
 * interface names in endpoint zones (see parseSet).
 */
export class SetParser {
  private change: DeviceChange = { peers: [] };
  private peer: PeerChange | null = null;
  /** Index in `cidrs` where each peer section's allowed IPs start (parallel to change.peers). */
  private starts: number[] = [];
  private readonly cidrs = new CidrStore();
  private failure: SetFailure | null = null;
  private finished = false;

  constructor(private readonly zoneIndex: ZoneResolver = numericZonesOnly) {}

  /** The first failure so far, or null while every line was valid. */
  get failed(): SetFailure | null {
    return this.failure;
  }

  /** An upper estimate of the heap bytes this open transaction holds. */
  get heldBytes(): number {
    if (this.failure || this.finished) return 0;
    return BASE_BYTES + this.change.peers.length * PEER_SECTION_BYTES + this.cidrs.bytes;
  }

  /**
   * One key=value line (without its '\n'; the blank line that ends the transaction goes to
   * `finish` instead). Returns false once the transaction has failed.
   */
  line(line: string): boolean {
    if (this.failure || this.finished) return false;
    const f = this.parseLine(line);
    if (f) {
      this.failure = f;
      this.release();
      return false;
    }
    return true;
  }

  /** End of the transaction: the validated change, or the first failure. The parser is spent. */
  finish(): ParseSetResult {
    if (this.finished) return fail(ENOANO, 'set transaction already finished');
    this.finished = true;
    if (this.failure) return this.failure;
    const change = this.change;
    const peers = change.peers;
    for (let i = 0; i < peers.length; i++) {
      const p = peers[i]!;
      if (p.remove) {
        // The other fields are ignored for a removed peer: make that explicit.
        delete p.updateOnly;
        delete p.presharedKey;
        delete p.endpoint;
        delete p.persistentKeepalive;
        delete p.replaceAllowedIps;
        p.allowedIps = [];
      } else {
        p.allowedIps = this.cidrs.take(this.starts[i]!, i + 1 < peers.length ? this.starts[i + 1]! : this.cidrs.length);
      }
    }
    this.release();
    return { change };
  }

  private release(): void {
    this.change = { peers: [] };
    this.peer = null;
    this.starts = [];
    this.cidrs.clear();
  }

  private parseLine(line: string): SetFailure | null {
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
      this.peer = { publicKey: pk, allowedIps: [] };
      this.change.peers.push(this.peer);
      this.starts.push(this.cidrs.length);
      return null;
    }

    const peer = this.peer;
    if (peer === null) {
      const change = this.change;
      switch (key) {
        case 'private_key': {
          let k: Uint8Array;
          try {
            k = decodeHexKey(value, 'private_key');
          } catch (e) {
            return fail(EINVAL, `failed to set private_key: ${(e as Error).message}`);
          }
          change.privateKey = isZero(k) ? null : k;
          return null;
        }
        case 'listen_port': {
          const p = parseUint(value, 65535);
          if (p === null) return fail(EINVAL, `failed to parse listen_port: invalid value ${echo(value)}`);
          change.listenPort = p;
          return null;
        }
        case 'fwmark': {
          const m = parseUint(value, 0xffffffff);
          if (m === null) return fail(EINVAL, `invalid fwmark: ${echo(value)}`);
          change.fwmark = m;
          return null;
        }
        case 'replace_peers':
          if (value !== 'true') return fail(EINVAL, `failed to set replace_peers, invalid value: ${echo(value)}`);
          change.replacePeers = true;
          return null;
        default:
          return fail(EINVAL, `invalid UAPI device key${echoKey(key)}`);
      }
    }

    // Peer section. Lines after remove=true are validated but have no effect.
    const live = !peer.remove;
    const sectionStart = this.starts[this.starts.length - 1]!;
    switch (key) {
      case 'update_only':
        if (value !== 'true') return fail(EINVAL, `failed to set update only, invalid value: ${echo(value)}`);
        if (live) peer.updateOnly = true;
        return null;
      case 'remove':
        if (value !== 'true') return fail(EINVAL, `failed to set remove, invalid value: ${echo(value)}`);
        peer.remove = true;
        this.cidrs.truncate(sectionStart); // a removed peer's allowed IPs are dropped
        return null;
      case 'preshared_key': {
        let k: Uint8Array;
        try {
          k = decodeHexKey(value, 'preshared_key');
        } catch (e) {
          return fail(EINVAL, `failed to set preshared key: ${(e as Error).message}`);
        }
        if (live) peer.presharedKey = isZero(k) ? null : k;
        return null;
      }
      case 'endpoint': {
        const ep = parseEndpoint(value, this.zoneIndex);
        if (typeof ep === 'string') return fail(EINVAL, `failed to set endpoint: ${keyLike(value) ? `invalid endpoint ${echo(value)}` : ep}`);
        if (live) peer.endpoint = ep;
        return null;
      }
      case 'persistent_keepalive_interval': {
        const s = parseUint(value, 65535);
        if (s === null) return fail(EINVAL, `failed to set persistent keepalive interval: invalid value ${echo(value)}`);
        if (live) peer.persistentKeepalive = s;
        return null;
      }
      case 'replace_allowed_ips':
        if (value !== 'true') return fail(EINVAL, `failed to replace allowedips, invalid value: ${echo(value)}`);
        if (live) {
          peer.replaceAllowedIps = true;
          this.cidrs.truncate(sectionStart);
        }
        return null;
      case 'allowed_ip': {
        let c: Cidr;
        try {
          c = parseCidr(value);
        } catch (e) {
          return fail(EINVAL, `failed to set allowed ip: ${keyLike(value) ? `invalid CIDR ${echo(value)}` : (e as Error).message}`);
        }
        if (live) this.cidrs.push(c);
        return null;
      }
      case 'protocol_version':
        if (value !== '1') return fail(EINVAL, `invalid protocol version: ${echo(value)}`);
        return null;
      default:
        return fail(EINVAL, `invalid UAPI peer key${echoKey(key)}`);
    }
  }
}

/**
 * Parse and validate a whole `set=1` transaction: the key=value lines after "set=1" (an array
 * of lines, or text separated by '\n'; an empty line ends the transaction, as on the wire).
 * Nothing is applied here: either every line is valid and the change is returned, or the first
 * failure (see SetParser, which this feeds line by line).
 *
 * `zoneIndex` resolves interface names in link-local endpoint zones ("[fe80::1%eth0]:port");
 * the daemon passes the lookup of the namespace its UDP socket lives in (tun/ip.ts).
 */
export function parseSet(input: readonly string[] | string, zoneIndex: ZoneResolver = numericZonesOnly): ParseSetResult {
  const lines = typeof input === 'string' ? input.split('\n') : input;
  const parser = new SetParser(zoneIndex);
  for (const line of lines) {
    if (line === '') break; // blank line: end of the transaction
    if (!parser.line(line)) break;
  }
  return parser.finish();
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
