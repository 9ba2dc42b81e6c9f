/**
 * The device-name prefix and device names `<prefix>-<net>-<host>`.
 *
 * The prefix is the administrator's choice:
 *   1. the configuration file /etc/wireguard-ts/cwg.conf, when it exists, wins. It must be a
 *      regular file owned by root and not writable by group or others, or cwg refuses to run.
 *   2. otherwise the environment variable CWG_PREFIX, when set;
 *   3. otherwise "cwg".
 * The file wins because the prefix is a security boundary (cwg touches no device outside
 * `<prefix>-<net>-<host>`): whoever can set the environment of a cwg call must not be able to
 * widen it where the administrator has fixed it.
 *
 * File format: lines `prefix = NAME`; blank lines and lines starting with '#' are ignored.
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

/** Parse the configuration file's text; returns the prefix or null when the file sets none. */
export function parseConfigText(text: string, origin: string): string | null {
  let prefix: string | null = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new CwgError(`${origin}:${i + 1}: expected 'prefix = NAME'`);
    if (m[1] !== 'prefix') throw new CwgError(`${origin}:${i + 1}: unknown setting ${show(m[1]!)} (only 'prefix' is known)`);
    prefix = validatePrefix(m[2]!, `${origin}:${i + 1}`);
  }
  return prefix;
}

export interface LoadOptions {
  path?: string;
  env?: NodeJS.ProcessEnv;
  /** The uid the file must belong to (root). */
  ownerUid?: number;
}

/**
 * Read the configuration file if it exists (securely: no symlinks followed at the last
 * component, owner and mode checked on the open descriptor), else fall back to the environment.
 */
export function loadPrefix(opts: LoadOptions = {}): PrefixConfig {
  const path = opts.path ?? CONFIG_PATH;
  const env = opts.env ?? process.env;
  const owner = opts.ownerUid ?? 0;
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return fromEnv(env);
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
    const prefix = parseConfigText(buf.subarray(0, got).toString('utf8'), path);
    if (prefix === null) return fromEnv(env);
    return { prefix, source: 'file', origin: path };
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
