/**
 * cwg_create / cwg_connect / cwg_destroy / show: the container contract, over a
 * wireguard-ts daemon per device. The system (iproute2, the UAPI socket, the daemon, /proc)
 * comes in through `CwgSystem`, so the logic is the same in tests and in production.
 *
 * Per container namespace state lives in RUN_BASE/<inode of /proc/PID/ns/net>/, one UAPI
 * socket per device (`<prefix>-<net>-<host>.sock`): two containers may hold devices with the
 * same name, and each command reaches the one in the namespace of the pid it is given.
 */
import { join } from 'node:path';
import { encodeBase64Key } from '../../crypto/keys.js';
import { generatePrivateKey, publicKey } from '../../crypto/x25519.js';
import { parseCidr } from '../../noise/iptext.js';
import type { DeviceStatus } from '../../noise/types.js';
import { EADDRINUSE, formatSet } from '../uapi/protocol.js';
import { hostCidr, netSubnet } from './addressing.js';
import { deviceName } from './config.js';
import { CwgError } from './errors.js';
import { formatShow, type ShowOptions } from './show.js';
import { parseEndpoint, parseHost, parseNet, parsePeerKey, parsePid, parsePort } from './validate.js';

export const RUN_BASE = '/var/run/wireguard/cwg';

/** Everything the commands need from the operating system. */
export interface CwgSystem {
  /** Throws CwgError when this process may not manage devices (not root). */
  checkPrivileges(): void;
  /** Inode of /proc/PID/ns/net; throws CwgError when the pid does not exist or is not accessible. */
  netnsInode(pid: number): number;
  linkExists(name: string, pid: number): Promise<boolean>;
  addrAdd(name: string, cidr: string, pid: number): Promise<void>;
  linkSetUp(name: string, pid: number): Promise<void>;
  /** Delete the link; false when it was not there. */
  linkDel(name: string, pid: number): Promise<boolean>;
  /** True when a UDP socket could be bound on `port` (v4 and v6 wildcard) in this namespace now. */
  udpPortFree(port: number): Promise<boolean>;
  /** Create (if needed) and check the run directory for a namespace; returns its path. */
  ensureRunDir(dir: string): void;
  /** Remove the run directory if it is empty. */
  removeRunDirIfEmpty(dir: string): void;
  socketExists(path: string): boolean;
  /** Remove a socket file nobody listens on (its daemon was killed); keep a live one. */
  removeStaleSocket(path: string): Promise<void>;
  /**
   * Start the daemon `wireguard-ts --netns-pid PID --run-dir DIR IFNAME`, in the background,
   * and return its process id once the device is in the namespace and its socket listens.
   * Throws CwgError with the daemon's reason otherwise.
   */
  startDaemon(ifname: string, pid: number, runDir: string): Promise<number>;
  /** Ask a daemon this command started to stop (SIGTERM). */
  stopDaemon(daemonPid: number): void;
  uapiSet(socketPath: string, lines: string[]): Promise<number>;
  uapiGet(socketPath: string): Promise<DeviceStatus>;
  sleep(ms: number): Promise<void>;
}

export interface CwgContext {
  prefix: string;
  runBase: string;
  sys: CwgSystem;
  /** Aborted on SIGINT/SIGTERM: cwg_create then undoes what it made and fails. */
  signal?: AbortSignal;
}

function checkAbort(ctx: CwgContext): void {
  if (ctx.signal?.aborted) throw new CwgError('interrupted; nothing was left behind');
}

interface Target {
  pid: number;
  net: number;
  host: 0 | 1;
  name: string;
  runDir: string;
  socket: string;
}

function checkCount(args: readonly string[], names: string[]): void {
  if (args.length !== names.length) {
    throw new CwgError(`expected ${names.length} arguments (${names.map((n) => `<${n}>`).join(' ')}), got ${args.length}`);
  }
}

/** Validate pid/net/host and name the device (no system access yet). */
function parseTarget(ctx: CwgContext, pidText: string, netText: string, hostText: string): Omit<Target, 'runDir' | 'socket'> {
  const pid = parsePid(pidText);
  const net = parseNet(netText);
  const host = parseHost(hostText);
  return { pid, net, host, name: deviceName(ctx.prefix, net, host) };
}

/** Check privileges, find the pid's network namespace and its run directory. */
function locate(ctx: CwgContext, t: Omit<Target, 'runDir' | 'socket'>): Target {
  ctx.sys.checkPrivileges();
  const runDir = join(ctx.runBase, String(ctx.sys.netnsInode(t.pid)));
  return { ...t, runDir, socket: join(runDir, `${t.name}.sock`) };
}

function where(t: Target): string {
  return `device ${t.name} in the network namespace of pid ${t.pid}`;
}

/** Wait until the daemon's socket is gone (it removes it as it exits). */
async function waitSocketGone(ctx: CwgContext, socket: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (ctx.sys.socketExists(socket)) {
    if (Date.now() >= end) return false;
    await ctx.sys.sleep(20);
  }
  return true;
}

async function waitPortFree(ctx: CwgContext, port: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await ctx.sys.udpPortFree(port))) {
    if (Date.now() >= end) return false;
    await ctx.sys.sleep(20);
  }
  return true;
}

/**
 * Remove a device and wait for its daemon to go (socket removed, port free). Used by destroy
 * and to undo a failed create. Returns false when there was no link.
 */
async function teardown(ctx: CwgContext, t: Target, port: number): Promise<boolean> {
  const had = await ctx.sys.linkDel(t.name, t.pid);
  const gone = await waitSocketGone(ctx, t.socket, 5000);
  if (gone && port > 0) await waitPortFree(ctx, port, 2000);
  ctx.sys.removeRunDirIfEmpty(t.runDir);
  if (!gone) throw new CwgError(`the daemon of ${where(t)} did not exit after the device was removed`);
  return had;
}

