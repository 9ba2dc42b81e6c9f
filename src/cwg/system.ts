/**
 * The real system behind the cwg commands: iproute2 (tun/ip.ts), the wireguard-ts daemon,
 * its UAPI socket (src/uapi-client.ts), /proc and the run directories.
 */
import { spawn } from 'node:child_process';
import { createSocket, type SocketType } from 'node:dgram';
import { chmodSync, lstatSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ipx from '../../tun/ip.js';
import { uapiGet, uapiSet } from '../uapi-client.js';
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
    let sock;
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

function runDaemon(ifname: string, pid: number, runDir: string): Promise<void> {
  const env = { ...process.env };
  // With LOG_LEVEL set the daemon keeps our stdio open (as wireguard-go does): our stdout must
  // carry the public key only, and our caller must not wait for the daemon's end.
  delete env.LOG_LEVEL;
  delete env.WG_TS_READY_FD;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DAEMON_SCRIPT, '--netns-pid', String(pid), '--run-dir', runDir, ifname], {
      stdio: ['ignore', 'ignore', 'pipe'],
      cwd: '/',
      env,
    });
    let err = '';
    let exitCode: number | null | undefined;
    let settled = false;
    const finish = () => {
      if (settled || exitCode === undefined) return;
      settled = true;
      if (exitCode === 0) {
        resolve();
        return;
      }
      const line = err.split('\n').find((l) => l.trim() !== '')?.trim().replace(/^wireguard-ts: /, '');
      reject(new CwgError(`cannot create device ${ifname}: ${line || `the daemon failed (exit status ${String(exitCode)})`}`));
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (err.length < 4096) err += d;
    });
    let stderrClosed = false;
    child.stderr.on('close', () => {
      stderrClosed = true;
      finish();
    });
    child.on('error', (e) => {
      settled = true;
      reject(new CwgError(`cannot start the daemon ${DAEMON_SCRIPT}: ${e.message}`));
    });
    child.on('exit', (code, signal) => {
      exitCode = signal ? -1 : code;
      if (stderrClosed) finish();
      // stderr normally closes with the daemon's parent; never wait long for it.
      else
        setTimeout(() => {
          child.stderr.destroy();
          finish();
        }, 300);
    });
  });
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
    socketExists(path) {
      try {
        return lstatSync(path).isSocket();
      } catch {
        return false;
      }
    },
    startDaemon: runDaemon,
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
