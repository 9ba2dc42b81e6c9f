/**
 * Fuzz: bin/wireguard-ts with random and mutated command lines, run without privileges (as
 * nobody when the tests run as root), so that no command line can create anything. Every run
 * prints --help/--version, or one line and exits 1: never a stack trace, never a control
 * character from the input, and nothing left running. Command lines that would start a daemon
 * fail here for want of privilege, with one line too; test/system/fuzz-daemon-args.test.ts runs
 * them as root in a namespace of its own.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkEnded, prng, processesWith, randomArgv, runArgv } from '../helpers/argv-fuzz.js';
import { WG_TS } from '../helpers/proc.js';

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
const dir = mkdtempSync(join(tmpdir(), 'wgts-argv-'));
const marker = `WGTS_ARGV_FUZZ=${process.pid}-${Date.now()}`;
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', WG_TS_WARMUP: '0', [marker.split('=')[0]!]: marker.split('=')[1]! };

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VALID: string[][] = [
  ['wgfz0'],
  ['-f', 'wgfz0'],
  ['--foreground', 'wgfz1'],
  ['--run-dir', dir, 'wgfz2'],
  ['--netns-pid', '1', 'wgfz3'],
  ['-h'],
  ['--version'],
  ['-f', '--run-dir', dir, '--netns-pid', '1', 'x'.repeat(15)],
];

describe('fuzzing the daemon command line (unprivileged)', () => {
  it('answers 60 random and mutated command lines with usage or one error line, leaving nothing', { timeout: 120_000 }, async () => {
    const r = prng(Number(process.env.FUZZ_SEED ?? 7));
    const seen = { help: 0, version: 0, error: 0 };
    const cases: string[][] = [...VALID];
    while (cases.length < 60) cases.push(randomArgv(r, VALID, [dir, 'relative/dir', 'wgfz4', 'a']));
    // Two at a time: the machine has two cores.
    for (let i = 0; i < cases.length; i += 2) {
      await Promise.all(
        cases.slice(i, i + 2).map(async (argv) => {
          const res = await runArgv(WG_TS, argv, { env, settleMs: 20_000, ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}) });
          expect(res.stayed, JSON.stringify(argv)).toBe(false);
          const kind = checkEnded(argv, res);
          expect(kind, `${JSON.stringify(argv)}: started without privileges`).not.toBe('started');
          seen[kind as keyof typeof seen]++;
        }),
      );
      // A daemon child that failed reports to its parent first and exits a moment later.
      let left = processesWith(marker);
      for (let w = 0; w < 100 && left.length; w++) {
        await new Promise((res) => setTimeout(res, 20));
        left = processesWith(marker);
      }
      expect(left, `left running after ${JSON.stringify(cases.slice(i, i + 2))}`).toEqual([]);
    }
    expect(readdirSync(dir)).toEqual([]);
    for (const v of Object.values(seen)) expect(v).toBeGreaterThan(0);
  });
});
