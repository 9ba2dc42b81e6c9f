/**
 * The real system behind the cwg commands: iproute2 (tun/ip.ts), the wireguard-ts daemon,
 * its UAPI socket (src/uapi/client.ts), /proc and the run directories.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket, type SocketType } from 'node:dgram';
import { chmodSync, lstatSync, mkdirSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ipx from '../../tun/ip.js';
import { uapiGet, uapiSet } from '../uapi/client.js';
import type { CwgSystem } from './commands.js';
import { CwgError, oneLine } from './errors.js';

const DAEMON_SCRIPT = fileURLToPath(new URL('../../../bin/wireguard-ts', import.meta.url));
/** Empty run directories of namespaces older than this are swept away by cwg_create. */
const STALE_DIR_MS = 60_000;

function wrap<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CwgError) throw e;
    throw new CwgError(oneLine(e));
  }
}

function bindable(type: SocketType, port: number): Promise<boolean | 'unsupported'> {
  return new Promise((resolve) => {
    let sock: Socket;
    try {
      sock = createSocket({ type, reuseAddr: false });
    } catch {
      resolve('unsupported');
      return;
    }
    const s = sock;
    s.once('error', (e: NodeJS.ErrnoException) => {
      s.close();
      resolve(e.code === 'EADDRINUSE' ? false : e.code === 'EAFNOSUPPORT' || e.code === 'EADDRNOTAVAIL' ? 'unsupported' : false);
    });
    s.bind({ port, address: type === 'udp6' ? '::' : '0.0.0.0', exclusive: true }, () => {
      s.close(() => resolve(true));
    });
  });
}

/** Ensure a directory exists, is a real directory owned by us, and is not group/world writable. */
function ensureDir(dir: string, mode: number): void {
  try {
    mkdirSync(dir, { mode });
    chmodSync(dir, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new CwgError(`cannot create ${dir}: ${(e as NodeJS.ErrnoException).code ?? oneLine(e)}`);
  }
  const st = lstatSync(dir);
  const uid = process.geteuid?.() ?? 0;
  if (!st.isDirectory()) throw new CwgError(`${dir} is not a directory; refusing to use it`);
  if (st.uid !== uid) throw new CwgError(`${dir} is owned by uid ${st.uid}, not ${uid}; refusing to use it`);
  if (st.mode & 0o022) throw new CwgError(`${dir} is writable by group or others; refusing to use it`);
}

/** The daemon's start-up report channel (see src/cli/wireguard-ts.ts: "READY" or "ERROR msg"). */
const READY_FD_ENV = 'WG_TS_READY_FD';
const DAEMON_START_TIMEOUT_MS = 20_000;

/**
 * Start the device's daemon: `wireguard-ts --foreground --netns-pid PID --run-dir DIR IFNAME`
 * in a session of its own (as its daemonizing mode does, minus one Node start), and wait for
 * its start-up report: READY once the TUN device is in the container and the UAPI socket
 * listens, or ERROR with its one-line reason (it exits then, leaving nothing behind). The
 * socket appearing also counts as ready, should the report channel ever be silent.
 */
function runDaemon(ifname: string, pid: number, runDir: string, socketPath: string): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, [READY_FD_ENV]: '3' };
  // The daemon's logs would go to our stdio: our stdout carries the public key only.
  delete env.LOG_LEVEL;
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [DAEMON_SCRIPT, '--foreground', '--netns-pid', String(pid), '--run-dir', runDir, ifname], {
        detached: true,
        stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
        cwd: '/',
        env,
      });
    } catch (e) {
      reject(new CwgError(`cannot start the daemon ${DAEMON_SCRIPT}: ${oneLine(e)}`));
      return;
    }
    const report = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
    let text = '';
    let settled = false;
    const settle = (err: CwgError | null) => {
      if (settled) return;
      settled = true;
      clearInterval(poll);
      clearTimeout(timer);
      report.destroy();
      if (err) {
        reject(err);
      } else {
        child.unref();
        resolve(child.pid!);
      }
    };
    const failed = (why: string) => new CwgError(`cannot create device ${ifname}: ${why}`);
    report.setEncoding('utf8');
    report.on('error', () => {});
    report.on('data', (d: string) => {
      text += d;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      const line = text.slice(0, nl);
      if (line === 'READY') settle(null);
      else settle(failed(line.startsWith('ERROR ') ? line.slice(6) : `unexpected start-up report ${JSON.stringify(line.slice(0, 80))}`));
    });
    child.on('error', (e) => settle(new CwgError(`cannot start the daemon ${DAEMON_SCRIPT}: ${e.message}`)));
    child.on('exit', (code, signal) => {
      // An ERROR report may still be in the pipe: give it a moment.
      setTimeout(() => settle(failed(`the daemon exited during start-up (${signal ?? `status ${String(code)}`})`)), 200);
    });
    // Fallback readiness: a new socket (not one a killed daemon left behind) at the path.
    const before = socketInode(socketPath);
    const poll = setInterval(() => {
      const now = socketInode(socketPath);
      if (now !== null && now !== before && child.exitCode === null && child.signalCode === null) settle(null);
    }, 50);
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      settle(failed(`the daemon did not become ready within ${DAEMON_START_TIMEOUT_MS / 1000} s`));
    }, DAEMON_START_TIMEOUT_MS);
  });
}

