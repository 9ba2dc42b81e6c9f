/**
 * The cwg programs as a user runs them (no root needed): usage, one-line errors, the bin
 * shims, and the key tools against wireguard-tools' `wg` when it is installed.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, which } from '../helpers/proc.js';

const built = existsSync(join(ROOT, 'dist', 'src', 'cli', 'cwg.js'));
if (!built) console.warn('cwg CLI tests skipped: needs the compiled program (npx tsc -p .)');
const wg = which('wg');

function cwg(args: string[], input = '', bin = 'cwg', stdout: 'pipe' | number = 'pipe') {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', bin), ...args], { input, encoding: 'latin1', stdio: ['pipe', stdout, 'pipe'] });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr };
}

function wgRun(args: string[], input = '') {
  const r = spawnSync(wg!, args, { input, encoding: 'latin1' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!built)('cwg command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cwg-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints usage on --help, for the tool and each command', () => {
    const main = cwg(['--help']);
    expect(main).toMatchObject({ code: 0, stderr: '' });
    for (const c of [
      'cwg_create <pid> <net> <host> <port>',
      'cwg_connect <pid> <net> <host> <peer_endpoint> <peer_key>',
      'cwg_destroy <pid> <net> <host>',
      'show <pid> <net> <host>',
      'genkey',
      'CWG_PREFIX',
      '/etc/wireguard-ts/cwg.conf',
    ]) {
      expect(main.stdout).toContain(c);
    }
    for (const c of ['cwg_create', 'cwg_connect', 'cwg_destroy']) {
      const viaCwg = cwg([c, '--help']);
      expect(viaCwg.code).toBe(0);
      expect(viaCwg.stdout).toMatch(new RegExp(`^Usage: cwg ${c} `));
      expect(cwg(['--help'], '', c)).toEqual(viaCwg);
    }
  });

  it('reports misuse on one line with exit status 1 and nothing on stdout', () => {
    const cases: Array<[string, string[], RegExp]> = [
      ['cwg', [], /^cwg: missing command \(see 'cwg --help'\)\n$/],
      ['cwg', ['bogus'], /^cwg: unknown command "bogus"/],
      ['cwg_create', ['1', '2'], /^cwg_create: expected 4 arguments \(<pid> <net> <host> <port>\), got 2\n$/],
      ['cwg_connect', ['1', '2', '0', '1.2.3.4:5', 'nope'], /^cwg_connect: invalid peer_key 'nope'/],
      ['cwg_destroy', ['1', '2', '3'], /^cwg_destroy: invalid host '3'/],
      ['cwg_destroy', ['1', '99999999', '0'], /^cwg_destroy: invalid net '99999999': out of range 0\.\.8388607\n$/],
      ['cwg', ['pubkey', 'extra'], /^Usage: cwg pubkey\n$/],
    ];
    for (const [bin, args, re] of cases) {
      const r = cwg(args, '', bin);
      expect(r.code, `${bin} ${args.join(' ')}`).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(re);
      expect(r.stderr.split('\n')).toHaveLength(2);
    }
  });

  it('genkey, genpsk and pubkey give well-formed keys', () => {
    const k = cwg(['genkey']);
    expect(k).toMatchObject({ code: 0, stderr: '' });
    expect(k.stdout).toMatch(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n$/);
    const raw = Buffer.from(k.stdout.trim(), 'base64');
    expect(raw[0]! & 7).toBe(0);
    expect(raw[31]! & 0xc0).toBe(0x40);
    expect(cwg(['genpsk']).stdout).toMatch(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n$/);
    const pub = cwg(['pubkey'], k.stdout);
    expect(pub).toMatchObject({ code: 0, stderr: '' });
    expect(pub.stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(pub.stdout).not.toBe(k.stdout);
  });

  it('genkey warns like wg when writing to a world-accessible file', () => {
    for (const [mode, warn] of [
      [0o644, true],
      [0o600, false],
    ] as const) {
      const p = join(dir, `key-${mode.toString(8)}`);
      const fd = openSync(p, 'w', mode);
      const r = cwg(['genkey'], '', 'cwg', fd);
      closeSync(fd);
      expect(r.code).toBe(0);
      expect(readFileSync(p, 'utf8')).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
      if (warn) expect(r.stderr).toBe('Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.\n');
      else expect(r.stderr).toBe('');
    }
  });

  it.skipIf(!wg)('agrees with wg pubkey, output and errors', () => {
    const k = cwg(['genkey']).stdout;
    const inputs = [
      k,
      k.trim(),
      wgRun(['genkey']).stdout,
      cwg(['genpsk']).stdout, // not clamped: both clamp the same way
      `${k.trim()} \t\n\n\0`,
      '',
      'garbage\n',
      `${k.trim()}x\n`,
      ` ${k}`,
      `${k.trim().slice(0, 42)}B=\n`,
      'A'.repeat(44),
    ];
    for (const input of inputs) {
      const ours = cwg(['pubkey'], input);
      const theirs = wgRun(['pubkey'], input);
      expect(ours.code, JSON.stringify(input)).toBe(theirs.code);
      expect(ours.stdout, JSON.stringify(input)).toBe(theirs.stdout);
      // (wg names itself by its argv[0], here its path)
      expect(ours.stderr, JSON.stringify(input)).toBe(theirs.stderr.replace(/^\S*wg: /, 'cwg: '));
    }
    // wg's own usage errors have the same shape
    expect(cwg(['genkey', 'x']).stderr).toBe(wgRun(['genkey', 'x']).stderr.replace(/\S*wg genkey/, 'cwg genkey'));
  });
});
