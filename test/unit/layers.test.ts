/**
 * Imports only go down: crypto < noise < tun < src. Every .ts file of the four layers is
 * parsed (static imports, `import type`, export-from, `import x = require()`, `import()` and
 * `typeof import()` types), and each module specifier must name its own layer or one below:
 * crypto/ imports crypto, node builtins and npm packages; noise/ imports crypto and noise only
 * (nothing from node or npm: the engine is sans-I/O); tun/ anything but src/; src/ anything.
 * A dynamic import whose specifier is not a string literal cannot be checked and fails too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/proc.js';

const LAYERS = ['crypto', 'noise', 'tun', 'src'] as const;
type Layer = (typeof LAYERS)[number];

/** The module specifiers of one source file, with their 1-based lines; null for a non-literal import(). */
function specifiers(fileName: string, text: string): Array<{ spec: string | null; line: number }> {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: Array<{ spec: string | null; line: number }> = [];
  const add = (node: ts.Node, e: ts.Expression | undefined) => {
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    out.push({ spec: e !== undefined && ts.isStringLiteralLike(e) ? e.text : null, line });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) add(node, node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node, node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node, node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal as ts.Expression);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

const rank = (l: Layer): number => LAYERS.indexOf(l);

function layerOf(path: string): Layer | null {
  const top = path.split('/')[0];
  return (LAYERS as readonly string[]).includes(top!) ? (top as Layer) : null;
}

/** Why importing `spec` from the file at repository path `from` breaks the layering, or null. */
function violation(from: string, spec: string | null): string | null {
  const own = layerOf(from);
  if (own === null) throw new Error(`${from} is in no layer`);
  if (spec === null) return 'an import() whose specifier is not a string literal (cannot be checked)';
  if (spec.startsWith('.')) {
    const target = posix.normalize(posix.join(posix.dirname(from), spec));
    const layer = layerOf(target);
    if (layer === null) return `reaches outside the layers (${target})`;
    return rank(layer) > rank(own) ? `${own}/ imports from ${layer}/, a layer above it` : null;
  }
  if (spec.startsWith('/')) return 'an absolute path';
  if (own === 'noise') return 'noise/ imports only crypto/ and noise/ (no node builtins or npm packages: it is sans-I/O)';
  return null;
}

/** Every .ts file (not .d.ts) below the layer folders, as repository-relative POSIX paths. */
function layerFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(relative(ROOT, p).split('\\').join('/'));
    }
  };
  for (const l of LAYERS) walk(join(ROOT, l));
  return out.sort();
}

/** All violations in a set of files given as path -> text. */
function check(files: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [path, text] of Object.entries(files)) {
    for (const { spec, line } of specifiers(path, text)) {
      const why = violation(path, spec);
      if (why) found.push(`${path}:${line} '${spec ?? '?'}': ${why}`);
    }
  }
  return found;
}

describe('layers: imports only go down', () => {
  const files = layerFiles();

  it('finds the source files of every layer', () => {
    for (const l of LAYERS) expect(files.filter((f) => f.startsWith(`${l}/`)).length, l).toBeGreaterThan(0);
    expect(files).toContain('noise/device.ts');
    expect(files).toContain('src/cli/cwg.ts');
  });

  it('no module imports from a layer above its own', () => {
    const texts = Object.fromEntries(files.map((f) => [f, readFileSync(join(ROOT, f), 'utf8')]));
    expect(check(texts)).toEqual([]);
  });
});

describe('layers: the checker itself', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['noise/peer.ts', "import type { Endpoint } from '../src/types.js';", /noise\/ imports from src\//],
    ['noise/x.ts', "export { Tun } from '../tun/tun.js';", /noise\/ imports from tun\//],
    ['noise/x.ts', "import { readFileSync } from 'node:fs';", /sans-I\/O/],
    ['noise/x.ts', "import { x25519 } from '@noble/curves/ed25519.js';", /sans-I\/O/],
    ['crypto/x.ts', "const m = await import('../noise/device.js');", /crypto\/ imports from noise\//],
    ['crypto/x.ts', "import ip = require('../tun/ip.js');", /crypto\/ imports from tun\//],
    ['tun/x.ts', "let d: typeof import('../src/daemon.js');", /tun\/ imports from src\//],
    ['tun/x.ts', "export * from '../src/cli/cwg.js';", /tun\/ imports from src\//],
    ['tun/x.ts', "import '../package.json';", /outside the layers/],
    ['src/x.ts', "const name = 'daemon'; await import('./' + name + '.js');", /not a string literal/],
    ['src/x.ts', "await import('/etc/x.js');", /absolute path/],
    ['src/cwg/x.ts', "import { a } from '../../test/helpers/proc.js';", /outside the layers/],
  ];
  for (const [path, text, why] of bad) {
    it(`detects ${path}: ${text}`, () => {
      const found = check({ [path]: `// a file\n${text}\n` });
      expect(found).toHaveLength(1);
      expect(found[0]).toMatch(new RegExp(`^${path.replace(/[.]/g, '\\.')}:2 `));
      expect(found[0]).toMatch(why);
    });
  }

  const good: Array<[string, string]> = [
    ['crypto/x.ts', "import { randomFillSync } from 'node:crypto';\nimport { chacha20 } from '@noble/ciphers/chacha.js';\nimport { a } from './keys.js';"],
    ['noise/x.ts', "import type { Rng } from '../crypto/random.js';\nexport { Device } from './device.js';"],
    ['tun/x.ts', "import { Endpoint } from '../noise/types.js';\nimport { spawn } from 'node:child_process';\nconst a = await import('../crypto/random.js');"],
    ['src/cwg/x.ts', "import * as ipx from '../../tun/ip.js';\nimport { uapiGet } from '../uapi/client.js';\nimport { x } from '../../noise/types.js';"],
    ['noise/x.ts', "// import { nope } from '../src/daemon.js';\nconst s = \"import('../src/daemon.js')\";"],
  ];
  for (const [path, text] of good) {
    it(`accepts ${path}: ${text.split('\n')[0]}`, () => {
      expect(check({ [path]: text })).toEqual([]);
    });
  }

  it('finds every kind of specifier, and nothing in comments or strings', () => {
    const text = [
      "import a from 'a';",
      "import type { B } from 'b';",
      "import * as c from 'c';",
      "import 'd';",
      "export { e } from 'e';",
      "export * as f from 'f';",
      "import g = require('g');",
      "const h = await import('h');",
      "type I = typeof import('i');",
      "// import j from 'j';",
      'const k = \'import("k")\';',
    ].join('\n');
    expect(specifiers('src/x.ts', text).map((s) => s.spec)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);
  });
});