/** `cwg_create <pid> <net> <host> <port>`: returns the public key line to print. */
export async function cwgCreate(ctx: CwgContext, args: readonly string[]): Promise<string> {
  checkCount(args, ['pid', 'net', 'host', 'port']);
  const parsed = parseTarget(ctx, args[0]!, args[1]!, args[2]!);
  const port = parsePort(args[3]!);
  const t = locate(ctx, parsed);
  if (await ctx.sys.linkExists(t.name, t.pid)) throw new CwgError(`${where(t)} already exists`);
  if (!(await ctx.sys.udpPortFree(port))) throw new CwgError(`UDP port ${port} is already in use`);
  checkAbort(ctx);
  ctx.sys.ensureRunDir(t.runDir);
  // The namespace's inode may be a dead one's, reused, whose killed daemon left its socket.
  if (ctx.sys.socketExists(t.socket)) await ctx.sys.removeStaleSocket(t.socket);
  let daemonPid: number;
  try {
    daemonPid = await ctx.sys.startDaemon(t.name, t.pid, t.runDir);
  } catch (e) {
    ctx.sys.removeRunDirIfEmpty(t.runDir);
    throw e;
  }
  const priv = generatePrivateKey();
  let boundPort = 0;
  try {
    checkAbort(ctx);
    const pub = publicKey(priv);
    const errno = await ctx.sys.uapiSet(t.socket, formatSet({ privateKey: priv, listenPort: port, peers: [] }));
    priv.fill(0);
    if (errno === EADDRINUSE) throw new CwgError(`UDP port ${port} is already in use`);
    if (errno !== 0) throw new CwgError(`the daemon of ${where(t)} refused its configuration (errno ${errno})`);
    boundPort = port;
    checkAbort(ctx);
    await ctx.sys.addrAdd(t.name, hostCidr(t.net, t.host), t.pid);
    await ctx.sys.linkSetUp(t.name, t.pid);
    checkAbort(ctx);
    return `${encodeBase64Key(pub)}\n`;
  } catch (e) {
    priv.fill(0);
    try {
      await teardown(ctx, t, boundPort);
    } catch {
      // The device could not be removed (or the daemon did not go): stop the daemon we
      // started, which removes the device with it. Report the first error.
      ctx.sys.stopDaemon(daemonPid);
      await waitSocketGone(ctx, t.socket, 5000);
      if (boundPort) await waitPortFree(ctx, boundPort, 2000);
      ctx.sys.removeRunDirIfEmpty(t.runDir);
    }
    throw e;
  }
}

/** `cwg_connect <pid> <net> <host> <peer_endpoint> <peer_key>`. */
export async function cwgConnect(ctx: CwgContext, args: readonly string[]): Promise<void> {
  checkCount(args, ['pid', 'net', 'host', 'peer_endpoint', 'peer_key']);
  const parsed = parseTarget(ctx, args[0]!, args[1]!, args[2]!);
  const endpoint = parseEndpoint(args[3]!);
  const key = parsePeerKey(args[4]!);
  const t = locate(ctx, parsed);
  await requireDevice(ctx, t);
  const errno = await ctx.sys.uapiSet(
    t.socket,
    formatSet({ replacePeers: true, peers: [{ publicKey: key, endpoint, replaceAllowedIps: true, allowedIps: [parseCidr(netSubnet(t.net))] }] }),
  );
  if (errno !== 0) throw new CwgError(`the daemon of ${where(t)} refused the peer (errno ${errno})`);
}

/** `cwg_destroy <pid> <net> <host>`. */
export async function cwgDestroy(ctx: CwgContext, args: readonly string[]): Promise<void> {
  checkCount(args, ['pid', 'net', 'host']);
  const t = locate(ctx, parseTarget(ctx, args[0]!, args[1]!, args[2]!));
  if (!(await ctx.sys.linkExists(t.name, t.pid))) {
    // A daemon that was killed leaves its socket: tidy it away, the device is gone anyway.
    if (ctx.sys.socketExists(t.socket)) {
      await ctx.sys.removeStaleSocket(t.socket);
      ctx.sys.removeRunDirIfEmpty(t.runDir);
    }
    throw new CwgError(`no ${where(t)}`);
  }
  let port = 0;
  if (ctx.sys.socketExists(t.socket)) {
    try {
      port = (await ctx.sys.uapiGet(t.socket)).listenPort;
    } catch {
      /* the daemon is going away already: still remove the link */
    }
  }
  if (!(await teardown(ctx, t, port))) throw new CwgError(`no ${where(t)}`);
}

/** `show <pid> <net> <host>`: the text `wg show` prints. */
export async function cwgShow(ctx: CwgContext, args: readonly string[], opts: ShowOptions): Promise<string> {
  checkCount(args, ['pid', 'net', 'host']);
  const t = locate(ctx, parseTarget(ctx, args[0]!, args[1]!, args[2]!));
  await requireDevice(ctx, t);
  const st = await ctx.sys.uapiGet(t.socket);
  const pub = st.privateKey?.some((b) => b !== 0) ? publicKey(st.privateKey) : null;
  st.privateKey?.fill(0);
  return formatShow(t.name, st, pub, opts);
}

async function requireDevice(ctx: CwgContext, t: Target): Promise<void> {
  if (!(await ctx.sys.linkExists(t.name, t.pid))) throw new CwgError(`no ${where(t)}`);
  if (!ctx.sys.socketExists(t.socket)) {
    throw new CwgError(`${where(t)} is not managed by cwg (no control socket ${t.socket})`);
  }
}
