/**
 * The package as a user gets it. `npm pack` (in a copy of the working tree, so its build does not
 * rewrite the dist/ other tests run), then `npm install <tarball>` into fresh projects, the
 * @noble dependencies coming from a registry on loopback (test/helpers/npm-registry.ts: no
 * network, no npm cache). docs/ENGINE.md's in-memory example, imported from 'wireguard-ts', runs
 * as a user that is not root:
 * - with the toolchain on PATH: the install builds the addon and the example runs on OpenSSL;
 *   a consumer TypeScript file type-checks against the installed declarations (which hold no
 *   `any`) and runs;
 * - with no python3, make, cc or g++ on PATH: the install succeeds, the example runs on the
 *   JavaScript suite, the daemon and cwg's device commands refuse with one line (what to
 *   install, how to rebuild), WG_TS_REQUIRE_ADDON=1 makes the rebuild fail, and the rebuild
 *   that line advises, once the tools are back, gives the addon.
 */
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dependencyClosure, type LocalRegistry, packInstalled, startRegistry } from '../helpers/npm-registry.js';
import { isRoot, ROOT, type RunResult, run, runOk, which } from '../helpers/proc.js';

const NOBODY = 65534;
const SETPRIV = which('setpriv');
const skipReason = isRoot && SETPRIV === null ? 'needs setpriv (util-linux) to run the example as a user that is not root' : null;

/** The tools a build needs; none of them may be on the no-compiler PATH. */
const TOOLCHAIN = ['python3', 'python', 'make', 'cc', 'gcc', 'g++', 'c++', 'clang', 'gcc-12', 'x86_64-linux-gnu-gcc', 'x86_64-linux-gnu-g++-12', 'python3.11'];

/** The one line the programs print without the addon (after their name). */
const NO_ADDON =
  /^the native addon is not built \(\/.*\/node_modules\/wireguard-ts\/build\/Release\/wgts\.node is missing\): install python3, make and g\+\+, then run 'npm rebuild wireguard-ts' \(in a clone of the repository: 'npm run build'\)$/;

