/**
 * `wireguard-ts [-f|--foreground] [--netns-pid PID] [--run-dir DIR] IFNAME`
 *
 * A drop-in for `wireguard-go IFNAME` (wireguard.com/xplatform): creates the TUN device,
 * serves the UAPI on RUN_DIR/IFNAME.sock and, unless --foreground, daemonizes. The parent
 * exits 0 only once the device and the socket are ready, 1 with a message otherwise.
 */
import { spawn } from 'node:child_process';
import { closeSync, readFileSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CryptoSuite } from '../../crypto/suite.js';
import { quote } from '../../noise/quote.js';
import { addonProblem } from '../../tun/addon.js';
import { ifnameProblem } from '../../tun/ifname.js';
import { selectSuite } from '../../tun/openssl.js';
import { Daemon, DEFAULT_RUN_DIR } from '../daemon.js';
import { createLogger, logLevelFromEnv } from '../log.js';
import { type MetricsAddress, parseMetricsAddress } from '../metrics/address.js';
import { startWarmUp, type WarmUpResult } from '../warmup.js';

const PROG = 'wireguard-ts';
const READY_FD_ENV = 'WG_TS_READY_FD';
const CRYPTO_ENV = 'WG_TS_CRYPTO';
const STARTUP_TIMEOUT_MS = 15_000;

const USAGE = `Usage: ${PROG} [-f/--foreground] [--netns-pid PID] [--run-dir DIR] [--metrics ADDRESS] INTERFACE-NAME

A userspace WireGuard implementation in TypeScript, compatible with wireguard-go:
creates the TUN device INTERFACE-NAME and serves the configuration protocol on
RUN_DIR/INTERFACE-NAME.sock (default ${DEFAULT_RUN_DIR}), so that wg(8) and wg-quick(8)
drive it. Without --foreground it runs in the background once the device is ready.

  -f, --foreground     stay in the foreground
  --netns-pid PID      move the device into the network namespace of PID (the UDP
                       socket stays in the namespace where ${PROG} was started)
  --run-dir DIR        directory for the UAPI socket (default ${DEFAULT_RUN_DIR})
  --metrics ADDRESS    serve Prometheus metrics at http://ADDRESS/metrics: a loopback
                       address (127.0.0.1:9586, [::1]:9586) or an absolute UNIX socket
                       path (mode 0600), in the namespace where ${PROG} was started
  --metrics-allow-public  allow --metrics on an address that is not loopback (the
                       metrics show every peer's public key and endpoint)
  --version            print the version
Environment: LOG_LEVEL=verbose|error|silent (default error).
  WG_TS_WARMUP=0       no JIT warm-up after start-up (it costs ~0.4 s of CPU and
                       makes the first packets and handshakes as fast as later ones)
  WG_TS_CRYPTO=NAME    crypto suite: openssl (the addon; the default when built), js
                       (node:crypto and @noble) or noble (pure JavaScript)
  WG_TS_READY_FD=N     for supervisors: run in the foreground and write "READY" (or
                       "ERROR <message>") and a newline to the inherited fd N once the
                       device and the socket are ready (or start-up failed)`;

class UsageError extends Error {}

interface Args {
  foreground: boolean;
  netnsPid?: number;
  runDir: string;
  ifname: string;
  metrics?: MetricsAddress;
}

