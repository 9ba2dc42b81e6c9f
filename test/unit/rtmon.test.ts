import { describe, expect, it } from 'vitest';
import { parseNetlink } from '../../tun/rtmon.js';

/** A netlink message: header (len, type, flags, seq, pid) and body. */
function nlmsg(type: number, seq: number, pid: number, body: number[]): number[] {
  const len = 16 + body.length;
  const h = new DataView(new ArrayBuffer(16));
  h.setUint32(0, len, true);
  h.setUint16(4, type, true);
  h.setUint32(8, seq, true);
  h.setUint32(12, pid, true);
  const out = [...new Uint8Array(h.buffer), ...body];
  while (out.length % 4) out.push(0);
  return out;
}

function attr(type: number, data: number[]): number[] {
  const out = [(4 + data.length) & 0xff, (4 + data.length) >> 8, type & 0xff, type >> 8, ...data];
  while (out.length % 4) out.push(0);
  return out;
}

const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
// rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags(4)
const rtmsg = (family: number, table = 254) => [family, 32, 0, 0, table, 4, 0, 1, 0, 0, 0, 0];

describe('parsing rtnetlink messages', () => {
  it('reads route messages (interface, preferred source, gateway, destination, table), errors and others', () => {
    const route = nlmsg(24, 7, 4242, [
      ...rtmsg(2),
      ...attr(15, le32(254)),
      ...attr(1, [192, 168, 250, 10]),
      ...attr(4, le32(3)),
      ...attr(7, [192, 168, 250, 2]),
      ...attr(5, [192, 168, 251, 1]),
    ]);
    const v6 = nlmsg(25, 0, 0, [...rtmsg(10), ...attr(4, le32(9)), ...attr(7, [0xfd, 0, ...new Array(13).fill(0), 1])]);
    const err = nlmsg(2, 8, 4242, [...le32(-22 >>> 0), ...new Array(16).fill(0)]);
    const done = nlmsg(3, 9, 4242, le32(0));
    const all = Uint8Array.from([...route, ...v6, ...err, ...done]);
    expect(parseNetlink(all, 0, all.length)).toEqual([
      { kind: 'route', seq: 7, pid: 4242, dst: '192.168.250.10', route: { oif: 3, prefsrc: '192.168.250.2', gateway: '192.168.251.1', table: 254 } },
      { kind: 'route', seq: 0, pid: 0, dst: null, route: { oif: 9, prefsrc: 'fd00::1', gateway: null, table: 254 } },
      { kind: 'error', seq: 8, pid: 4242, errno: 22 },
      { kind: 'other', type: 3, seq: 9, pid: 4242 },
    ]);
  });

  it('stops at a malformed header and never reads past the range, whatever the bytes', () => {
    const good = nlmsg(24, 1, 1, [...rtmsg(2), ...attr(4, le32(2))]);
    const bad = Uint8Array.from([...good, 0xff, 0xff, 0, 0, ...new Array(12).fill(0)]);
    expect(parseNetlink(bad, 0, bad.length).length).toBe(1);
    // A message cut short by the range, attributes that overrun their message: no throw.
    expect(parseNetlink(bad, 0, good.length - 4)).toEqual([]);
    let x = 12345;
    for (let i = 0; i < 2000; i++) {
      const b = Uint8Array.from(good);
      for (let k = 0; k < 4; k++) {
        x = (x * 1103515245 + 12345) >>> 0;
        b[x % b.length] = x >>> 24;
      }
      expect(() => parseNetlink(b, 0, b.length)).not.toThrow();
    }
  });
});
