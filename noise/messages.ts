/**
 * Wire formats (whitepaper §5.4). All integers are little endian. Every message starts with a
 * 4-byte header: the type in the first byte and three reserved bytes that must be zero (the
 * kernel reads the header as one le32, so non-zero reserved bytes make an unknown type).
 *
 *   initiation (148): type | sender u32 | ephemeral 32 | static 32+16 | timestamp 12+16 | mac1 16 | mac2 16
 *   response    (92): type | sender u32 | receiver u32 | ephemeral 32 | empty 0+16 | mac1 16 | mac2 16
 *   cookie      (64): type | receiver u32 | nonce 24 | cookie 16+16
 *   transport (>=32): type | receiver u32 | counter u64 | packet (padded to 16) + 16
 *
 * Parsers never throw: they return a parse error instead. Parsed fields are views into the
 * input buffer (no copies), so they are only valid as long as the input is.
 */
import {
  COOKIE_LEN,
  COOKIE_NONCE_LEN,
  COOKIE_REPLY_SIZE,
  INITIATION_SIZE,
  KEY_LEN,
  MAX_DATAGRAM_SIZE,
  MAX_PLAINTEXT_SIZE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_PADDING_MULTIPLE,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  RESPONSE_SIZE,
  TAG_LEN,
  TIMESTAMP_LEN,
  TRANSPORT_HEADER_SIZE,
  TRANSPORT_MIN_SIZE,
} from './constants.js';

export type MessageType = typeof MESSAGE_INITIATION | typeof MESSAGE_RESPONSE | typeof MESSAGE_COOKIE_REPLY | typeof MESSAGE_TRANSPORT;

/** Why a datagram is not a well-formed message. */
export type MessageError = 'invalid-length' | 'invalid-type' | 'invalid-reserved';

