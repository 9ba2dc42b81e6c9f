/**
 * cwg_create / cwg_connect / cwg_destroy / show: the container contract, as the host service
 * runs it (src/service/). Arguments are validated here, in the service, whatever the client
 * checked; every failure is a CwgError whose message is the one line the caller sees. The
 * operating system and the device registry come in through `CwgSystem`, so the logic is the same
 * in tests and in production.
 */
import { encodeBase64Key } from '../../crypto/keys.js';
import { generatePrivateKey, publicKey } from '../../crypto/x25519.js';
import { parseCidr } from '../../noise/iptext.js';
import type { DeviceChange, DeviceStatus } from '../../noise/types.js';
import { hostCidr, netSubnet } from './addressing.js';
import { deviceName } from './config.js';
import { CwgError } from './errors.js';
import { formatShow, type ShowOptions } from './show.js';
import { parseEndpoint, parseHost, parseNet, parsePeerKey, parsePid, parsePort } from './validate.js';

/** The network namespace of a request, as the service resolved it from the descriptor the client opened. */
export interface CwgNamespace {
  /** The pid the caller named (for messages only: the service never resolves it). */
  readonly pid: number;
  /** The namespace's identity (its SO_NETNS_COOKIE): never reused while the host runs. */
  readonly key: string;
  /** The namespace's inode (names its run directory). */
  readonly inode: number;
}

/** A device of the registry. */
export interface CwgDevice {
  readonly name: string;
  /** Apply a validated change (and record it); returns 0 or a positive errno. */
  configure(change: DeviceChange): number;
  status(): DeviceStatus;
}

/** What `createDevice` is to make. */
export interface CreateSpec {
  readonly ns: CwgNamespace;
  readonly name: string;
  readonly net: number;
  readonly host: 0 | 1;
  /** The interface address, e.g. "10.0.8.1/31". */
  readonly cidr: string;
  readonly port: number;
  /** Taken by the device (the caller zeroes its copy). */
  readonly privateKey: Uint8Array;
}

/** Everything the commands need from the service and the operating system. */
export interface CwgSystem {
  /** Throws CwgError when the caller may not manage devices. */
  checkPrivileges(): void;
  /** The namespace the caller opened for `pid`; throws CwgError (no such process, no access, refused by policy). */
  namespace(pid: number): CwgNamespace;
  /** The registry's device `name` in `ns`, or null. */
  device(ns: CwgNamespace, name: string): CwgDevice | null;
  /** Whether any link named `name` exists in `ns` (ours or not). */
  linkExists(ns: CwgNamespace, name: string): boolean;
  /** Make the device, all or nothing: throws CwgError and leaves nothing behind on failure. */
  createDevice(spec: CreateSpec): Promise<CwgDevice>;
  /** Remove the device (ours, or a link of that name); false when there was none. */
  destroyDevice(ns: CwgNamespace, name: string): Promise<boolean>;
}

export interface CwgContext {
  prefix: string;
  sys: CwgSystem;
  /** Aborted when the caller goes away: cwg_create then undoes what it made and fails. */
  signal?: AbortSignal;
}

interface Target {
  ns: CwgNamespace;
  net: number;
  host: 0 | 1;
  name: string;
}

function checkCount(args: readonly string[], names: string[]): void {
  if (args.length !== names.length) {
    throw new CwgError(`expected ${names.length} arguments (${names.map((n) => `<${n}>`).join(' ')}), got ${args.length}`);
  }
}

/** The commands' arguments, checked for form (nothing touched, no policy applied). */
const ARG_NAMES = {
  cwg_create: ['pid', 'net', 'host', 'port'],
  cwg_connect: ['pid', 'net', 'host', 'peer_endpoint', 'peer_key'],
  cwg_destroy: ['pid', 'net', 'host'],
  show: ['pid', 'net', 'host'],
} as const;

export type DeviceCommand = keyof typeof ARG_NAMES;

interface ParsedArgs {
  pid: number;
  net: number;
  host: 0 | 1;
  port?: number;
  endpoint?: ReturnType<typeof parseEndpoint>;
  key?: Uint8Array;
}

/**
 * Check a device command's arguments for form, in the order the messages come: the count, then
 * each argument. The client runs it to fail fast; the service runs it again on every request.
 */