interface Pkg {
  name: string;
  version: string;
  dependencies: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Pkg;

/** The js block under "## Example: two devices in memory" in docs/ENGINE.md. */
function engineExample(): string {
  const doc = readFileSync(join(ROOT, 'docs', 'ENGINE.md'), 'utf8');
  const m = /## Example: two devices in memory\n[\s\S]*?```js\n([\s\S]*?)```/.exec(doc);
  if (!m) throw new Error('docs/ENGINE.md has no js block under "## Example: two devices in memory"');
  return m[1]!;
}

/** What the example prints on a suite. */
const exampleOutput = (suite: string): string =>
  `192.0.2.2 got a 28-byte packet from 10.0.0.1\n${suite}: B learned A at 192.0.2.1:51820; A sent 212 bytes; 0 dropped for no route\n`;

/** A consumer of the three entry points; the @ts-expect-error lines fail if a type were `any`. */
const CONSUMER = `import {
  type CryptoSuite, Device, DROP_REASONS, type DropReason, type Endpoint, FakeClock, MemoryNetwork, type PeerState,
  decodeBase64Key, deterministicRng, encodeBase64Key, generatePrivateKey, ipv4Packet, jsSuite, nobleSuite, parseCidr, publicKey,
} from 'wireguard-ts';
import { opensslSuite } from 'wireguard-ts/openssl';
import { EINVAL, formatSet, parseGetResponse, type UapiDeviceInfo, UapiError, uapiGet, uapiSocketPath } from 'wireguard-ts/uapi';

const suite: CryptoSuite = opensslSuite() ?? jsSuite;
const clock = new FakeClock();
const net = new MemoryNetwork();
const epA: Endpoint = { address: '192.0.2.1', port: 51820, family: 4 };
const epB: Endpoint = { address: '192.0.2.2', port: 51820, family: 4 };
const a: Device = net.attach(epA, { clock, rng: deterministicRng(1), crypto: suite });
const b: Device = net.attach(epB, { clock, rng: deterministicRng(2), crypto: nobleSuite });
const ka = generatePrivateKey(deterministicRng(3));
const kb = decodeBase64Key(encodeBase64Key(generatePrivateKey(deterministicRng(4))));
a.apply({ privateKey: ka, peers: [{ publicKey: publicKey(kb), endpoint: epB, allowedIps: [parseCidr('10.0.0.2/32')] }] });
b.apply({ privateKey: kb, peers: [{ publicKey: publicKey(ka), allowedIps: [parseCidr('10.0.0.1/32')] }] });
a.sendPacket(ipv4Packet('10.0.0.1', '10.0.0.2', 100));
net.pump();
clock.advance(1000);
a.tick();
const state: PeerState | null = b.inspectPeer(publicKey(ka));
const reason: DropReason = DROP_REASONS[0];
const dropped: number = a.drops[reason];
function typeErrors(): void {
  // @ts-expect-error: an endpoint's family is 4 or 6
  const bad: Endpoint = { address: '192.0.2.3', port: 1, family: 5 };
  // @ts-expect-error: drops are counted by the known reasons only
  void a.drops['no-such-reason'];
  // @ts-expect-error: the sinks come from the network
  net.attach(epA, { sinks: { sendDatagram() {}, writePacket() {} } });
  // @ts-expect-error: a private key is bytes
  a.apply({ privateKey: 'not bytes', peers: [] });
  void bad;
}
void typeErrors;

async function peersOf(ifname: string): Promise<string[]> {
  try {
    const info: UapiDeviceInfo = await uapiGet(uapiSocketPath(ifname));
    return info.peers.map((p) => encodeBase64Key(p.publicKey));
  } catch (e) {
    if (e instanceof UapiError && e.errno === EINVAL) return [];
    throw e;
  }
}
void peersOf;
const lines: string[] = formatSet({ peers: [{ publicKey: publicKey(kb), allowedIps: [] }] });
const parsed: UapiDeviceInfo = parseGetResponse('errno=0\\n\\n');
console.log(\`\${suite.name} \${net.inbox(b).length} \${state?.keypairs.current} \${dropped} \${lines[0]?.slice(0, 11)} \${parsed.peers.length}\`);
a.close();
b.close();
`;

/** The environment of a user's shell: nothing from the npm run that started vitest, no addon overrides. */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|WG_TS_|WGTS_|LOG_LEVEL$|INIT_CWD$|NODE_OPTIONS$)/i.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** Names of build tools: python, make, C and C++ compilers and preprocessors, by any prefix or version suffix. */
const BUILD_TOOL = /^(.*-)?(i?python[0-9.]*m?(-config)?|pyenv|g?make|cc|c\+\+|c89|c99|cpp|gcc|g\+\+|clang|clang\+\+|tcc)(-[0-9.]+)?$/;

/**
 * A PATH directory with what the user's PATH has (node, npm, sh, coreutils...) except the build
 * tools: a machine without python3, make, cc and g++.
 */
function pathWithoutToolchain(dir: string): string {
  mkdirSync(dir);
  const taken = new Set<string>();
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const name of names) {
      if (taken.has(name) || BUILD_TOOL.test(name)) continue;
      taken.add(name);
      symlinkSync(join(d, name), join(dir, name));
    }
  }
  if (!taken.has('node')) symlinkSync(process.execPath, join(dir, 'node'));
  return dir;
}

/** Lines of a refusal: exactly one, on stderr, nothing on stdout, exit 1. */
function expectOneLine(r: RunResult, prog: string): void {
  expect(r.stdout).toBe('');
  expect(r.code).toBe(1);
  const lines = r.stderr.split('\n');
  expect(lines.length, r.stderr).toBe(2);
  expect(lines[1]).toBe('');
  expect(lines[0]!.startsWith(`${prog}: `), r.stderr).toBe(true);
  expect(lines[0]!.slice(prog.length + 2)).toMatch(NO_ADDON);
}