export interface Initiation {
  sender: number;
  ephemeral: Uint8Array;
  encryptedStatic: Uint8Array;
  encryptedTimestamp: Uint8Array;
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export interface Response {
  sender: number;
  receiver: number;
  ephemeral: Uint8Array;
  encryptedNothing: Uint8Array;
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export interface CookieReply {
  receiver: number;
  nonce: Uint8Array;
  encryptedCookie: Uint8Array;
}

export interface TransportHeader {
  receiver: number;
  /** Exact below 2^53; see MAX_COUNTER in constants.ts. */
  counter: number;
}

/** Field offsets, shared by the parsers, the serializers and the MAC code. */
export const INITIATION = {
  sender: 4,
  ephemeral: 8,
  static: 40,
  staticLen: KEY_LEN + TAG_LEN,
  timestamp: 88,
  timestampLen: TIMESTAMP_LEN + TAG_LEN,
  mac1: 116,
  mac2: 132,
} as const;

export const RESPONSE = {
  sender: 4,
  receiver: 8,
  ephemeral: 12,
  empty: 44,
  emptyLen: TAG_LEN,
  mac1: 60,
  mac2: 76,
} as const;

export const COOKIE_REPLY = {
  receiver: 4,
  nonce: 8,
  cookie: 32,
  cookieLen: COOKIE_LEN + TAG_LEN,
} as const;

export const TRANSPORT = {
  receiver: 4,
  counter: 8,
  payload: TRANSPORT_HEADER_SIZE,
} as const;

export function readU32(buf: Uint8Array, off: number): number {
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;
}

export function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v & 0xff;
  buf[off + 1] = (v >>> 8) & 0xff;
  buf[off + 2] = (v >>> 16) & 0xff;
  buf[off + 3] = (v >>> 24) & 0xff;
}

/** A u64 as a number: exact below 2^53, rounded above (callers reject those, see MAX_COUNTER). */
export function readU64(buf: Uint8Array, off: number): number {
  return readU32(buf, off) + readU32(buf, off + 4) * 0x100000000;
}

export function writeU64(buf: Uint8Array, off: number, v: number): void {
  writeU32(buf, off, v >>> 0);
  writeU32(buf, off + 4, Math.floor(v / 0x100000000) >>> 0);
}

function writeHeader(buf: Uint8Array, type: MessageType): void {
  buf[0] = type;
  buf[1] = buf[2] = buf[3] = 0;
}

/**
 * The type of a datagram after checking its header and its length for that type, or why it is
 * not a message. Handshake messages have exact sizes; transport messages need at least 32
 * bytes (header + tag) and at most MAX_DATAGRAM_SIZE.
 */
export function messageType(buf: Uint8Array): MessageType | MessageError {
  const n = buf.length;
  if (n < 4) return 'invalid-length';
  const t = buf[0]!;
  if (t < MESSAGE_INITIATION || t > MESSAGE_TRANSPORT) return 'invalid-type';
  if ((buf[1]! | buf[2]! | buf[3]!) !== 0) return 'invalid-reserved';
  switch (t) {
    case MESSAGE_INITIATION:
      return n === INITIATION_SIZE ? MESSAGE_INITIATION : 'invalid-length';
    case MESSAGE_RESPONSE:
      return n === RESPONSE_SIZE ? MESSAGE_RESPONSE : 'invalid-length';
    case MESSAGE_COOKIE_REPLY:
      return n === COOKIE_REPLY_SIZE ? MESSAGE_COOKIE_REPLY : 'invalid-length';
    default:
      return n >= TRANSPORT_MIN_SIZE && n <= MAX_DATAGRAM_SIZE ? MESSAGE_TRANSPORT : 'invalid-length';
  }
}

export function parseInitiation(buf: Uint8Array): Initiation | MessageError {
  const t = messageType(buf);
  if (t !== MESSAGE_INITIATION) return typeof t === 'string' ? t : 'invalid-type';
  const o = INITIATION;
  return {
    sender: readU32(buf, o.sender),
    ephemeral: buf.subarray(o.ephemeral, o.ephemeral + KEY_LEN),
    encryptedStatic: buf.subarray(o.static, o.static + o.staticLen),
    encryptedTimestamp: buf.subarray(o.timestamp, o.timestamp + o.timestampLen),
    mac1: buf.subarray(o.mac1, o.mac1 + COOKIE_LEN),
    mac2: buf.subarray(o.mac2, o.mac2 + COOKIE_LEN),
  };
}

export function serializeInitiation(m: Initiation, out: Uint8Array = new Uint8Array(INITIATION_SIZE)): Uint8Array {
  const o = INITIATION;
  writeHeader(out, MESSAGE_INITIATION);
  writeU32(out, o.sender, m.sender);
  out.set(m.ephemeral, o.ephemeral);
  out.set(m.encryptedStatic, o.static);
  out.set(m.encryptedTimestamp, o.timestamp);
  out.set(m.mac1, o.mac1);
  out.set(m.mac2, o.mac2);
  return out;
}

export function parseResponse(buf: Uint8Array): Response | MessageError {
  const t = messageType(buf);
  if (t !== MESSAGE_RESPONSE) return typeof t === 'string' ? t : 'invalid-type';
  const o = RESPONSE;
  return {
    sender: readU32(buf, o.sender),
    receiver: readU32(buf, o.receiver),
    ephemeral: buf.subarray(o.ephemeral, o.ephemeral + KEY_LEN),
    encryptedNothing: buf.subarray(o.empty, o.empty + o.emptyLen),
    mac1: buf.subarray(o.mac1, o.mac1 + COOKIE_LEN),
    mac2: buf.subarray(o.mac2, o.mac2 + COOKIE_LEN),
  };
}

export function serializeResponse(m: Response, out: Uint8Array = new Uint8Array(RESPONSE_SIZE)): Uint8Array {
  const o = RESPONSE;
  writeHeader(out, MESSAGE_RESPONSE);
  writeU32(out, o.sender, m.sender);
  writeU32(out, o.receiver, m.receiver);
  out.set(m.ephemeral, o.ephemeral);
  out.set(m.encryptedNothing, o.empty);
  out.set(m.mac1, o.mac1);
  out.set(m.mac2, o.mac2);
  return out;
}

export function parseCookieReply(buf: Uint8Array): CookieReply | MessageError {
  const t = messageType(buf);
  if (t !== MESSAGE_COOKIE_REPLY) return typeof t === 'string' ? t : 'invalid-type';
  const o = COOKIE_REPLY;
  return {
    receiver: readU32(buf, o.receiver),
    nonce: buf.subarray(o.nonce, o.nonce + COOKIE_NONCE_LEN),
    encryptedCookie: buf.subarray(o.cookie, o.cookie + o.cookieLen),
  };
}

export function serializeCookieReply(m: CookieReply, out: Uint8Array = new Uint8Array(COOKIE_REPLY_SIZE)): Uint8Array {
  const o = COOKIE_REPLY;
  writeHeader(out, MESSAGE_COOKIE_REPLY);
  writeU32(out, o.receiver, m.receiver);
  out.set(m.nonce, o.nonce);
  out.set(m.encryptedCookie, o.cookie);
  return out;
}

export function parseTransportHeader(buf: Uint8Array): TransportHeader | MessageError {
  const t = messageType(buf);
  if (t !== MESSAGE_TRANSPORT) return typeof t === 'string' ? t : 'invalid-type';
  return { receiver: readU32(buf, TRANSPORT.receiver), counter: readU64(buf, TRANSPORT.counter) };
}

/** Write a transport header (type, receiver index, counter) at the start of `out`. */
export function writeTransportHeader(out: Uint8Array, receiver: number, counter: number): void {
  writeHeader(out, MESSAGE_TRANSPORT);
  writeU32(out, TRANSPORT.receiver, receiver);
  writeU64(out, TRANSPORT.counter, counter);
}

/**
 * Zero padding added to a plaintext of `n` bytes: up to the next multiple of 16, but (as the
 * kernel does with the MTU) never beyond `limit` bytes of padded plaintext. Keepalive: 0.
 */
export function paddingFor(n: number, limit: number = MAX_PLAINTEXT_SIZE): number {
  const aligned = n + ((MESSAGE_PADDING_MULTIPLE - (n % MESSAGE_PADDING_MULTIPLE)) % MESSAGE_PADDING_MULTIPLE);
  return aligned <= limit ? aligned - n : Math.max(n, limit) - n;
}

/** Size of the transport message carrying an `n`-byte packet. */
export function transportSize(n: number, limit: number = MAX_PLAINTEXT_SIZE): number {
  return TRANSPORT_MIN_SIZE + n + paddingFor(n, limit);
}
