/**
 * `cwg <command> [args]`, and the cwg_create / cwg_connect / cwg_destroy entry points.
 * Every failure is one line on stderr ("<command>: <message>") and exit status 1; nothing is
 * printed on stdout unless the command succeeded.
 *
 * The key tools and the usage texts run here. The device commands are the host service's
 * (src/service/): `main` hands them to the client build/Release/net-admin-helper, which sends
 * them with the container's namespace to the service, and the service runs `run` below.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, fstatSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { addonProblem } from '../../tun/addon.js';
import { type DeviceCommand, parseDeviceArgs } from '../cwg/commands.js';
import { CwgError, oneLine } from '../cwg/errors.js';
import { commandName, failure, PROG, type RunResult, run } from '../cwg/run.js';

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

/** The client of the host service (docs/SERVICE.md), built by `npm ci`. */
export const CLIENT = fileURLToPath(new URL('../../../build/Release/net-admin-helper', import.meta.url));

const DEVICE_COMMANDS: readonly string[] = ['cwg_create', 'cwg_connect', 'cwg_destroy', 'show'];

/** Whether `argv` is a device command for the service (not a request for its usage). */
export function forService(argv: readonly string[]): boolean {
  const [cmd, ...rest] = argv;
  return cmd !== undefined && DEVICE_COMMANDS.includes(cmd) && !(rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h'));
}

/** Run the client with `argv` on our stdio; resolves with its exit status. */
function viaClient(argv: readonly string[]): number {
  const who = commandName(argv[0]!);
  // Without the addon there is no client either (one build makes both): say what to install.
  const noAddon = addonProblem();
  if (noAddon !== null) {
    process.stderr.write(`${who}: ${noAddon}\n`);
    return 1;
  }
  if (!existsSync(CLIENT)) {
    process.stderr.write(`${who}: the client ${CLIENT} is missing; build it with 'npm ci' (needs python3, make and g++)\n`);
    return 1;
  }
  const r = spawnSync(CLIENT, argv, { stdio: 'inherit' });
  if (r.error) {
    process.stderr.write(`${who}: cannot run ${CLIENT}: ${r.error.message}\n`);
    return 1;
  }
  return r.status ?? 1;
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
  if (forService(argv)) {
    // Fail fast on malformed arguments (the service checks them again, with its policy).
    const cmd = argv[0] as DeviceCommand;
    try {
      parseDeviceArgs(cmd, argv.slice(1));
    } catch (e) {
      if (!(e instanceof CwgError)) throw e;
      process.stderr.write(failure(commandName(cmd), e.message).stderr);
      process.exitCode = 1;
      return;
    }
    process.exitCode = viaClient(argv);
    return;
  }
  // A closed pipe on stdout (cwg genkey | head -c 1) is not an error worth a stack trace.
  process.stdout.on('error', () => {});
  let result: RunResult;
  try {
    result = await run(argv, {
      readStdin: () => readAll(process.stdin),
      stdoutIsTty: process.stdout.isTTY === true,
      stdoutWorldAccessible: stdoutWorldAccessible(),
      env: process.env,
      context: () => Promise.reject(new CwgError('device commands run in the host service')),
    });
  } catch (e) {
    result = failure(PROG, `internal error: ${oneLine(e)}`);
  }
  await write(process.stderr, result.stderr);
  await write(process.stdout, result.stdout);
  process.exitCode = result.code;
}
