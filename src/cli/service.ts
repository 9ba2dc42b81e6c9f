/**
 * `wireguard-ts-service [--config FILE] [--state-dir DIR]`: the host service of this network
 * namespace (docs/SERVICE.md). Run by systemd (wireguard-ts.service, Restart=always) in the
 * host namespace, or started on demand by the first cwg command run as root that finds none
 * (it leaves the caller's cgroups first). A second one in the same namespace exits at once,
 * quietly: the control socket's name is taken.
 */

import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { addonProblem } from '../../tun/addon.js';
import { leaveCallerCgroups } from '../../tun/cgroup.js';
import { selectSuite } from '../../tun/openssl.js';
import { CONFIG_PATH } from '../cwg/config.js';
import { createLogger, logLevelFromEnv } from '../log.js';
import { Service } from '../service/service.js';
import { productionOs } from '../service/system-os.js';
import { type ControlTransport, listenControl } from '../service/transport.js';
import { startWarmUp, type WarmUpResult } from '../warmup.js';

const PROG = 'wireguard-ts-service';
/** Where the state of the service of each namespace lives (tmpfs: containers do not outlive a boot). */
export const STATE_BASE = '/run/wireguard-ts';
/** How long a second service waits for the control socket's name before leaving it to the first. */
const LISTEN_RETRY_MS = 5000;

const USAGE = `Usage: ${PROG} [--config FILE] [--state-dir DIR]

The wireguard-ts host service: holds every cwg device of this network namespace (their TUN
devices in the containers' namespaces, their UDP sockets here) and answers the cwg commands
on the abstract control socket "wireguard-ts/control". Runs in the foreground.

  --config FILE     the administrator's configuration (default ${CONFIG_PATH}; root-owned)
  --state-dir DIR   where device records are kept for crash recovery
                    (default ${STATE_BASE}/<inode of this network namespace>)
Started by anything but systemd (a cwg command starts it on demand, with an empty
environment), it first leaves the cgroups it inherited, so that removing the caller's
container does not take the service with it; under systemd (INVOCATION_ID set) it stays in
its unit's cgroup.
Environment: LOG_LEVEL=verbose|error|silent (default error); CWG_PREFIX (the device-name
prefix when the configuration sets none); WG_TS_CRYPTO, WG_TS_WARMUP as for wireguard-ts.`;

interface Args {
  configPath: string;
  stateDir: string | null;
}

class UsageError extends Error {}

function parseArgs(argv: readonly string[]): Args | 'help' {
  const a: Args = { configPath: CONFIG_PATH, stateDir: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || !v.startsWith('/')) throw new UsageError(`option ${arg} needs an absolute path`);
      return v;
    };
    if (arg === '-h' || arg === '--help') return 'help';
    if (arg === '--config') a.configPath = value();
    else if (arg === '--state-dir') a.stateDir = value();
    else throw new UsageError(`unknown argument '${arg.slice(0, 64)}'`);
  }
  return a;
}

function fail(msg: string): never {
  process.stderr.write(`${PROG}: ${msg}\n`);
  process.exit(1);
}

/** Enough descriptors for a thousand devices (TUN, two UDP sockets and a UAPI socket each). */
function raiseFileLimit(): void {
  let max = 1 << 20;
  try {
    max = Math.min(max, Number(readFileSync('/proc/sys/fs/nr_open', 'utf8')));
  } catch {
    /* keep the default */
  }
  for (const prlimit of ['/usr/bin/prlimit', '/bin/prlimit']) {
    try {
      statSync(prlimit);
    } catch {
      continue;
    }
    spawnSync(prlimit, ['--pid', String(process.pid), `--nofile=${max}:${max}`], { stdio: 'ignore', env: {} });
    return;
  }
}

/** Whether `pid` is the kernel thread daemon (comm "kthreadd", PF_KTHREAD set). */
function isKthreadd(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const flags = Number(stat.slice(close + 2).split(' ')[6]);
    return comm === 'kthreadd' && (flags & 0x00200000) !== 0;
  } catch {
    return false;
  }
}

