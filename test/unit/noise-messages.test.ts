import { describe, expect, it } from 'vitest';
import { deterministicRng } from '../../crypto/random.js';
import {
  messageType,
  paddingFor,
  parseCookieReply,
  parseInitiation,
  parseResponse,
  parseTransportHeader,
  readU64,
  serializeCookieReply,
  serializeInitiation,
  serializeResponse,
  transportSize,
  writeTransportHeader,
  writeU64,
} from '../../noise/messages.js';

const rng = deterministicRng(1);
const bytes = (n: number) => rng(new Uint8Array(n));

describe('messages', () => {
  it('round-trips an initiation with fields at the whitepaper offsets', () => {
    const m = { sender: 0xdeadbeef, ephemeral: bytes(32), encryptedStatic: bytes(48), encryptedTimestamp: bytes(28), mac1: bytes(16), mac2: bytes(16) };
    const b = serializeInitiation(m);
    expect(b.length).toBe(148);
    expect([...b.subarray(0, 8)]).toEqual([1, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde]);
    expect(b.subarray(8, 40)).toEqual(m.ephemeral);
    expect(b.subarray(40, 88)).toEqual(m.encryptedStatic);
    expect(b.subarray(88, 116)).toEqual(m.encryptedTimestamp);
    expect(parseInitiation(b)).toEqual(m);
  });

  it('round-trips a response and a cookie reply', () => {
    const r = { sender: 1, receiver: 0xffffffff, ephemeral: bytes(32), encryptedNothing: bytes(16), mac1: bytes(16), mac2: bytes(16) };
    const rb = serializeResponse(r);
    expect(rb.length).toBe(92);
    expect(parseResponse(rb)).toEqual(r);
    const c = { receiver: 42, nonce: bytes(24), encryptedCookie: bytes(32) };
    const cb = serializeCookieReply(c);
    expect(cb.length).toBe(64);
    expect([...cb.subarray(0, 4)]).toEqual([3, 0, 0, 0]);
    expect(parseCookieReply(cb)).toEqual(c);
  });

  it('is strict about lengths, types and reserved bytes', () => {
    expect(messageType(new Uint8Array(0))).toBe('invalid-length');
    expect(messageType(new Uint8Array(3))).toBe('invalid-length');
    const init = new Uint8Array(148);
    init[0] = 1;
    expect(messageType(init)).toBe(1);
    expect(messageType(init.subarray(0, 147))).toBe('invalid-length');
    expect(messageType(new Uint8Array([...init, 0]))).toBe('invalid-length');
    init[2] = 1;
    expect(messageType(init)).toBe('invalid-reserved');
    expect(parseInitiation(init)).toBe('invalid-reserved');
    const t = new Uint8Array(32);
    t[0] = 4;
    expect(messageType(t)).toBe(4);
    expect(messageType(t.subarray(0, 31))).toBe('invalid-length');
    t[0] = 5;
    expect(messageType(t)).toBe('invalid-type');
    t[0] = 0;
    expect(messageType(t)).toBe('invalid-type');
    const resp = new Uint8Array(92);
    resp[0] = 2;
    expect(parseResponse(resp)).not.toBeTypeOf('string');
    expect(parseInitiation(resp)).toBe('invalid-type');
    expect(messageType(new Uint8Array(65536).fill(4, 0, 1))).toBe('invalid-length');
  });

  it('writes transport headers with 64-bit little-endian counters', () => {
    const b = new Uint8Array(32);
    writeTransportHeader(b, 0x01020304, 2 ** 40 + 5);
    expect([...b.subarray(0, 16)]).toEqual([4, 0, 0, 0, 4, 3, 2, 1, 5, 0, 0, 0, 0, 1, 0, 0]);
    expect(parseTransportHeader(b)).toEqual({ receiver: 0x01020304, counter: 2 ** 40 + 5 });
    const c = new Uint8Array(8);
    writeU64(c, 0, Number.MAX_SAFE_INTEGER);
    expect(readU64(c, 0)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('pads plaintexts to multiples of 16, clamped to the limit', () => {
    expect(paddingFor(0)).toBe(0);
    expect(paddingFor(1)).toBe(15);
    expect(paddingFor(16)).toBe(0);
    expect(paddingFor(1419)).toBe(5);
    expect(transportSize(0)).toBe(32);
    expect(transportSize(1420)).toBe(32 + 1424);
    expect(transportSize(1420, 1420)).toBe(32 + 1420);
    expect(paddingFor(1418, 1420)).toBe(2);
  });
});