describe.skipIf(skipReason !== null)(`the npm package${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let base = '';
  let home = '';
  let tarball = '';
  let registry: LocalRegistry | null = null;
  let packed: Array<{ path: string }> = [];
  const savedUmask = process.umask(0o022); // what npm creates must be readable by the other user

  /** Run `file` as a user that is not root (65534 when we are root), with a minimal environment. */
  const asUser = (file: string, args: readonly string[], cwd: string, path: string): Promise<RunResult> => {
    const env = { PATH: path, HOME: home, LANG: 'C', npm_config_cache: join(home, '.npm'), npm_config_update_notifier: 'false' };
    if (!isRoot) return run(file, args, { cwd, env, timeoutMs: 60_000 });
    return run(SETPRIV!, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', file, ...args], { cwd, env, timeoutMs: 60_000 });
  };

  /** A fresh project with the tarball installed by npm with `path` as PATH. */
  const install = async (name: string, path: string): Promise<string> => {
    const dir = join(base, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }, null, 2));
    const env = userEnv({ PATH: path });
    const r = await run('npm', ['install', '--registry', registry!.url, '--cache', join(base, 'npm-cache'), '--no-audit', '--no-fund', tarball], {
      cwd: dir,
      env,
      timeoutMs: 180_000,
    });
    if (r.code !== 0) throw new Error(`npm install into ${name} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
    writeFileSync(join(dir, 'example.mjs'), engineExample());
    return dir;
  };

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'wgts-package-'));
    chmodSync(base, 0o755);
    home = join(base, 'home');
    mkdirSync(home);
    if (isRoot) chownSync(home, NOBODY, NOBODY);
    const env = userEnv({});
    // The working tree as a fresh clone has it (no node_modules, dist or build), sharing node_modules.
    const src = join(base, 'src');
    cpSync(ROOT, src, {
      recursive: true,
      filter: (p) => !/^(node_modules|dist|build|\.git)$/.test(relative(ROOT, p).split('/')[0]!) && !p.endsWith('.tgz'),
    });
    symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'));
    const r = await runOk('npm', ['pack', '--json', '--pack-destination', base], { cwd: src, env, timeoutMs: 180_000 });
    const info = (JSON.parse(r.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]!;
    tarball = join(base, info.filename);
    packed = info.files;
    const deps = await packInstalled(dependencyClosure(pkg.dependencies), join(base, 'deps'), env);
    registry = await startRegistry(deps);
  }, 300_000);

  afterAll(async () => {
    process.umask(savedUmask);
    await registry?.close();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('packs the compiled JavaScript, its declarations and the addon sources; no tests, TypeScript sources or source maps', () => {
    const files = packed.map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'binding.gyp', 'csrc/install.mjs', 'csrc/tun.c', 'bin/wireguard-ts', 'bin/cwg', 'bin/cwg_create']) {
      expect(files).toContain(f);
    }
    for (const entry of ['dist/noise/index', 'dist/tun/openssl-entry', 'dist/src/uapi/index', 'dist/src/cli/wireguard-ts', 'dist/src/cli/cwg']) {
      expect(files).toContain(`${entry}.js`);
      expect(files).toContain(`${entry}.d.ts`);
    }
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('bench/') || f.startsWith('dist/bench/') || f.startsWith('build/'))).toEqual([]);
    expect(files.filter((f) => (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f.endsWith('.map'))).toEqual([]);
    // Every module has its declarations.
    for (const f of files.filter((x) => x.startsWith('dist/') && x.endsWith('.js'))) expect(files).toContain(f.replace(/\.js$/, '.d.ts'));
  });

  it('installs with a compiler (the addon is built), runs the engine example on OpenSSL as a user that is not root, and types a consumer', async () => {
    const dir = await install('with-compiler', process.env.PATH ?? '/usr/bin:/bin');
    const installed = join(dir, 'node_modules', 'wireguard-ts');
    expect(existsSync(join(installed, 'build', 'Release', 'wgts.node'))).toBe(true);
    expect(existsSync(join(installed, 'build', 'Release', 'wgts_crypto.node'))).toBe(true);
    for (const dep of dependencyClosure(pkg.dependencies)) expect(existsSync(join(dir, 'node_modules', dep, 'package.json')), dep).toBe(true);
    expect(registry!.misses).toEqual([]);

    const ex = await asUser(process.execPath, ['example.mjs'], dir, dirname(process.execPath));
    expect(ex.stderr).toBe('');
    expect(ex.stdout).toBe(exampleOutput('openssl'));

    // The consumer, checked against the installed declarations (not skipped) and compiled.
    writeFileSync(join(dir, 'consumer.ts'), CONSUMER);
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2022.d.ts'],
      strict: true,
      exactOptionalPropertyTypes: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: false,
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules', '@types')],
      outDir: join(dir, 'out'),
    };
    const program = ts.createProgram([join(dir, 'consumer.ts')], options);
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diagnostics).toEqual([]);
    // The declarations the consumer sees come from the package, are complete, and hold no `any`.
    const ours = program.getSourceFiles().filter((f) => f.fileName.startsWith(realpathSync(installed) + '/') || f.fileName.startsWith(installed + '/'));
    expect(ours.map((f) => relative(installed, f.fileName))).toContain('dist/noise/index.d.ts');
    expect(ours.filter((f) => !f.fileName.endsWith('.d.ts')).map((f) => f.fileName)).toEqual([]);
    const anys: string[] = [];
    for (const f of ours) {
      const visit = (n: ts.Node): void => {
        if (n.kind === ts.SyntaxKind.AnyKeyword) {
          const { line } = f.getLineAndCharacterOfPosition(n.getStart(f));
          anys.push(`${relative(installed, f.fileName)}:${line + 1}: ${f.text.split('\n')[line]!.trim()}`);
        }
        ts.forEachChild(n, visit);
      };
      visit(f);
    }
    expect(anys).toEqual([]);
    expect(program.emit().emitSkipped).toBe(false);
    writeFileSync(join(dir, 'out', 'package.json'), JSON.stringify({ type: 'module' }));
    const c = await asUser(process.execPath, [join('out', 'consumer.js')], dir, dirname(process.execPath));
    expect(c.stderr).toBe('');
    expect(c.stdout).toBe('openssl 1 true 0 public_key= 0\n');
  }, 300_000);

  it('installs without a compiler: the engine runs on JavaScript, the daemon and cwg refuse in one line, and the advised rebuild works', async () => {
    const bin = pathWithoutToolchain(join(base, 'no-toolchain'));
    for (const tool of TOOLCHAIN) expect(existsSync(join(bin, tool))).toBe(false);
    const dir = await install('without-compiler', bin);
    const installed = join(dir, 'node_modules', 'wireguard-ts');
    expect(existsSync(join(installed, 'build', 'Release', 'wgts.node'))).toBe(false);

    const ex = await asUser(process.execPath, ['example.mjs'], dir, bin);
    expect(ex.stderr).toBe('');
    expect(ex.stdout).toBe(exampleOutput('js'));

    const npx = join(bin, 'npx');
    const version = await asUser(npx, ['wireguard-ts', '--version'], dir, bin);
    expect(version).toEqual({ code: 0, stdout: `wireguard-ts v${pkg.version}\n`, stderr: '' });
    expectOneLine(await asUser(npx, ['wireguard-ts', 'wg0'], dir, bin), 'wireguard-ts');
    expectOneLine(await asUser(npx, ['cwg_create', String(process.pid), '42', '0', '51820'], dir, bin), 'cwg_create');
    expectOneLine(await asUser(npx, ['cwg', 'show', String(process.pid), '42', '0'], dir, bin), 'cwg show');
    const key = await asUser(npx, ['cwg', 'genkey'], dir, bin);
    expect(key.code).toBe(0);
    expect(key.stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);

    // The install's line, and WG_TS_REQUIRE_ADDON=1 turning it into a failure.
    const npmArgs = ['rebuild', 'wireguard-ts', '--foreground-scripts', '--cache', join(base, 'npm-cache')];
    const soft = await run('npm', npmArgs, { cwd: dir, env: userEnv({ PATH: bin }), timeoutMs: 60_000 });
    expect(soft.code).toBe(0);
    const line = soft.stderr.split('\n').filter((l) => l.startsWith('wireguard-ts: '));
    expect(line).toEqual([
      "wireguard-ts: native addon not built (no python3, make, cc, g++ on PATH): the engine runs on its JavaScript crypto suite; for the daemon and cwg, install python3, make and g++, then run 'npm rebuild wireguard-ts' (in a clone of the repository: 'npm run build')",
    ]);
    const hard = await run('npm', npmArgs, { cwd: dir, env: userEnv({ PATH: bin, WG_TS_REQUIRE_ADDON: '1' }), timeoutMs: 60_000 });
    expect(hard.code).not.toBe(0);
    expect(hard.stderr).toContain('wireguard-ts: cannot build the native addon (no python3, make, cc, g++ on PATH) and WG_TS_REQUIRE_ADDON=1 requires it');

    // What the line advises, with the tools back on PATH.
    await runOk('npm', ['rebuild', 'wireguard-ts', '--cache', join(base, 'npm-cache')], {
      cwd: dir,
      env: userEnv({ PATH: [bin, process.env.PATH ?? ''].join(delimiter) }),
      timeoutMs: 180_000,
    });
    expect(existsSync(join(installed, 'build', 'Release', 'wgts.node'))).toBe(true);
    const again = await asUser(process.execPath, ['example.mjs'], dir, bin);
    expect(again.stdout).toBe(exampleOutput('openssl'));
  }, 300_000);
});
