/**
 * Builds of net-admin-helper for tests, and fake services it can start on demand.
 *
 * The client's control socket name and the uid it trusts are compile-time constants (nothing
 * of the caller's environment may change them). Tests therefore compile the same source with
 * a unique name (so they never meet a real service, nor each other) and the test's own uid as
 * "root" (so they run unprivileged), into DIR/build/Release/net-admin-helper: the client then
 * looks for its service script at DIR/dist/src/cli/service.js, where `installService` puts a
 * fake one (test/helpers/fake-service.ts and the tun/ modules it needs, transpiled into DIR,
 * the real addon linked in).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import ts from 'typescript';
import type { StandaloneConfig } from './fake-service.js';
import { ROOT } from './proc.js';

export const CLIENT_SOURCE = join(ROOT, 'csrc/helper/net-admin-helper.c');

/** Sources the standalone fake service runs from (paths relative to the package root). */
const FAKE_SOURCES = ['tun/addon.ts', 'tun/errno.ts', 'tun/control-protocol.ts', 'tun/control.ts', 'test/helpers/fake-service.ts'];

export interface ClientBuild {
  /** The package-like directory: build/Release/net-admin-helper, dist/src/cli/service.js. */
  readonly dir: string;
  readonly bin: string;
  /** The abstract socket name compiled in. */
  readonly name: string;
  /** The uid compiled in as the service's (and the administrator's). */
  readonly adminUid: number;
  /** Where `installService` puts the script the client starts. */
  readonly serviceScript: string;
  remove(): void;
}

/** Why client builds cannot be made here, or null. */
export function buildSkipReason(): string | null {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'needs a C compiler (cc) to build test variants of net-admin-helper';
  }
}

/** A unique abstract name for a test's service. */
export function uniqueName(tag: string): string {
  return `wgts-test/${tag}/${process.pid}-${randomBytes(4).toString('hex')}`;
}

export function buildClient(opts: { adminUid: number; name?: string }): ClientBuild {
  const dir = mkdtempSync(join(tmpdir(), 'wgts-client-'));
  chmodSync(dir, 0o755); // a fake service may run as another user
  const rel = join(dir, 'build/Release');
  mkdirSync(rel, { recursive: true });
  const name = opts.name ?? uniqueName('c');
  const bin = join(rel, 'net-admin-helper');
  try {
    execFileSync(
      'cc',
      [
        '-O2',
        '-std=gnu11',
        '-Wall',
        '-Wextra',
        '-Werror',
        '-D_GNU_SOURCE',
        `-DWGTS_NODE="${process.execPath}"`,
        `-DWGTS_CONTROL_NAME="${name}"`,
        `-DWGTS_ADMIN_UID=${opts.adminUid}`,
        '-o',
        bin,
        CLIENT_SOURCE,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    bin,
    name,
    adminUid: opts.adminUid,
    serviceScript: join(dir, 'dist/src/cli/service.js'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function transpileInto(dir: string): void {
  writeFileSync(join(dir, 'package.json'), '{ "name": "wireguard-ts", "type": "module" }\n'); // tun/addon.ts finds the package root by it
  try {
    symlinkSync(join(ROOT, 'build/Release/wgts.node'), join(dir, 'build/Release/wgts.node'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  for (const src of FAKE_SOURCES) {
    const out = join(dir, src.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(out), { recursive: true });
    const js = ts.transpileModule(readFileSync(join(ROOT, src), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    writeFileSync(out, js);
  }
}

/**
 * Writes a runnable fake service script at `path` (default: the build's service script, the
 * one the client starts) with `cfg` baked in: it takes no argument and no environment.
 */
export function installService(build: ClientBuild, cfg: StandaloneConfig, path = build.serviceScript): string {
  transpileInto(build.dir);
  mkdirSync(dirname(path), { recursive: true });
  const helper = join(build.dir, 'test/helpers/fake-service.js');
  writeFileSync(path, `import { runFakeService } from ${JSON.stringify(helper)};\nrunFakeService(${JSON.stringify(cfg)});\n`);
  chmodSync(path, 0o644);
  return path;
}

/** The JSON lines a standalone fake service logged. */
export function readLog(path: string): Array<Record<string, unknown> & { pid: number; event: string }> {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown> & { pid: number; event: string });
}
