/**
 * A copy of the compiled programs that every user can reach, for tests that run them as
 * another user (e.g. `setpriv --reuid=65534`): the checkout itself may sit in a private
 * directory (mode 0700, as `mktemp -d` makes), which that user cannot enter. The copy holds
 * what the programs load at run time: package.json (it makes dist/ ESM), bin/, dist/, the
 * built addons, the C client and the runtime npm dependencies.
 */
import { chmodSync, cpSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from './proc.js';

/** Whether a user with no relation to the owners can reach `path`: every directory above it searchable, the file readable. */
export function worldReachable(path: string): boolean {
  try {
    if ((statSync(path).mode & 0o004) === 0) return false;
    for (let d = dirname(path); ; d = dirname(d)) {
      if ((statSync(d).mode & 0o001) === 0) return false;
      if (dirname(d) === d) return true;
    }
  } catch {
    return false;
  }
}

/** Where a copy can go, or null: a temporary directory whose ancestors every user can search. */
function publicBase(): string | null {
  for (const base of new Set([tmpdir(), '/tmp', '/var/tmp'])) if (worldReachable(base)) return base;
  return null;
}

/** Why a program cannot be run as another user here, or null when it can (through a copy). */
export function otherUserSkipReason(): string | null {
  if (!worldReachable(process.execPath)) return `node (${process.execPath}) is not reachable by other users`;
  if (publicBase() === null) return 'no temporary directory that other users can reach';
  return null;
}

/** The npm packages `pkg` needs at run time, with theirs (a flat node_modules, as npm ci makes it). */
function runtimeDependencies(pkgDir: string, seen: Set<string>): void {
  const deps = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
  for (const name of Object.keys(deps)) {
    if (seen.has(name)) continue;
    const dir = join(ROOT, 'node_modules', name);
    if (!existsSync(dir)) {
      // Installed inside its dependent's own node_modules: copied along with it.
      if (existsSync(join(pkgDir, 'node_modules', name))) continue;
      throw new Error(`runtime dependency ${name} is not installed (npm ci)`);
    }
    seen.add(name);
    runtimeDependencies(dir, seen);
  }
}

/** Directories searchable and files readable by all (an executable stays executable). */
function openUp(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    chmodSync(path, 0o755);
    for (const e of readdirSync(path)) openUp(join(path, e));
  } else {
    chmodSync(path, st.mode & 0o100 ? 0o755 : 0o644);
  }
}

export interface PublicCopy {
  /** The copy's root: bin/, dist/, build/Release/*.node, node_modules/, package.json. */
  readonly root: string;
  /** bin/cwg in the copy. */
  readonly cwgBin: string;
  remove(): void;
}

/** Copy the programs somewhere every user can reach; `remove()` deletes the copy. */
export function publicCopy(): PublicCopy {
  const why = otherUserSkipReason();
  if (why) throw new Error(why);
  const root = mkdtempSync(join(publicBase()!, 'wgts-public-'));
  try {
    cpSync(join(ROOT, 'package.json'), join(root, 'package.json'));
    for (const d of ['bin', 'dist']) cpSync(join(ROOT, d), join(root, d), { recursive: true, dereference: true });
    const release = join(ROOT, 'build', 'Release');
    if (existsSync(release)) {
      for (const f of readdirSync(release)) if (f.endsWith('.node') || f === 'net-admin-helper') cpSync(join(release, f), join(root, 'build', 'Release', f));
    }
    const deps = new Set<string>();
    runtimeDependencies(ROOT, deps);
    for (const name of deps) cpSync(join(ROOT, 'node_modules', name), join(root, 'node_modules', name), { recursive: true, dereference: true });
    openUp(root);
    if (!worldReachable(join(root, 'bin', 'cwg'))) throw new Error(`${root} is not reachable by other users`);
  } catch (e) {
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
  return { root, cwgBin: join(root, 'bin', 'cwg'), remove: () => rmSync(root, { recursive: true, force: true }) };
}
