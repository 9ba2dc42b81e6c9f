/** The WGTS1 codec (tun/control-protocol.ts): exact bytes, strict decoding, bounds. */
import { describe, expect, it } from 'vitest';
import { decodeRequest, decodeResponse, encodeDone, encodeRequest, encodeWait, MAX_MESSAGE } from '../../tun/control-protocol.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('control protocol codec', () => {
  it('encodes requests and answers as NUL-separated fields', () => {
    expect(dec(encodeRequest({ ns: { kind: 'fd' }, args: ['cwg_create', '1234', '42', '0', '51820'] }))).toBe(
      'WGTS1\0fd\0cwg_create\x001234\x0042\x000\x0051820',
    );
    expect(dec(encodeRequest({ ns: { kind: 'errno', errno: 13 }, args: [] }))).toBe('WGTS1\0errno:13');
    expect(dec(encodeRequest({ ns: { kind: 'none' }, args: ['', ''] }))).toBe('WGTS1\0none\0\0');
    expect(dec(encodeWait())).toBe('WGTS1\0wait');
    expect(dec(encodeDone(0, 'key=\n', ''))).toBe('WGTS1\0done\x000\0key=\n\0');
  });

  it('decodes what it encodes', () => {
    const args = ['cwg_connect', '1', '2', '0', '[::1]:51820', 'ü'];
    expect(decodeRequest(encodeRequest({ ns: { kind: 'fd' }, args }))).toEqual({ ok: true, request: { ns: { kind: 'fd' }, args } });
    expect(decodeRequest(encodeRequest({ ns: { kind: 'errno', errno: 2 }, args: [] }))).toEqual({
      ok: true,
      request: { ns: { kind: 'errno', errno: 2 }, args: [] },
    });
    expect(decodeResponse(encodeWait())).toEqual({ kind: 'wait' });
    expect(decodeResponse(encodeDone(255, 'a', 'b\n'))).toEqual({ kind: 'done', code: 255, stdout: 'a', stderr: 'b\n' });
  });

  it('refuses malformed requests with a reason', () => {
    for (const bad of [
      '',
      'WGTS2\0fd',
      'WGTS1',
      'WGTS1\0maybe',
      'WGTS1\0errno:',
      'WGTS1\0errno:0',
      'WGTS1\0errno:013',
      'WGTS1\0errno:4096',
      'WGTS1\0errno:-1',
    ]) {
      expect(decodeRequest(enc(bad)).ok).toBe(false);
    }
    expect(decodeRequest(new Uint8Array(MAX_MESSAGE + 1))).toEqual({ ok: false, reason: 'message too long' });
  });

  it('refuses malformed responses', () => {
    for (const bad of [
      'WGTS1\0wait\0',
      'WGTS1\0done\x000\0out',
      'WGTS1\0done\x00256\0\0',
      'WGTS1\0done\x0001\0\0',
      'WGTS1\0done\0\0\0',
      'WGTS1\0done\x000\0a\0b\0c',
      'WGTS0\0wait',
    ]) {
      expect(decodeResponse(enc(bad))).toBeNull();
    }
  });

  it('never encodes a NUL inside a field, a bad exit code or an oversized message', () => {
    expect(() => encodeDone(0, 'a\0b', '')).toThrow(RangeError);
    expect(() => encodeDone(256, '', '')).toThrow(RangeError);
    expect(() => encodeDone(0, 'x'.repeat(MAX_MESSAGE), '')).toThrow(RangeError);
    expect(() => encodeRequest({ ns: { kind: 'errno', errno: 0 }, args: [] })).toThrow(RangeError);
  });
});