function parseArgs(argv: string[]): Args | 'help' | 'version' {
  let foreground = false;
  let netnsPid: number | undefined;
  let runDir = DEFAULT_RUN_DIR;
  let metricsText: string | undefined;
  let allowPublic = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`option ${quote(a, "'")} needs a value`);
      return v;
    };
    if (a === '-h' || a === '--help') return 'help';
    else if (a === '--version' || a === '-v') return 'version';
    else if (a === '-f' || a === '--foreground') foreground = true;
    else if (a === '--netns-pid') {
      const v = value();
      if (!/^[1-9][0-9]{0,9}$/.test(v) || Number(v) > 4194304) throw new UsageError(`invalid pid ${quote(v, "'")}`);
      netnsPid = Number(v);
    } else if (a === '--run-dir') {
      runDir = value();
      if (!runDir.startsWith('/')) throw new UsageError(`--run-dir must be an absolute path`);
    } else if (a === '--metrics') metricsText = value();
    else if (a === '--metrics-allow-public') allowPublic = true;
    else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${quote(a, "'")}`);
    else rest.push(a);
  }
  if (rest.length !== 1) throw new UsageError(rest.length === 0 ? 'missing interface name' : 'too many arguments');
  const ifname = rest[0]!;
  const bad = ifnameProblem(ifname);
  if (bad) throw new UsageError(bad);
  let metrics: MetricsAddress | undefined;
  if (metricsText !== undefined) {
    const m = parseMetricsAddress(metricsText, allowPublic, '--metrics-allow-public is given');
    if (typeof m === 'string') throw new UsageError(`invalid --metrics ${quote(metricsText)}: ${m}`);
    metrics = m;
  } else if (allowPublic) throw new UsageError('--metrics-allow-public without --metrics');
  return { foreground, runDir, ifname, ...(netnsPid !== undefined ? { netnsPid } : {}), ...(metrics !== undefined ? { metrics } : {}) };
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** `msg` as one line: control characters (from arguments, or from other programs' messages) shown as '?'. */
const oneLine = (msg: string): string => msg.replace(/[\x00-\x1f\x7f]/g, '?');

function fail(msg: string): never {
  process.stderr.write(`${PROG}: ${oneLine(msg)}\n`);
  process.exit(1);
}

/** Run the daemon in this process (foreground, or the child of a daemonizing parent). */
async function runForeground(args: Args): Promise<void> {
  const readyFd = process.env[READY_FD_ENV] ? Number(process.env[READY_FD_ENV]) : -1;
  delete process.env[READY_FD_ENV];
  const report = (line: string) => {
    if (readyFd < 0) return;
    try {
      writeSync(readyFd, line + '\n');
      closeSync(readyFd);
    } catch {
      /* the parent is gone: nothing to tell */
    }
  };
  const logger = createLogger(logLevelFromEnv(), `(${args.ifname}) `);
  let daemon: Daemon;
  let crypto: CryptoSuite;
  try {
    crypto = selectSuite(process.env[CRYPTO_ENV]);
    daemon = await Daemon.start({
      crypto,
      ifname: args.ifname,
      runDir: args.runDir,
      logger,
      ...(args.netnsPid !== undefined ? { netnsPid: args.netnsPid } : {}),
      ...(args.metrics !== undefined ? { metrics: args.metrics } : {}),
    });
  } catch (e) {
    const msg = (e as Error).message;
    report(`ERROR ${oneLine(msg)}`);
    fail(msg);
  }
  const stop = (why: string) => {
    daemon.close(why);
  };
  process.on('SIGTERM', () => stop('received SIGTERM'));
  process.on('SIGINT', () => stop('received SIGINT'));
  process.on('SIGHUP', () => {});
  process.on('uncaughtException', (e) => {
    logger.error(`internal error: ${e.stack ?? e.message}`);
    daemon.close('internal error');
    process.exit(1);
  });
  report('READY');
  // Compile the data path now rather than on the first real packets (see src/warmup.ts); what
  // it returns stays referenced until the process exits.
  let warm: WarmUpResult | null = null;
  void startWarmUp(crypto, logger).then((r) => (warm = r));
  const reason = await daemon.closedPromise();
  logger.verbose(`Shutting down: ${reason}${warm === null ? ' (no warm-up ran)' : ''}`);
  process.exit(0);
}

/** Start a detached copy of ourselves in the foreground and wait until it says it is ready. */
function daemonize(argv: string[]): Promise<void> {
  const script = fileURLToPath(new URL('../../../bin/wireguard-ts', import.meta.url));
  // As wireguard-go: the child keeps our stdout/stderr only when LOG_LEVEL asks for logs.
  const keepOutput = process.env.LOG_LEVEL !== undefined && logLevelFromEnv() !== 'silent';
  const child = spawn(process.execPath, [script, '--foreground', ...argv], {
    detached: true,
    cwd: '/',
    stdio: ['ignore', keepOutput ? 'inherit' : 'ignore', keepOutput ? 'inherit' : 'ignore', 'pipe'],
    env: { ...process.env, [READY_FD_ENV]: '3' },
  });
  return new Promise((resolve) => {
    let text = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      fail('the daemon did not become ready in time');
    }, STARTUP_TIMEOUT_MS);
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => (text += d));
    pipe.on('error', () => {});
    pipe.on('close', () => {
      clearTimeout(timer);
      const line = text.split('\n')[0] ?? '';
      if (line === 'READY') {
        child.unref();
        resolve();
        return;
      }
      fail(line.startsWith('ERROR ') ? line.slice(6) : 'the daemon exited during start-up');
    });
  });
}

export async function main(argv: string[]): Promise<void> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) fail(`${e.message} (see '${PROG} --help')`);
    throw e;
  }
  if (args === 'help') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  if (args === 'version') {
    process.stdout.write(`${PROG} v${version()}\n`);
    return;
  }
  // Before anything else: without the addon there is no TUN and no UDP (an install without a C compiler).
  const noAddon = addonProblem();
  if (noAddon !== null) fail(noAddon);
  if (args.foreground || process.env[READY_FD_ENV]) {
    await runForeground(args);
    return;
  }
  await daemonize(argv.filter((a) => a !== '-f' && a !== '--foreground'));
  process.exit(0);
}
