/**
 * iproute2 helpers. `ip` runs at an absolute path with an argument array (spawnSync /
 * execFile, never a shell), optionally inside the network namespace of another process:
 * `nsenter --net=/proc/PID/ns/net -- ip ...`. Failures throw an IpError whose message is one
 * line: the command and the first line of ip's stderr.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { native } from './addon.js';
import { checkIfName } from './ifname.js';

const IP_CANDIDATES = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'];
const NSENTER_CANDIDATES = ['/usr/bin/nsenter', '/bin/nsenter', '/usr/sbin/nsenter', '/sbin/nsenter'];
const TIMEOUT_MS = 10_000;

let ipPath: string | undefined;
let nsenterPath: string | undefined;

function resolve(cands: string[], what: string): string {
  for (const c of cands) if (existsSync(c)) return c;
  throw new Error(`${what} not found (looked in ${cands.join(', ')})`);
}

/** Absolute path of iproute2's `ip`, resolved once. */
export function ipBinary(): string {
  ipPath ??= resolve(IP_CANDIDATES, 'iproute2 "ip"');
  return ipPath;
}

/** Absolute path of util-linux's `nsenter`, resolved once. */
export function nsenterBinary(): string {
  nsenterPath ??= resolve(NSENTER_CANDIDATES, 'nsenter');
  return nsenterPath;
}

export class IpError extends Error {
  constructor(
    message: string,
    /** The argument vector that failed (without the nsenter prefix). */
    readonly args: readonly string[],
    /** ip's exit status (null when it was killed or could not start). */
    readonly status: number | null,
    /** ip's whole stderr. */
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'IpError';
  }
}

/** Where to run: the current namespace (default) or that of process `netnsPid`. */
export interface NsOptions {
  netnsPid?: number;
}

function checkPid(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 0 || pid > 0x3fffffff) throw new Error(`invalid pid: ${String(pid)}`);
}

function argv(args: readonly string[], opts?: NsOptions): [string, string[]] {
  if (opts?.netnsPid !== undefined) {
    checkPid(opts.netnsPid);
    return [nsenterBinary(), [`--net=/proc/${opts.netnsPid}/ns/net`, '--', ipBinary(), ...args]];
  }
  return [ipBinary(), [...args]];
}

function failure(args: readonly string[], opts: NsOptions | undefined, status: number | null, stderr: string, err?: Error): IpError {
  const first =
    stderr
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ??
    err?.message ??
    `exit status ${String(status)}`;
  const where = opts?.netnsPid !== undefined ? ` (netns of pid ${opts.netnsPid})` : '';
  return new IpError(`ip ${args.join(' ')}${where}: ${first}`, args, status, stderr);
}

