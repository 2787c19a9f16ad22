/**
 * The browser-safe part of the core (networks, layers, the training loop, losses, optimizers, schedules,
 * checkpoints as in-memory files) and the variants' network files must import nothing from Node: the demo page
 * trains with them in a Web Worker. This walks their import graph (type-only imports are erased, so they may name
 * anything) and fails on a Node module, a Node-only package, or a use of Node's globals.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const core = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(core, '../../..');

/** The packages the browser-safe files may import (everything else, and every Node built-in, is refused). */
const ALLOWED_PACKAGES = new Set([
  '@tensorflow/tfjs',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-webgpu',
]);
/** Workspace entries that are themselves browser-safe, walked like relative imports. */
const BROWSER_ENTRIES: Record<string, string> = { '@gantry/core/browser': path.join(core, 'browser.ts') };
/** Node's globals: none may be used (a `typeof setImmediate` guard is allowed, as it is no use). */
const NODE_GLOBALS = new Set(['process', 'Buffer', 'require', '__dirname', '__filename', 'global']);

const sourceFiles = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f));

const ROOTS = [
  path.join(core, 'browser.ts'),
  ...sourceFiles(path.join(core, 'nn')),
  ...sourceFiles(path.join(core, 'train')),
  path.join(core, 'runs', 'checkpoint-data.ts'),
  path.join(repo, 'packages', 'cgan', 'src', 'networks.ts'),
  path.join(repo, 'packages', 'dcgan', 'src', 'networks.ts'),
  path.join(repo, 'packages', 'pix2pix', 'src', 'networks.ts'),
  path.join(repo, 'packages', 'pix2pix', 'src', 'task.ts'),
];

interface Finding {
  file: string;
  problem: string;
}

/** The value imports of `file` and its uses of Node's globals. */
function scan(file: string): { imports: string[]; problems: string[] } {
  const text = fs.readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const imports: string[] = [];
  const problems: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const typeOnly =
        clause?.isTypeOnly ||
        (clause && !clause.name && clause.namedBindings && ts.isNamedImports(clause.namedBindings)
          ? clause.namedBindings.elements.every((e) => e.isTypeOnly)
          : false);
      if (!typeOnly) imports.push(node.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly =
        node.isTypeOnly ||
        (node.exportClause && ts.isNamedExports(node.exportClause)
          ? node.exportClause.elements.every((e) => e.isTypeOnly)
          : false);
      if (!typeOnly) imports.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      imports.push(arg && ts.isStringLiteral(arg) ? arg.text : '<dynamic import>');
    } else if (ts.isIdentifier(node) && NODE_GLOBALS.has(node.text)) {
      const parent = node.parent;
      // Not a property name (x.process), a declaration's name or a type position.
      const isName =
        (ts.isPropertyAccessExpression(parent) && parent.name === node) ||
        (ts.isPropertyAssignment(parent) && parent.name === node) ||
        ts.isTypeReferenceNode(parent) ||
        ts.isQualifiedName(parent);
      if (!isName) {
        const { line } = sf.getLineAndCharacterOfPosition(node.getStart());
        problems.push(`uses Node's '${node.text}' (line ${line + 1})`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return { imports, problems };
}

function resolveRelative(from: string, spec: string): string {
  const base = path.resolve(path.dirname(from), spec);
  for (const f of [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, path.join(base, 'index.ts')])
    if (fs.existsSync(f) && fs.statSync(f).isFile()) return f;
  throw new Error(`${from}: cannot resolve ${spec}`);
}

/** Walks the import graph from `roots`; returns every file reached and every forbidden import or global. */
function walk(roots: string[]): { files: Set<string>; findings: Finding[] } {
  const files = new Set<string>();
  const findings: Finding[] = [];
  const queue = [...roots];
  while (queue.length) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const { imports, problems } = scan(file);
    for (const problem of problems) findings.push({ file, problem });
    for (const spec of imports) {
      if (spec.startsWith('.')) queue.push(resolveRelative(file, spec));
      else if (BROWSER_ENTRIES[spec]) queue.push(BROWSER_ENTRIES[spec]!);
      else if (!ALLOWED_PACKAGES.has(spec)) findings.push({ file, problem: `imports '${spec}'` });
    }
  }
  return { files, findings };
}

const rel = (f: string) => path.relative(repo, f);

describe('the browser-safe core', () => {
  it('imports nothing from Node, directly or through the files it imports', () => {
    const { files, findings } = walk(ROOTS);
    // The walk reached the loop, the latent GAN step and the checkpoint code (so it followed the imports).
    for (const f of ['train/trainer.ts', 'train/latent-gan.ts', 'train/optim.ts', 'runs/checkpoint-data.ts'])
      expect([...files].map(rel)).toContain(rel(path.join(core, f)));
    expect(findings.map((f) => `${rel(f.file)}: ${f.problem}`)).toEqual([]);
  });

  it('the check catches a Node import, a Node-only package and process.*', () => {
    const dir = fs.mkdtempSync(path.join(fs.realpathSync(path.join(core, '..')), '.browser-safe-'));
    try {
      const a = path.join(dir, 'a.ts');
      fs.writeFileSync(a, "import { b } from './b.js';\nimport type { Argv } from 'yargs';\nexport const a = b;\n");
      fs.writeFileSync(
        path.join(dir, 'b.ts'),
        "import * as fs from 'node:fs';\nimport sharp from 'sharp';\nexport const b = process.env.X ?? fs.sep ?? sharp;\n",
      );
      const problems = walk([a]).findings.map((f) => `${path.basename(f.file)}: ${f.problem}`);
      expect(problems.sort()).toEqual([
        "b.ts: imports 'node:fs'",
        "b.ts: imports 'sharp'",
        "b.ts: uses Node's 'process' (line 3)",
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
