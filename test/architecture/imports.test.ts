// The layers of DESIGN.md and the folders' public faces, checked on the source of src/:
// (a) every import between folders points down the layer order, and policy imports only the
// root files; (b) an import from another folder goes through that folder's index.ts, while the
// files of a folder (sub-folders included) import each other directly, never their own index.ts.
// Specifiers come from the TypeScript parser, so comments and strings are never read as imports.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

/** The files of src/ directly in it (errors.ts, clock.ts, …): the lowest layer. */
const ROOT = '(root)';

/**
 * Highest first; a folder may import only from the layers below its own. api-client has a layer
 * of its own: it is below cli and connector, which use it, and above tunnel and ca, whose
 * proxy dialing and CA pinning it uses.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['cli'],
  ['control', 'edge', 'connector', 'agent'],
  ['api-client'],
  ['policy', 'identity', 'ca', 'reporting', 'tunnel', 'pgwire'],
  ['store'],
  [ROOT],
];

interface Import {
  readonly line: number;
  readonly specifier: string;
}

interface Violation extends Import {
  /** Relative to src/, with `/`. */
  readonly file: string;
  readonly rule: 'layer' | 'index';
  readonly why: string;
}

/** Every module specifier of a file: import and export declarations, `import x = require()`, import() calls and types. */
function importsOf(text: string): Import[] {
  const source = ts.createSourceFile('file.ts', text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: Import[] = [];
  const add = (node: ts.Node | undefined): void => {
    if (node === undefined || !ts.isStringLiteralLike(node)) return;
    found.push({ line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1, specifier: node.text });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The folder a path relative to src/ belongs to: its first segment, or ROOT for a file directly in src/. */
function folderOf(path: string): string {
  const slash = path.indexOf('/');
  return slash === -1 ? ROOT : path.slice(0, slash);
}

function layerOf(folder: string): number {
  return LAYERS.findIndex((layer) => layer.includes(folder));
}

/**
 * The payload types the dashboard shares with the server (`control/*-types.ts`) are type-checked
 * for the browser too, where a folder's index.ts would pull in Node-only modules; they may reach
 * a leaf file (one that imports no other file of src/, zod at most) directly.
 */
function isBrowserShared(file: string): boolean {
  return /^control\/[a-z-]+-types\.ts$/.test(file);
}

function isLeaf(target: string): boolean {
  const text = readFileSync(posix.join(SRC, target.replace(/\.js$/, '.ts')), 'utf8');
  return importsOf(text).every((imp) => imp.specifier === 'zod');
}

/** What is wrong with `file` (relative to src/) importing `specifier`; packages and node: modules are not checked. */
function checkImport(file: string, imp: Import): Violation[] {
  if (!imp.specifier.startsWith('.')) return [];
  const target = posix.normalize(posix.join(posix.dirname(file), imp.specifier));
  const from = folderOf(file);
  const to = folderOf(target);
  const out: Violation[] = [];
  const fail = (rule: Violation['rule'], why: string): void => void out.push({ file, ...imp, rule, why });

  if (from !== to) {
    const fromLayer = layerOf(from);
    const toLayer = layerOf(to);
    if (fromLayer === -1 || toLayer === -1) fail('layer', `${fromLayer === -1 ? from : to} has no layer here (place it as DESIGN.md does)`);
    else if (from === 'policy' && to !== ROOT) fail('layer', `policy is pure: it imports only its own files and the root files, not ${to}`);
    else if (toLayer < fromLayer) fail('layer', `${from} may not depend on ${to}, which sits above it`);
    else if (toLayer === fromLayer) fail('layer', `${from} and ${to} share a layer: neither may depend on the other`);
  }
  const index = `${to}/index.js`;
  if (from !== to && to !== ROOT && target !== index && !(isBrowserShared(file) && isLeaf(target))) {
    const through = posix.relative(posix.dirname(file), index);
    fail('index', `import ${to} through its index.ts ('${through}')`);
  } else if (from === to && target === index) {
    fail('index', `inside ${from}, import the file itself, not the folder's own index.ts`);
  }
  return out;
}

/** Paths relative to src/ of every .ts file in it. */
function sourceFiles(dir = ''): string[] {
  return readdirSync(posix.join(SRC, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = dir === '' ? entry.name : `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

function violations(rule: Violation['rule']): Violation[] {
  return sourceFiles().flatMap((file) =>
    importsOf(readFileSync(posix.join(SRC, file), 'utf8')).flatMap((imp) => checkImport(file, imp).filter((v) => v.rule === rule)),
  );
}

function report(found: readonly Violation[], what: string): void {
  if (found.length === 0) return;
  assert.fail(`${found.length} ${what}:\n${found.map((v) => `  src/${v.file}:${v.line} '${v.specifier}': ${v.why}`).join('\n')}`);
}

test('imports: every import between folders points down the layer order', () => {
  report(violations('layer'), 'imports against the layer order of DESIGN.md');
});

test("imports: another folder is reached through its index.ts, one's own folder directly", () => {
  report(violations('index'), "imports that bypass a folder's index.ts");
});

test('imports: the parser sees every form of import, and nothing in comments or strings', () => {
  const text = [
    "import a from '../a/a.js';",
    "import type { B } from '../b/b.js';",
    'import {',
    '  c,',
    "} from '../c/c.js';",
    "export { d } from '../d/d.js';",
    "export type * from '../e/e.js';",
    "import '../f/f.js';",
    "const g = await import('../g/g.js');",
    "type H = import('../h/h.js').H;",
    "import i = require('../i/i.js');",
    "// import j from '../j/j.js';",
    "const k = \"import k from '../k/k.js'\";",
  ].join('\n');
  assert.deepEqual(importsOf(text), [
    { line: 1, specifier: '../a/a.js' },
    { line: 2, specifier: '../b/b.js' },
    { line: 5, specifier: '../c/c.js' },
    { line: 6, specifier: '../d/d.js' },
    { line: 7, specifier: '../e/e.js' },
    { line: 8, specifier: '../f/f.js' },
    { line: 9, specifier: '../g/g.js' },
    { line: 10, specifier: '../h/h.js' },
    { line: 11, specifier: '../i/i.js' },
  ]);
});

test('imports: the rules catch what they name and pass what they allow', () => {
  const rules = (file: string, specifier: string): string[] =>
    checkImport(file, { line: 1, specifier }).map((v) => v.rule);
  assert.deepEqual(rules('edge/server.ts', '../store/index.js'), []);
  assert.deepEqual(rules('edge/ssh/index.ts', '../../ca/index.js'), [], 'a sub-folder belongs to its parent');
  assert.deepEqual(rules('edge/ssh/index.ts', '../access.js'), []);
  assert.deepEqual(rules('policy/criteria/where.ts', '../../ip.js'), [], 'policy may use the root files');
  assert.deepEqual(rules('edge/server.ts', '../errors.js'), []);
  assert.deepEqual(rules('cli/main.ts', 'commander'), []);
  assert.deepEqual(rules('edge/server.ts', '../store/types.js'), ['index']);
  assert.deepEqual(rules('edge/server.ts', './index.js'), ['index']);
  assert.deepEqual(rules('store/open.ts', '../edge/index.js'), ['layer'], 'upward');
  assert.deepEqual(rules('errors.ts', './store/index.js'), ['layer'], 'the root files depend on no folder');
  assert.deepEqual(rules('control/api.ts', '../edge/index.js'), ['layer'], 'sideways');
  assert.deepEqual(rules('tunnel/dial.ts', '../api-client/index.js'), ['layer']);
  assert.deepEqual(rules('policy/evaluate.ts', '../store/index.js'), ['layer'], 'policy is pure');
  assert.deepEqual(rules('nowhere/x.ts', '../store/index.js'), ['layer'], 'an unplaced folder');
});

test('imports: the check sees the folders of src/', () => {
  const folders = new Set(sourceFiles().map(folderOf));
  for (const folder of LAYERS.flat().filter((f) => f !== 'agent')) assert.ok(folders.has(folder), folder);
});
