/**
 * An npm registry on loopback, for tests that install a package with npm as a user does but
 * without the network: it serves the packuments and tarballs of the packages it is given
 * (packed from the repository's node_modules, so any machine after `npm ci` has them) and
 * answers 404 to anything else, so that an undeclared dependency fails the install instead of
 * coming from a cache or the real registry.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ROOT, runOk } from './proc.js';

export interface RegistryPackage {
  readonly name: string;
  readonly version: string;
  /** The package.json of the version. */
  readonly manifest: Readonly<Record<string, unknown>>;
  readonly tarball: Uint8Array;
}

export interface LocalRegistry {
  /** http://127.0.0.1:PORT/ */
  readonly url: string;
  /** Requests answered with 404, e.g. "GET /left-pad". */
  readonly misses: readonly string[];
  close(): Promise<void>;
}

interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
}

const readManifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

/**
 * The names of the packages `dependencies` need at run time, with theirs, as installed in the
 * repository's node_modules (flat, as npm ci makes it; a nested copy is an error here).
 */
export function dependencyClosure(dependencies: Readonly<Record<string, string>>): string[] {
  const seen = new Set<string>();
  const visit = (deps: Readonly<Record<string, string>>): void => {
    for (const name of Object.keys(deps)) {
      if (seen.has(name)) continue;
      const dir = join(ROOT, 'node_modules', name);
      if (!existsSync(join(dir, 'package.json'))) throw new Error(`dependency ${name} is not installed in ${ROOT}/node_modules (npm ci)`);
      seen.add(name);
      const m = readManifest(dir);
      if (m.dependencies && Object.keys(m.dependencies).some((d) => existsSync(join(dir, 'node_modules', d)))) {
        throw new Error(`${name} has its own node_modules: not supported by this registry`);
      }
      visit(m.dependencies ?? {});
    }
  };
  visit(dependencies);
  return [...seen].sort();
}

/** `npm pack` the installed packages `names` (no scripts run) into `dest`. */
export async function packInstalled(names: readonly string[], dest: string, env: NodeJS.ProcessEnv): Promise<RegistryPackage[]> {
  if (names.length === 0) return [];
  mkdirSync(dest, { recursive: true });
  const dirs = names.map((n) => join(ROOT, 'node_modules', n));
  const r = await runOk('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest, ...dirs], { env, timeoutMs: 120_000 });
  const packed = JSON.parse(r.stdout) as Array<{ name: string; version: string; filename: string }>;
  return packed.map((p, i) => ({
    name: p.name,
    version: p.version,
    manifest: readManifest(dirs[i]!) as unknown as Record<string, unknown>,
    tarball: readFileSync(join(dest, p.filename)),
  }));
}

/** Serve `packages` on 127.0.0.1 (one version each). */
export async function startRegistry(packages: readonly RegistryPackage[]): Promise<LocalRegistry> {
  const misses: string[] = [];
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const documents = new Map<string, string>();
  const tarballs = new Map<string, Uint8Array>();
  for (const p of packages) {
    const file = `${p.name}/-/${p.name.split('/').pop()}-${p.version}.tgz`;
    tarballs.set(`/${file}`, p.tarball);
    const dist = {
      tarball: url + file,
      integrity: `sha512-${createHash('sha512').update(p.tarball).digest('base64')}`,
      shasum: createHash('sha1').update(p.tarball).digest('hex'),
    };
    const packument = {
      name: p.name,
      'dist-tags': { latest: p.version },
      versions: { [p.version]: { ...p.manifest, name: p.name, version: p.version, _id: `${p.name}@${p.version}`, dist } },
    };
    documents.set(`/${p.name}`, JSON.stringify(packument));
  }
  server.on('request', (req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const doc = req.method === 'GET' ? documents.get(path) : undefined;
    const tgz = req.method === 'GET' ? tarballs.get(path) : undefined;
    if (doc !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(doc);
    } else if (tgz !== undefined) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': tgz.length }).end(tgz);
    } else {
      misses.push(`${req.method} ${path}`);
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    }
  });
  return {
    url,
    misses,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // npm keeps its connections alive
      }),
  };
}
