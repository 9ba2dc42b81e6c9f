/**
 * The `vectors` command: generate the test vectors and write them to
 * test/vectors/wireguard.json, or to --out FILE; with --check, compare instead of writing and
 * fail if the file differs. --crypto NAME picks the suite that both the computation and the
 * engine use (openssl, js, noble; default: the fastest present); every suite gives the same
 * bytes. Bad arguments and I/O errors are one line on `io.error` and exit status 1.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { packageRoot } from '../../tun/addon.js';
import { selectSuite } from '../../tun/openssl.js';
import { serializeVectors } from './format.js';
import { generateVectors } from './generate.js';

export const USAGE = 'usage: node dist/src/vectors/cli.js [--out FILE] [--check] [--crypto openssl|js|noble]';

export interface CommandIo {
  log(line: string): void;
  error(line: string): void;
}

/** The repository root, from src/vectors/ or from its compiled copy in dist/src/vectors/. */
export const repositoryRoot = packageRoot;

export const DEFAULT_OUT = join(repositoryRoot(), 'test', 'vectors', 'wireguard.json');

function run(argv: string[], io: CommandIo): number {
  let out = DEFAULT_OUT;
  let check = false;
  let crypto: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--check') check = true;
    else if (a === '--out' || a === '--crypto') {
      const v = argv[++i];
      if (v === undefined || v === '') throw new Error(`${a} needs a value (${USAGE})`);
      if (a === '--out') out = resolve(v);
      else crypto = v;
    } else if (a === '-h' || a === '--help') {
      io.log(USAGE);
      return 0;
    } else throw new Error(`unknown argument '${a}' (${USAGE})`);
  }
  const text = serializeVectors(generateVectors(selectSuite(crypto)));
  if (check) {
    let old: string;
    try {
      old = readFileSync(out, 'utf8');
    } catch (e) {
      throw new Error(`cannot read ${out}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    if (old !== text) {
      io.error(`vectors: ${out} differs from what the generator makes now (run npm run vectors and review the change)`);
      return 1;
    }
    io.log(`${out} is up to date`);
    return 0;
  }
  try {
    writeFileSync(out, text);
  } catch (e) {
    throw new Error(`cannot write ${out}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  io.log(`wrote ${out}`);
  return 0;
}

/** Run the command; returns the exit status. */
export function vectorsCommand(argv: string[], io: CommandIo): number {
  try {
    return run(argv, io);
  } catch (e) {
    io.error(`vectors: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