export function parseDeviceArgs(cmd: DeviceCommand, args: readonly string[]): ParsedArgs {
  checkCount(args, [...ARG_NAMES[cmd]]);
  const out: ParsedArgs = { pid: parsePid(args[0]!), net: parseNet(args[1]!), host: parseHost(args[2]!) };
  if (cmd === 'cwg_create') out.port = parsePort(args[3]!);
  if (cmd === 'cwg_connect') {
    out.endpoint = parseEndpoint(args[3]!);
    out.key = parsePeerKey(args[4]!);
  }
  return out;
}

/** Validate the arguments and name the device (nothing touched yet). */
function parseTarget(ctx: CwgContext, cmd: DeviceCommand, args: readonly string[]): ParsedArgs & { name: string } {
  const a = parseDeviceArgs(cmd, args);
  return { ...a, name: deviceName(ctx.prefix, a.net, a.host) };
}

/** Check the caller, then resolve the namespace it sent. */
function locate(ctx: CwgContext, t: ParsedArgs & { name: string }): Target {
  ctx.sys.checkPrivileges();
  return { ns: ctx.sys.namespace(t.pid), net: t.net, host: t.host, name: t.name };
}

function where(t: Target): string {
  return `device ${t.name} in the network namespace of pid ${t.ns.pid}`;
}

function requireDevice(ctx: CwgContext, t: Target): CwgDevice {
  const d = ctx.sys.device(t.ns, t.name);
  if (d !== null) return d;
  if (ctx.sys.linkExists(t.ns, t.name)) throw new CwgError(`${where(t)} is not managed by cwg`);
  throw new CwgError(`no ${where(t)}`);
}

/** `cwg_create <pid> <net> <host> <port>`: returns the public key line to print. */
export async function cwgCreate(ctx: CwgContext, args: readonly string[]): Promise<string> {
  const parsed = parseTarget(ctx, 'cwg_create', args);
  const port = parsed.port!;
  const t = locate(ctx, parsed);
  if (ctx.sys.device(t.ns, t.name) !== null || ctx.sys.linkExists(t.ns, t.name)) throw new CwgError(`${where(t)} already exists`);
  if (ctx.signal?.aborted) throw new CwgError('interrupted; nothing was left behind');
  const priv = generatePrivateKey();
  const pub = publicKey(priv);
  try {
    await ctx.sys.createDevice({ ns: t.ns, name: t.name, net: t.net, host: t.host, cidr: hostCidr(t.net, t.host), port, privateKey: priv });
  } finally {
    priv.fill(0);
  }
  if (ctx.signal?.aborted) {
    await ctx.sys.destroyDevice(t.ns, t.name);
    throw new CwgError('interrupted; nothing was left behind');
  }
  return `${encodeBase64Key(pub)}\n`;
}

/** `cwg_connect <pid> <net> <host> <peer_endpoint> <peer_key>`: the device's one peer, replaced. */
export async function cwgConnect(ctx: CwgContext, args: readonly string[]): Promise<void> {
  const parsed = parseTarget(ctx, 'cwg_connect', args);
  const endpoint = parsed.endpoint!;
  const key = parsed.key!;
  const t = locate(ctx, parsed);
  const device = requireDevice(ctx, t);
  const errno = device.configure({
    replacePeers: true,
    peers: [{ publicKey: key, endpoint, replaceAllowedIps: true, allowedIps: [parseCidr(netSubnet(t.net))] }],
  });
  if (errno !== 0) throw new CwgError(`${where(t)} refused the peer (errno ${errno})`);
}

/** `cwg_destroy <pid> <net> <host>`. */
export async function cwgDestroy(ctx: CwgContext, args: readonly string[]): Promise<void> {
  const t = locate(ctx, parseTarget(ctx, 'cwg_destroy', args));
  if (!(await ctx.sys.destroyDevice(t.ns, t.name))) throw new CwgError(`no ${where(t)}`);
}

/** `show <pid> <net> <host>`: the text `wg show` prints. */
export async function cwgShow(ctx: CwgContext, args: readonly string[], opts: ShowOptions): Promise<string> {
  const t = locate(ctx, parseTarget(ctx, 'show', args));
  const st = requireDevice(ctx, t).status();
  const pub = st.privateKey?.some((b) => b !== 0) ? publicKey(st.privateKey) : null;
  st.privateKey?.fill(0);
  return formatShow(t.name, st, pub, opts);
}
