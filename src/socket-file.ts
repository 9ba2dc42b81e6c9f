/**
 * A UNIX socket at a path in the file system (the UAPI socket, the metrics socket), from
 * claiming the path to removing it:
 * - `claimSocketPath` looks at what is there: nothing, a socket nobody accepts on (stale: it
 *   is removed), a live one (refused: another process serves it), or something else;
 * - `bindPathFor` gives the name to bind: a temporary one beside the path when it fits in
 *   sun_path, so that `publishSocket` can set the mode and then rename it into place: clients
 *   never see the socket with other permissions, and libuv's unlink-on-close hits the
 *   temporary name, never a socket some other process has put at the path meanwhile;
 * - `removeIfOurs` removes the path at close only if it is still the socket we published.
 */
import { chmodSync, lstatSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';

/** Longest path a sockaddr_un holds (108 bytes with the terminating NUL). */
export const SUN_PATH_MAX = 107;

/** What was at a socket's path: `free` (nothing, or a stale socket that was removed). */
export type SocketPathState = 'free' | 'stale-removed' | 'live' | 'not-a-socket';

/** Is something accepting connections on this UNIX socket path? */
export function socketAlive(path: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    const done = (alive: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(alive);
    };
    // A connect that neither succeeds nor fails: someone holds it; do not steal the path.
    const t = setTimeout(() => done(true), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const unlinkIfThere = (path: string): void => {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
};

/**
 * Make the path's directory (0755) and clear the way for a socket at `path`: a stale socket is
 * removed; a live one is left alone (`live`), and so is anything that is not a socket unless
 * `replaceNonSocket` (then it is removed as a stale socket would be).
 */
export async function claimSocketPath(path: string, replaceNonSocket = false): Promise<SocketPathState> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'free';
    throw e;
  }
  if (!isSocket && !replaceNonSocket) return 'not-a-socket';
  if (await socketAlive(path)) return 'live';
  unlinkIfThere(path);
  return 'stale-removed';
}

/** The name to bind for a socket to be published at `path` (a leftover of ours there is removed). */
export function bindPathFor(path: string): string {
  const tmp = `${path}.${process.pid}~`;
  if (Buffer.byteLength(tmp) > SUN_PATH_MAX) return path;
  try {
    unlinkSync(tmp);
  } catch {
    // not there
  }
  return tmp;
}

/**
 * Run `bind` (a listen() on a path: bind(2) happens synchronously inside it) with umask 077, so
 * the socket file is created 0700 at most before `publishSocket` sets its mode.
 */
export function withPrivateUmask<T>(bind: () => T): T {
  let old: number | undefined;
  try {
    old = process.umask(0o077);
  } catch {
    old = undefined; // worker threads cannot change the umask; publishSocket's chmod still applies
  }
  try {
    return bind();
  } finally {
    if (old !== undefined) process.umask(old);
  }
}

/** Identity of a socket file (inode numbers alone get reused at once on tmpfs). */
function identOf(path: string): string {
  const st = lstatSync(path, { bigint: true });
  return `${st.dev}:${st.ino}:${st.ctimeNs}`;
}

/** Set the bound socket's mode, move it to `path`; returns its identity for `removeIfOurs`. */
export function publishSocket(bindPath: string, path: string, mode = 0o600): string {
  chmodSync(bindPath, mode);
  if (bindPath !== path) renameSync(bindPath, path);
  return identOf(path);
}

/** Remove `path` if it is still the socket `publishSocket` returned `ident` for. */
export function removeIfOurs(path: string, ident: string | null): void {
  try {
    if (ident !== null && identOf(path) === ident) unlinkSync(path);
  } catch {
    // already gone
  }
}
