#!/usr/bin/env node
// The package's install script (npm runs it on install, `npm ci` and `npm rebuild`): builds the
// N-API addon (binding.gyp, csrc/) with node-gyp. The addon is optional for the engine, which
// runs on its JavaScript crypto suite without it, and required by the daemon and cwg. So:
// - toolchain present (python3, make, cc, g++): node-gyp rebuild, and its failure fails the
//   install (a real build error must not hide on a machine that can build);
// - toolchain missing: one line saying what is missing and how to rebuild, and the install
//   succeeds; unless WG_TS_REQUIRE_ADDON=1 (CI sets it), which makes that a failure too;
// - not Linux: the addon (TUN, UDP, namespaces) is Linux-only; nothing to build.
// Plain JavaScript: it runs in a fresh clone before tsc has compiled anything.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const PROG = 'wireguard-ts';
const REQUIRE_ENV = 'WG_TS_REQUIRE_ADDON';
const ADVICE = `install python3, make and g++, then run 'npm rebuild ${PROG}' (in a clone of the repository: 'npm run build')`;
const required = process.env[REQUIRE_ENV] === '1';

/** Whether `path` is an executable regular file. */
function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** `cmd` as a path, or found in PATH; null when it is not there. */
function findProgram(cmd) {
  if (cmd.includes('/')) return executable(cmd) ? cmd : null;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && executable(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

/** The first word of a command variable such as CC="ccache gcc" is the program. */
const program = (value, fallback) => (value?.trim() ? value.trim().split(/\s+/)[0] : fallback);

function finish(code, line) {
  if (line) process.stderr.write(`${PROG}: ${line}\n`);
  process.exit(code);
}

if (process.platform !== 'linux') {
  const line = `the native addon is Linux-only (this is ${process.platform}): not built; the engine runs on its JavaScript crypto suite`;
  finish(required ? 1 : 0, line);
}

// What node-gyp's Makefile build calls: python for gyp, make, the C compiler (CC, make's
// default cc), and the C++ driver (CXX, default g++), which also links the addon.
const tools = [
  { name: 'python3', path: findProgram(program(process.env.npm_config_python ?? process.env.PYTHON, 'python3')) },
  { name: 'make', path: findProgram('make') },
  { name: 'cc', path: findProgram(program(process.env.CC, 'cc')) },
  { name: 'g++', path: findProgram(program(process.env.CXX, 'g++')) },
];
const missing = tools.filter((t) => t.path === null).map((t) => t.name);
if (missing.length > 0) {
  const what = `no ${missing.join(', ')} on PATH`;
  if (required) finish(1, `cannot build the native addon (${what}) and ${REQUIRE_ENV}=1 requires it: ${ADVICE}`);
  finish(0, `native addon not built (${what}): the engine runs on its JavaScript crypto suite; for the daemon and cwg, ${ADVICE}`);
}

// npm hands its own node-gyp to lifecycle scripts; run directly, use the one on PATH.
const gyp = process.env.npm_config_node_gyp;
const r = gyp ? spawnSync(process.execPath, [gyp, 'rebuild'], { stdio: 'inherit' }) : spawnSync('node-gyp', ['rebuild'], { stdio: 'inherit' });
if (r.error) finish(1, `cannot run node-gyp (${r.error.code ?? r.error.message}): run this through npm ('npm rebuild ${PROG}')`);
if (r.status !== 0) finish(1, `building the native addon failed (node-gyp exit ${r.status ?? r.signal}, see above)`);
finish(0);