function socketInode(path: string): number | null {
  try {
    const st = lstatSync(path);
    return st.isSocket() ? st.ino : null;
  } catch {
    return null;
  }
}

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

export function systemOps(): CwgSystem {
  return {
    checkPrivileges() {
      if (process.geteuid?.() !== 0) {
        throw new CwgError('must be run as root (it creates network devices in other network namespaces)');
      }
    },
    netnsInode: (pid) => wrap(() => ipx.netnsInode(pid)),
    linkExists: async (name, pid) => wrap(() => ipx.linkExists(name, { netnsPid: pid })),
    addrAdd: async (name, cidr, pid) => wrap(() => ipx.addrAdd(name, cidr, { netnsPid: pid })),
    linkSetUp: async (name, pid) => wrap(() => ipx.linkSetUp(name, { netnsPid: pid })),
    linkDel: async (name, pid) =>
      wrap(() => {
        if (!ipx.linkExists(name, { netnsPid: pid })) return false;
        ipx.linkDel(name, { netnsPid: pid, ifExists: true });
        return true;
      }),
    async udpPortFree(port) {
      const v6 = await bindable('udp6', port);
      if (v6 === false) return false;
      return (await bindable('udp4', port)) === true;
    },
    ensureRunDir(dir) {
      const base = join(dir, '..');
      ensureDir(join(base, '..'), 0o755);
      ensureDir(base, 0o700);
      sweepStale(base, dir);
      ensureDir(dir, 0o700);
    },
    removeRunDirIfEmpty(dir) {
      try {
        rmdirSync(dir);
      } catch {
        /* not empty or already gone */
      }
    },
    socketExists: isSocket,
    removeStaleSocket(path) {
      return new Promise((resolve) => {
        const sock = createConnection(path);
        sock.on('connect', () => {
          sock.destroy();
          resolve();
        });
        sock.on('error', (e: NodeJS.ErrnoException) => {
          if (e.code === 'ECONNREFUSED') {
            try {
              unlinkSync(path);
            } catch {
              /* raced with someone else */
            }
          }
          resolve();
        });
      });
    },
    startDaemon: (ifname, pid, runDir) => runDaemon(ifname, pid, runDir, join(runDir, `${ifname}.sock`)),
    stopDaemon(daemonPid) {
      try {
        process.kill(daemonPid, 'SIGTERM');
      } catch {
        /* gone already */
      }
    },
    async uapiSet(socketPath, lines) {
      try {
        return await uapiSet(socketPath, lines);
      } catch (e) {
        throw new CwgError(`cannot configure the device through ${socketPath}: ${oneLine(e)}`);
      }
    },
    async uapiGet(socketPath) {
      try {
        return await uapiGet(socketPath);
      } catch (e) {
        throw new CwgError(`cannot read the device through ${socketPath}: ${oneLine(e)}`);
      }
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
}

/**
 * Run directories stay behind, empty, when a container's namespace goes away (its daemon
 * removes only its socket). Remove those that have been empty for a while; rmdir refuses a
 * directory that is not empty, so a live device is never affected.
 */
function sweepStale(base: string, keep: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  const now = Date.now();
  for (const n of names) {
    const p = join(base, n);
    if (p === keep || !/^[0-9]+$/.test(n)) continue;
    try {
      const st = lstatSync(p);
      if (st.isDirectory() && now - st.mtimeMs > STALE_DIR_MS) rmdirSync(p);
    } catch {
      /* not empty, or raced with another cwg: leave it */
    }
  }
}
