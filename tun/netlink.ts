/**
 * rtnetlink in the addon (csrc/netlink.c): synchronous, acknowledged requests, each in the
 * network namespace a namespace file descriptor refers to (an fd of /proc/PID/ns/net, or one
 * received with SCM_RIGHTS), or in the calling thread's own with CURRENT_NETNS. No `ip` or
 * `nsenter` process is run and no pid is resolved. The netlink socket of a call is created in
 * the target namespace and closed before the call returns, so nothing here keeps a namespace
 * alive; the thread is back in its own namespace on every path.
 *
 * Failures throw an Error whose `code` is the errno name (`EEXIST`, `ENODEV`, `EINVAL`, ...)
 * and whose message is one line naming the operation, with the kernel's own message if any.
 * Bad arguments throw before anything is asked.
 */
import { native } from './addon.js';
import { checkIfName } from './ifname.js';

/** Stands for the calling thread's own network namespace where a namespace fd is expected. */
export const CURRENT_NETNS = -1;

function checkNsFd(nsFd: number): void {
  if (!Number.isInteger(nsFd) || nsFd < -1) throw new TypeError(`invalid namespace fd: ${String(nsFd)}`);
}

function checkIndex(ifindex: number): void {
  if (!Number.isInteger(ifindex) || ifindex <= 0 || ifindex > 0x7fffffff) throw new TypeError(`invalid interface index: ${String(ifindex)}`);
}

/** The index of link `name` in the namespace, 0 when there is none. */
export function linkIndex(nsFd: number, name: string): number {
  checkNsFd(nsFd);
  checkIfName(name);
  return native().nlLinkIndex(nsFd, name);
}

/**
 * Moves link `ifindex` of the current namespace into the namespace of `nsFd`, renamed to
 * `newName` in the same request (IFLA_NET_NS_FD + IFLA_IFNAME), and returns its index there
 * (the kernel keeps the index unless it is taken in the target).
 *
 * Throws EEXIST when `newName` is taken there; nothing has moved then. The kernel itself moves
 * a link under its current name and renames it afterwards, so a name taken in the target would
 * leave it there under its old (temporary) name: the name is looked up first, and should it
 * appear in between, the link is moved back (or deleted) before EEXIST is thrown. The result
 * is never a link in the target under a name nobody asked for. ENODEV: no such link here.
 */
export function moveLink(ifindex: number, nsFd: number, newName: string): number {
  checkIndex(ifindex);
  if (!Number.isInteger(nsFd) || nsFd < 0) throw new TypeError(`invalid namespace fd: ${String(nsFd)}`);
  checkIfName(newName);
  return native().nlLinkMove(ifindex, nsFd, newName);
}

export interface AddressOptions {
  /** IPv6: no duplicate address detection (the address is usable at once); ignored for IPv4. */
  nodad?: boolean;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * Adds `address`/`prefixLength` (IPv4 dotted quad or IPv6 text) to link `ifindex`, as
 * `ip addr add` does (the prefix route comes with it). EEXIST if the link already has it.
 */
export function addAddress(nsFd: number, ifindex: number, address: string, prefixLength: number, opts: AddressOptions = {}): void {
  checkNsFd(nsFd);
  checkIndex(ifindex);
  const v6 = address.includes(':');
  if (!v6 && !IPV4.test(address)) throw new TypeError(`invalid IPv4 address: ${JSON.stringify(address)}`);
  if (v6 && !/^[0-9a-fA-F:.]{2,45}$/.test(address)) throw new TypeError(`invalid IPv6 address: ${JSON.stringify(address)}`);
  const max = v6 ? 128 : 32;
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > max) throw new TypeError(`invalid prefix length: ${String(prefixLength)}`);
  native().nlAddrAdd(nsFd, ifindex, address, prefixLength, opts.nodad === true);
}

/** Sets link `ifindex` up (IFF_UP). */
export function setLinkUp(nsFd: number, ifindex: number): void {
  checkNsFd(nsFd);
  checkIndex(ifindex);
  native().nlLinkUp(nsFd, ifindex);
}

/** Sets the MTU of link `name` (68..65535). */
export function setLinkMtu(nsFd: number, name: string, mtu: number): void {
  checkNsFd(nsFd);
  checkIfName(name);
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new TypeError(`invalid MTU: ${String(mtu)}`);
  native().nlLinkSetMtu(nsFd, name, mtu);
}

/**
 * Deletes link `name`. True when it was deleted; with `ifExists`, false when there was none
 * (otherwise that throws ENODEV).
 */
export function deleteLink(nsFd: number, name: string, opts: { ifExists?: boolean } = {}): boolean {
  checkNsFd(nsFd);
  checkIfName(name);
  try {
    native().nlLinkDel(nsFd, name);
    return true;
  } catch (e) {
    if (opts.ifExists && (e as NodeJS.ErrnoException).code === 'ENODEV') return false;
    throw e;
  }
}

/**
 * The namespace's cookie (SO_NETNS_COOKIE of a socket made inside it): a 64-bit id that the
 * kernel gives no other namespace for as long as it runs, unlike an inode number, which a
 * later namespace may reuse. Stable for the namespace's life.
 */
export function netnsCookie(nsFd: number): bigint {
  checkNsFd(nsFd);
  return native().netnsCookie(nsFd);
}

/** fstat(2) identity of an open file: a namespace fd's (dev, ino) equals `stat /proc/PID/ns/net`. */
export function fdIdentity(fd: number): { dev: bigint; ino: bigint } {
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`invalid fd: ${String(fd)}`);
  const [dev, ino] = native().fdIdentity(fd);
  return { dev, ino };
}