/** The cookie of a namespace file, or null when it cannot be read. */
function namespaceKey(path: string, identify: (fd: number) => { key: string }): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    return identify(fd).key;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

export async function main(argv: readonly string[]): Promise<void> {
  let args: Args | 'help';
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) fail(`${e.message} (see '${PROG} --help')`);
    throw e;
  }
  if (args === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const noAddon = addonProblem();
  if (noAddon !== null) fail(noAddon);
  if (process.geteuid?.() !== 0) fail('must be run as root (it creates network devices in other network namespaces)');
  process.umask(0o077);
  const logger = createLogger(logLevelFromEnv(), '');
  if (process.env.INVOCATION_ID === undefined) {
    for (const f of leaveCallerCgroups()) logger.error(`cannot leave the caller's cgroup ${f}`);
  }
  raiseFileLimit();
  const os = productionOs();
  const self = namespaceKey('/proc/self/ns/net', (fd) => os.identify(fd));
  if (self === null) fail('cannot identify its own network namespace');
  const hostNamespaces = new Map<string, string>([[self, "the host service's own"]]);
  const init = namespaceKey('/proc/1/ns/net', (fd) => os.identify(fd));
  if (init !== null && init !== self) hostNamespaces.set(init, "pid 1's");
  // The initial network namespace, as kernel threads have it (kthreadd is pid 2 of the host's
  // pid namespace): even where pid 1's cannot be opened, a kernel thread's pid is refused.
  if (isKthreadd(2)) {
    const kernel = namespaceKey('/proc/2/ns/net', (fd) => os.identify(fd));
    if (kernel !== null && !hostNamespaces.has(kernel)) hostNamespaces.set(kernel, "the kernel threads'");
  }
  const crypto = selectSuite(process.env.WG_TS_CRYPTO);
  const stateDir = args.stateDir ?? `${STATE_BASE}/${statSync('/proc/self/ns/net').ino}`;
  // The name may be held by a service that is still dying (a killed process closes its
  // descriptors, TUN devices first, for a while): try again for a few seconds before giving way.
  let listener: ControlTransport | null = null;
  for (const end = Date.now() + LISTEN_RETRY_MS; listener === null; ) {
    try {
      listener = listenControl();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') fail(`cannot listen on the control socket: ${(e as Error).message}`);
      if (Date.now() >= end) {
        logger.verbose('another host service serves this namespace; exiting');
        process.exit(0);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const service = new Service({
    os,
    crypto,
    logger,
    configPath: args.configPath,
    env: process.env,
    stateDir,
    hostNamespaces,
    deviceLogger: (name) => createLogger(logLevelFromEnv(), `(${name}) `),
  });
  // Serve at once (clients hear heartbeats), but answer nothing before the recorded devices
  // are back, so that a request never sees a half-recovered registry.
  const recovered = service.recover().then(
    (r) => logger.verbose(`recovered ${r.recovered} devices (${r.forgotten} records of gone namespaces deleted, ${r.failed} failed)`),
    (e: Error) => logger.error(`recovery failed: ${e.message}`),
  );
  service.control.holdUntil(recovered);
  listener.serve((conn) => service.control.accept(conn));
  await recovered;
  let warm: WarmUpResult | null = null;
  void startWarmUp(crypto, logger).then((w) => {
    warm = w;
  });
  const stop = async (why: string) => {
    logger.verbose(`stopping: ${why}${warm === null ? ' (no warm-up ran)' : ''}`);
    listener.close();
    await service.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGHUP', () => {});
  // A bug reached the event loop: log it and go on serving the other devices.
  process.on('uncaughtException', (e) => logger.error(`internal error: ${e.stack ?? e.message}`));
}

// Run as a program (the C client starts dist/src/cli/service.js directly, with an empty
// environment); bin/wireguard-ts-service imports main() instead.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: Error) => fail(e.message));
}