/** Runs `ip ARGS...` synchronously and returns its stdout; throws IpError on failure. */
export function ip(args: readonly string[], opts?: NsOptions): string {
  const [file, av] = argv(args, opts);
  const r = spawnSync(file, av, { encoding: 'utf8', timeout: TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error || r.status !== 0) throw failure(args, opts, r.status, r.stderr ?? '', r.error);
  return r.stdout;
}

/** True when link `name` exists (in the namespace of `netnsPid` if given). */
export function linkExists(name: string, opts?: NsOptions): boolean {
  checkIfName(name);
  const [file, av] = argv(['-o', 'link', 'show', 'dev', name], opts);
  const r = spawnSync(file, av, { encoding: 'utf8', timeout: TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw failure(['link', 'show', 'dev', name], opts, null, '', r.error);
  if (r.status === 0) return true;
  if (/does not exist/i.test(r.stderr)) return false;
  throw failure(['link', 'show', 'dev', name], opts, r.status, r.stderr);
}

export function linkSetUp(name: string, opts?: NsOptions): void {
  checkIfName(name);
  ip(['link', 'set', 'dev', name, 'up'], opts);
}

export function linkSetDown(name: string, opts?: NsOptions): void {
  checkIfName(name);
  ip(['link', 'set', 'dev', name, 'down'], opts);
}

export function setMtu(name: string, mtu: number, opts?: NsOptions): void {
  checkIfName(name);
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new Error(`invalid MTU: ${String(mtu)}`);
  ip(['link', 'set', 'dev', name, 'mtu', String(mtu)], opts);
}

/** `ip link show` → MTU of `name`. */
export function getMtu(name: string, opts?: NsOptions): number {
  checkIfName(name);
  const m = /\bmtu (\d+)/.exec(ip(['-o', 'link', 'show', 'dev', name], opts));
  if (!m) throw new Error(`ip link show dev ${name}: no MTU in the output`);
  return Number(m[1]);
}

/**
 * Interface index of `name` in this process's network namespace, 0 if there is none (or the
 * addon is not built). One ioctl, no process spawned: the UAPI resolves IPv6 zones with it.
 */
export function interfaceIndex(name: string): number {
  try {
    return native().ifIndex(name);
  } catch {
    return 0;
  }
}

/** Interface index of `name` (in the namespace of `netnsPid` if given). */
export function linkIndex(name: string, opts?: NsOptions): number {
  checkIfName(name);
  const m = /^(\d+):/.exec(ip(['-o', 'link', 'show', 'dev', name], opts));
  if (!m) throw new Error(`ip link show dev ${name}: no index in the output`);
  return Number(m[1]);
}

function checkCidr(cidr: string): void {
  if (!/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(cidr)) throw new Error(`invalid address: ${JSON.stringify(cidr)}`);
}

export interface AddrOptions extends NsOptions {
  /** IPv6: skip duplicate address detection (the address is usable at once). */
  nodad?: boolean;
}

/** `ip addr add CIDR dev NAME` (e.g. "10.0.0.1/24", "fd00::1/64"). */
export function addrAdd(name: string, cidr: string, opts?: AddrOptions): void {
  checkIfName(name);
  checkCidr(cidr);
  const args = ['addr', 'add', cidr, 'dev', name];
  if (opts?.nodad && cidr.includes(':')) args.push('nodad');
  ip(args, opts);
}

export function addrDel(name: string, cidr: string, opts?: NsOptions): void {
  checkIfName(name);
  checkCidr(cidr);
  ip(['addr', 'del', cidr, 'dev', name], opts);
}

export function addrFlush(name: string, opts?: NsOptions): void {
  checkIfName(name);
  ip(['addr', 'flush', 'dev', name], opts);
}

export interface RouteOptions extends NsOptions {
  table?: number | string;
  metric?: number;
  /** Use `replace` instead of `add` (no error if the route exists). */
  replace?: boolean;
}

/** `ip route add CIDR dev NAME [table T] [metric M]`; `-6` is implied by the prefix. */
export function routeAdd(cidr: string, name: string, opts?: RouteOptions): void {
  checkIfName(name);
  checkCidr(cidr);
  const args = ['route', opts?.replace ? 'replace' : 'add', cidr, 'dev', name];
  if (opts?.table !== undefined) args.push('table', String(opts.table));
  if (opts?.metric !== undefined) args.push('metric', String(opts.metric));
  ip(cidr.includes(':') ? ['-6', ...args] : args, opts);
}

export function routeDel(cidr: string, name: string, opts?: RouteOptions): void {
  checkIfName(name);
  checkCidr(cidr);
  const args = ['route', 'del', cidr, 'dev', name];
  if (opts?.table !== undefined) args.push('table', String(opts.table));
  ip(cidr.includes(':') ? ['-6', ...args] : args, opts);
}

/** `ip link del dev NAME`. With `ifExists`, a missing link is not an error. */
export function linkDel(name: string, opts?: NsOptions & { ifExists?: boolean }): void {
  checkIfName(name);
  try {
    ip(['link', 'del', 'dev', name], opts);
  } catch (e) {
    if (opts?.ifExists && e instanceof IpError && /does not exist|Cannot find device/i.test(e.stderr)) return;
    throw e;
  }
}

/**
 * Moves link `name` (of the current namespace, or of `opts.netnsPid`) into the network namespace
 * of process `pid`, renaming it to `newName` in the same request (one RTM_NEWLINK), so the link
 * never appears there under its old name when all goes well.
 *
 * Measured on this kernel: if `newName` is taken in the target, the kernel still moves the link
 * (under its old name) and only then fails the rename with EEXIST. So the name is checked first,
 * and a link stranded by a lost race is moved back (best effort) before the error is thrown.
 */
export function moveLink(name: string, pid: number, newName: string, opts?: NsOptions): void {
  checkIfName(name);
  checkIfName(newName);
  checkPid(pid);
  netnsInode(pid);
  const target = { netnsPid: pid };
  if (linkExists(newName, target)) {
    const where = `the network namespace of pid ${pid}`;
    throw new IpError(`cannot move ${name}: a link named ${newName} already exists in ${where}`, [], null, '');
  }
  try {
    ip(['link', 'set', 'dev', name, 'netns', String(pid), 'name', newName], opts);
  } catch (e) {
    try {
      if (!linkExists(name, opts) && linkExists(name, target)) {
        const back = opts?.netnsPid ?? process.pid;
        ip(['link', 'set', 'dev', name, 'netns', String(back)], target);
      }
    } catch {
      /* best effort: the original error says what went wrong */
    }
    throw e;
  }
}

/**
 * Inode of /proc/PID/ns/net: identifies a network namespace (equal inodes, same namespace).
 * Throws a clear Error for a missing or inaccessible pid.
 */
export function netnsInode(pid: number | 'self'): number {
  if (pid !== 'self') checkPid(pid);
  try {
    return statSync(`/proc/${pid}/ns/net`).ino;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') throw new Error(`no process with pid ${pid} (no /proc/${pid}/ns/net)`);
    if (code === 'EACCES' || code === 'EPERM') throw new Error(`cannot access the network namespace of pid ${pid} (${code})`);
    throw new Error(`cannot stat /proc/${pid}/ns/net: ${(e as Error).message}`);
  }
}

/** True when process `pid` lives in the same network namespace as this process. */
export function sameNetns(pid: number): boolean {
  return netnsInode(pid) === netnsInode('self');
}

/** `ip netns add NAME` (a named namespace under /run/netns). */
export function netnsAdd(name: string): void {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || name === '.' || name === '..') throw new Error(`invalid netns name: ${JSON.stringify(name)}`);
  ip(['netns', 'add', name]);
}

/** `ip netns del NAME`; with `ifExists`, a missing namespace is not an error. */
export function netnsDel(name: string, opts?: { ifExists?: boolean }): void {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error(`invalid netns name: ${JSON.stringify(name)}`);
  if (opts?.ifExists && !existsSync(`/run/netns/${name}`)) return;
  ip(['netns', 'del', name]);
}

/** Names of the named namespaces (`ip netns list`). */
export function netnsList(): string[] {
  return ip(['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/** `ip link add NAME type veth peer name PEER` (both ends in the current namespace). */
export function vethAdd(name: string, peer: string, opts?: NsOptions): void {
  checkIfName(name);
  checkIfName(peer);
  ip(['link', 'add', name, 'type', 'veth', 'peer', 'name', peer], opts);
}
