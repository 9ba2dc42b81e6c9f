/**
 * The administrator's configuration of the host service, and device names
 * `<prefix>-<net>-<host>`. The service reads it, never a client: the prefix is a security
 * boundary (cwg touches no device outside `<prefix>-<net>-<host>`), and the callers' environment
 * is theirs, not the administrator's.
 *
 * The prefix comes from
 *   1. the configuration file /etc/wireguard-ts/cwg.conf, when it exists and sets it. It must be a
 *      regular file owned by root and not writable by group or others, or the service refuses it;
 *   2. otherwise the environment variable CWG_PREFIX of the service (e.g. systemd's Environment=);
 *   3. otherwise "cwg".
 *
 * File format, one setting a line; blank lines and lines starting with '#' are ignored:
 *   prefix = NAME                  the device-name prefix
 *   group = NAME                   members of this group may use cwg too (else root only)
 *   allow_host_namespace = true    allow devices in the service's own namespace or pid 1's
 */
import { closeSync, constants as fsc, fstatSync, openSync, readSync } from 'node:fs';
import { IFNAME_MAX } from '../../tun/ifname.js';
import { CwgError } from './errors.js';
import { show } from './validate.js';

export const CONFIG_PATH = '/etc/wireguard-ts/cwg.conf';
export const PREFIX_ENV = 'CWG_PREFIX';
export const DEFAULT_PREFIX = 'cwg';

export type PrefixSource = 'file' | 'env' | 'default';

export interface PrefixConfig {
  prefix: string;
  source: PrefixSource;
  /** The file or variable it came from, for messages. */
  origin: string;
}

/** Letters, digits and '_', starting with a letter; at most 11 bytes (so that "-0-0" fits). */
export function validatePrefix(p: string, origin: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(p)) {
    throw new CwgError(`invalid prefix ${show(p)} in ${origin}: use letters, digits and '_', starting with a letter`);
  }
  if (p.length > IFNAME_MAX - 4) {
    throw new CwgError(`invalid prefix ${show(p)} in ${origin}: at most ${IFNAME_MAX - 4} characters (device names are limited to ${IFNAME_MAX} bytes)`);
  }
  return p;
}

/** The settings a configuration file sets (absent: not set). */
export interface ConfigSettings {
  prefix?: string;
  group?: string;
  allowHostNamespace?: boolean;
}

const GROUP_NAME = /^[a-z_][a-z0-9_-]{0,31}\$?$/;

/** Parse the configuration file's text. */
export function parseConfigSettings(text: string, origin: string): ConfigSettings {
  const out: ConfigSettings = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `${origin}:${i + 1}`;
    const m = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new CwgError(`${where}: expected 'prefix = NAME'`);
    const value = m[2]!;
    switch (m[1]) {
      case 'prefix':
        out.prefix = validatePrefix(value, where);
        break;
      case 'group':
        if (!GROUP_NAME.test(value)) throw new CwgError(`invalid group ${show(value)} in ${where}: expected a group name`);
        out.group = value;
        break;
      case 'allow_host_namespace':
        if (value !== 'true' && value !== 'false') throw new CwgError(`invalid allow_host_namespace ${show(value)} in ${where}: expected true or false`);
        out.allowHostNamespace = value === 'true';
        break;
      default:
        throw new CwgError(`${where}: unknown setting ${show(m[1]!)} (known: prefix, group, allow_host_namespace)`);
    }
  }
  return out;
}

/** The prefix a configuration text sets, or null when it sets none. */
export function parseConfigText(text: string, origin: string): string | null {
  return parseConfigSettings(text, origin).prefix ?? null;
}

export interface LoadOptions {
  path?: string;
  env?: NodeJS.ProcessEnv;
  /** The uid the file must belong to (root). */
  ownerUid?: number;
}

/** The whole configuration of the service. */
export interface CwgConfig extends PrefixConfig {
  /** The group whose members may use cwg besides root (null: root only). */
  group: string | null;
  allowHostNamespace: boolean;
}

/**
 * Read the configuration file if it exists (securely: no symlinks followed at the last
 * component, owner and mode checked on the open descriptor), the prefix falling back to the
 * environment.
 */
export function loadConfig(opts: LoadOptions = {}): CwgConfig {
  const settings = readSettings(opts);
  const prefix =
    settings.prefix !== undefined ? { prefix: settings.prefix, source: 'file' as const, origin: opts.path ?? CONFIG_PATH } : fromEnv(opts.env ?? process.env);
  return { ...prefix, group: settings.group ?? null, allowHostNamespace: settings.allowHostNamespace ?? false };
}

/** The prefix only, as loadConfig finds it. */
export function loadPrefix(opts: LoadOptions = {}): PrefixConfig {
  const { prefix, source, origin } = loadConfig(opts);
  return { prefix, source, origin };
}

function readSettings(opts: LoadOptions): ConfigSettings {
  const path = opts.path ?? CONFIG_PATH;
  const owner = opts.ownerUid ?? 0;
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return {};
    if (code === 'ELOOP') throw new CwgError(`configuration file ${path} is a symbolic link; refusing to use it`);
    throw new CwgError(`cannot read configuration file ${path}: ${code ?? (e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CwgError(`configuration file ${path} is not a regular file`);
    if (st.uid !== owner) throw new CwgError(`configuration file ${path} must be owned by root (uid ${owner}), not uid ${st.uid}`);
    if (st.mode & 0o022) {
      throw new CwgError(`configuration file ${path} must not be writable by group or others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`);
    }
    if (st.size > 65536) throw new CwgError(`configuration file ${path} is too large`);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return parseConfigSettings(buf.subarray(0, got).toString('utf8'), path);
  } finally {
    closeSync(fd);
  }
}

function fromEnv(env: NodeJS.ProcessEnv): PrefixConfig {
  const v = env[PREFIX_ENV];
  if (v !== undefined) return { prefix: validatePrefix(v, `environment variable ${PREFIX_ENV}`), source: 'env', origin: PREFIX_ENV };
  return { prefix: DEFAULT_PREFIX, source: 'default', origin: 'default' };
}

/**
 * `<prefix>-<net>-<host>`, or a CwgError when that is longer than Linux allows: the name is
 * never truncated (a truncated name could be another device's).
 */
export function deviceName(prefix: string, net: number, host: 0 | 1): string {
  const name = `${prefix}-${net}-${host}`;
  const len = Buffer.byteLength(name);
  if (len > IFNAME_MAX) {
    const room = IFNAME_MAX - (len - Buffer.byteLength(prefix));
    throw new CwgError(
      `device name '${name}' would be ${len} bytes but Linux allows ${IFNAME_MAX}: the prefix '${prefix}' is too long for net ${net} (at most ${room} characters)`,
    );
  }
  return name;
}

/** True for exactly the names `<prefix>-<net>-<host>` cwg may touch. */
export function isCwgName(prefix: string, name: string): boolean {
  const m = /^(.*)-(0|[1-9][0-9]*)-([01])$/.exec(name);
  return m !== null && m[1] === prefix && Number(m[2]) <= 8388607 && Buffer.byteLength(name) <= IFNAME_MAX;
}
