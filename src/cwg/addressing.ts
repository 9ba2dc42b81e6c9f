/**
 * The address scheme of the contract: network `net` (0..8388607) is the /31 at
 * 10.0.0.0 + 2*net; host 0 or 1 is the address 10.0.0.0 + 2*net + host.
 *   net 0 -> 10.0.0.0/31, net 1 -> 10.0.0.2/31, net 1024 -> 10.0.8.0/31,
 *   net 8388607 -> 10.255.255.254/31.
 */
import { CwgError } from './errors.js';
import { MAX_NET } from './validate.js';

function checkNet(net: number): void {
  if (!Number.isInteger(net) || net < 0 || net > MAX_NET) throw new CwgError(`net ${net} is out of range 0..${MAX_NET}`);
}

function dotted(offset: number): string {
  // 10.0.0.0 + offset, offset < 2^24
  return `10.${(offset >>> 16) & 0xff}.${(offset >>> 8) & 0xff}.${offset & 0xff}`;
}

/** The /31 of a network, e.g. "10.0.8.0/31" for net 1024. */
export function netSubnet(net: number): string {
  checkNet(net);
  return `${dotted(2 * net)}/31`;
}

/** The address of host 0 or 1 on a network, without prefix length, e.g. "10.0.8.1". */
export function hostAddress(net: number, host: 0 | 1): string {
  checkNet(net);
  if (host !== 0 && host !== 1) throw new CwgError(`host ${String(host)} is not 0 or 1`);
  return dotted(2 * net + host);
}

/** The interface address with its prefix length, e.g. "10.0.8.1/31". */
export function hostCidr(net: number, host: 0 | 1): string {
  return `${hostAddress(net, host)}/31`;
}
