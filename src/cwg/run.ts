/**
 * The cwg commands as one function: argv in, exit code and output out. The key tools and the
 * usage texts need nothing else; the device commands get their context (prefix, system) from
 * `io.context()`: in the host service, the caller's request (src/service/service.ts).
 * Every failure is one line on stderr ("<command>: <message>") and exit status 1; nothing is
 * printed on stdout unless the command succeeded.
 */
import { type CwgContext, cwgConnect, cwgCreate, cwgDestroy, cwgShow } from './commands.js';
import { CwgError, oneLine } from './errors.js';
import { genkey, genpsk, pubkey, WORLD_ACCESSIBLE_WARNING } from './keytools.js';
import { wantColor } from './show.js';
import { type Command, commandUsage, isCommand, mainUsage, synopsis } from './usage.js';

export const PROG = 'cwg';

/** How a command names itself in its messages: "cwg_create", but "cwg show". */
export function commandName(cmd: string): string {
  return cmd.startsWith('cwg_') ? cmd : `${PROG} ${cmd}`;
}

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
}

function ok(stdout = '', stderr = ''): RunResult {
  return { code: 0, stdout, stderr };
}

export function failure(who: string, msg: string): RunResult {
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
        return ok(await cwgCreate(ctx, rest));
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
    const who = commandName(cmd);
    if (e instanceof CwgError) return failure(who, e.message);
    return failure(who, `internal error: ${oneLine(e)}`);
  }
}
