/**
 * `cwg <command> [args]`, and the cwg_create / cwg_connect / cwg_destroy entry points.
 * Every failure is one line on stderr ("<command>: <message>") and exit status 1; nothing is
 * printed on stdout unless the command succeeded.
 */
import { fstatSync } from 'node:fs';
import { addonProblem } from '../../tun/addon.js';
import { type CwgContext, cwgConnect, cwgCreate, cwgDestroy, cwgShow, RUN_BASE } from '../cwg/commands.js';
import { loadPrefix } from '../cwg/config.js';
import { CwgError, oneLine } from '../cwg/errors.js';
import { genkey, genpsk, pubkey, WORLD_ACCESSIBLE_WARNING } from '../cwg/keytools.js';
import { wantColor } from '../cwg/show.js';
import { type Command, commandUsage, isCommand, mainUsage, synopsis } from '../cwg/usage.js';

const PROG = 'cwg';

/** What a run produced; `main` writes it, tests can call `run` directly. */
export interface RunResult {
  code: 0 | 1;
  stdout: string;
  stderr: string;
}

export interface RunIo {
  readStdin(): Promise<Uint8Array>;
  stdoutIsTty: boolean;
  /** True when stdout is a regular file that others may access (wg genkey warns then). */
  stdoutWorldAccessible: boolean;
  env: NodeJS.ProcessEnv;
  /** Builds the context for the device commands (prefix, system); errors are CwgError. */
  context(): Promise<CwgContext>;
  /** Aborted when the process is asked to stop (cwg_create undoes its work then). */
  signal?: AbortSignal;
}

function ok(stdout = '', stderr = ''): RunResult {
  return { code: 0, stdout, stderr };
}

function failure(who: string, msg: string): RunResult {
  return { code: 1, stdout: '', stderr: `${who}: ${msg}\n` };
}

export async function run(argv: readonly string[], io: RunIo): Promise<RunResult> {
  const [first, ...rest] = argv;
  if (first === undefined) return failure(PROG, `missing command (see '${PROG} --help')`);
  if (first === '--help' || first === '-h' || first === 'help') {
    if (rest.length === 0) return ok(mainUsage());
    if (rest.length === 1 && isCommand(rest[0]!)) return ok(commandUsage(rest[0]!));
    return failure(PROG, `unknown command ${JSON.stringify(rest.join(' '))} (see '${PROG} --help')`);
  }
  if (!isCommand(first)) return failure(PROG, `unknown command ${JSON.stringify(first)} (see '${PROG} --help')`);
  const cmd: Command = first;
  if (rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h')) return ok(commandUsage(cmd));
  try {
    switch (cmd) {
      case 'genkey':
      case 'genpsk': {
        if (rest.length) return { code: 1, stdout: '', stderr: `Usage: ${PROG} ${synopsis(cmd)}\n` };
        const warn = io.stdoutWorldAccessible ? WORLD_ACCESSIBLE_WARNING : '';
        return ok(cmd === 'genkey' ? genkey() : genpsk(), warn);
      }
      case 'pubkey': {
        if (rest.length) return { code: 1, stdout: '', stderr: `Usage: ${PROG} ${synopsis(cmd)}\n` };
        const r = pubkey(await io.readStdin());
        return r.ok ? ok(r.output) : failure(PROG, r.error);
      }
      default:
        break;
    }
    const ctx = await io.context();
    switch (cmd) {
      case 'cwg_create':
        return ok(await cwgCreate({ ...ctx, ...(io.signal ? { signal: io.signal } : {}) }, rest));
      case 'cwg_connect':
        await cwgConnect(ctx, rest);
        return ok();
      case 'cwg_destroy':
        await cwgDestroy(ctx, rest);
        return ok();
      case 'show':
        return ok(await cwgShow(ctx, rest, { nowSec: Math.floor(Date.now() / 1000), color: wantColor(io.stdoutIsTty, io.env) }));
    }
  } catch (e) {
    const who = cmd.startsWith('cwg_') ? cmd : `${PROG} ${cmd}`;
    if (e instanceof CwgError) return failure(who, e.message);
    return failure(who, `internal error: ${oneLine(e)}`);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream) {
    const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    chunks.push(b);
    size += b.length;
    if (size > 1 << 20) break; // wg would reject it anyway; don't buffer without bound
  }
  return Buffer.concat(chunks);
}

function stdoutWorldAccessible(): boolean {
  try {
    const st = fstatSync(1);
    return st.isFile() && (st.mode & 0o007) !== 0;
  } catch {
    return false;
  }
}

/**
 * The production context: prefix from /etc/wireguard-ts/cwg.conf or CWG_PREFIX, the real system.
 * The device commands need the native addon (namespaces, the daemon's TUN and UDP): without it
 * they refuse first, with what to install; the key tools work without it.
 */
async function productionContext(): Promise<CwgContext> {
  const noAddon = addonProblem();
  if (noAddon !== null) throw new CwgError(noAddon);
  const { prefix } = loadPrefix();
  const { systemOps } = await import('../cwg/system.js');
  return { prefix, runBase: RUN_BASE, sys: systemOps() };
}

function write(fd: NodeJS.WriteStream, text: string): Promise<void> {
  if (!text) return Promise.resolve();
  return new Promise((resolve) => {
    fd.write(text, () => resolve());
  });
}

/** Entry point of bin/cwg and the cwg_* shims. */
export async function main(argv: readonly string[]): Promise<void> {
  process.umask(0o077);
  // A closed pipe on stdout (cwg genkey | head -c 1) is not an error worth a stack trace.
  process.stdout.on('error', () => {});
  // cwg_create must not leave a half-made device behind when it is interrupted: the first
  // signal asks it to undo its work and fail; a second one ends the process at once.
  const abort = new AbortController();
  if (argv[0] === 'cwg_create') {
    const onSignal = (sig: NodeJS.Signals) => {
      if (abort.signal.aborted) process.exit(1);
      abort.abort(sig);
    };
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  }
  let result: RunResult;
  try {
    result = await run(argv, {
      signal: abort.signal,
      readStdin: () => readAll(process.stdin),
      stdoutIsTty: process.stdout.isTTY === true,
      stdoutWorldAccessible: stdoutWorldAccessible(),
      env: process.env,
      context: productionContext,
    });
  } catch (e) {
    result = failure(PROG, `internal error: ${oneLine(e)}`);
  }
  await write(process.stderr, result.stderr);
  await write(process.stdout, result.stdout);
  process.exitCode = result.code;
}
