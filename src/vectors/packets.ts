/**
 * The inner packets the vectors carry: ICMP echo request/reply over IPv4 and an ICMPv6 echo
 * request over IPv6, with valid checksums, so that a receiver that checks inner packets (as
 * the engine and the kernel do) delivers them. The IP headers come from noise/packets.ts.
 */
import { parseIpStrict } from '../../noise/iptext.js';
import { ipChecksum, ipv4Packet, ipv6Packet } from '../../noise/packets.js';

/** An ICMP or ICMPv6 echo message of `type`, its checksum field zero. */
function echo(type: number, ident: number, seq: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m[0] = type;
  m[4] = ident >>> 8;
  m[5] = ident & 0xff;
  m[6] = seq >>> 8;
  m[7] = seq & 0xff;
  m.set(data, 8);
  return m;
}

function setChecksum(m: Uint8Array, c: number): void {
  m[2] = c >>> 8;
  m[3] = c & 0xff;
}

/** An IPv4 ICMP echo request (`reply` false) or reply; the IP identification is `seq`. */
export function icmpv4Echo(src: string, dst: string, reply: boolean, ident: number, seq: number, data: Uint8Array): Uint8Array {
  const icmp = echo(reply ? 0 : 8, ident, seq, data);
  setChecksum(icmp, ipChecksum(icmp));
  return ipv4Packet(src, dst, icmp, 1, seq);
}

/** An IPv6 ICMPv6 echo request; its checksum covers the RFC 8200 pseudo-header. */
export function icmpv6EchoRequest(src: string, dst: string, ident: number, seq: number, data: Uint8Array): Uint8Array {
  const icmp = echo(128, ident, seq, data);
  const pseudo = new Uint8Array(40 + icmp.length);
  pseudo.set(parseIpStrict(src).bytes, 0);
  pseudo.set(parseIpStrict(dst).bytes, 16);
  pseudo[34] = icmp.length >>> 8;
  pseudo[35] = icmp.length & 0xff;
  pseudo[39] = 58;
  pseudo.set(icmp, 40);
  setChecksum(icmp, ipChecksum(pseudo));
  return ipv6Packet(src, dst, icmp, 58);
}
