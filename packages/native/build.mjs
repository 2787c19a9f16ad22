#!/usr/bin/env node
/**
 * Builds build/gantry_native.node with g++ against Node's own headers and Debian's oneDNN (libdnnl-dev).
 * Optional by design: when a piece is missing it says which and exits 0, and Gantry runs on the plain wasm
 * kernels. GANTRY_NATIVE=0 skips the build. The output is written to a temporary name and renamed.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, 'build', 'gantry_native.node');
const source = path.join(here, 'src', 'gantry_native.cc');

function skip(why) {
  fs.rmSync(out, { force: true }); // never leave a stale binary behind a skipped build
  console.log(`@gantry/native: not built (${why}); Gantry uses its WebAssembly kernels`);
  process.exit(0);
}

if (process.env.GANTRY_NATIVE === '0') skip('GANTRY_NATIVE=0');
if (process.platform !== 'linux') skip(`platform ${process.platform}: the build script knows Linux only`);
const nodeHeaders = [
  path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].find((d) => fs.existsSync(path.join(d, 'node_api.h')));
if (!nodeHeaders) skip("Node's headers (node_api.h) not found");
const dnnlHeader = ['/usr/include/oneapi/dnnl/dnnl.hpp', '/usr/local/include/oneapi/dnnl/dnnl.hpp'].find((f) =>
  fs.existsSync(f),
);
if (!dnnlHeader) skip('oneDNN headers not found: apt-get install libdnnl-dev');
const cxx = process.env.CXX ?? 'g++';

// Rebuild only when the source or this script changed.
if (fs.existsSync(out)) {
  const built = fs.statSync(out).mtimeMs;
  if (fs.statSync(source).mtimeMs < built && fs.statSync(fileURLToPath(import.meta.url)).mtimeMs < built) {
    console.log('@gantry/native: up to date');
    process.exit(0);
  }
}
fs.mkdirSync(path.dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const args = [
  '-O3',
  '-fno-math-errno',
  // No FP-exception semantics to keep: lets GCC evaluate both arms of a select (leaky ReLU's alpha·v) and vectorise
  // it as a blend; with its default -ftrapping-math the multiply stays in a branch, 15× slower on mixed signs.
  // NaN and signed-zero behaviour are unchanged (that would take -ffast-math, which is not used).
  '-fno-trapping-math',
  '-std=c++17',
  '-fPIC',
  '-shared',
  '-fopenmp',
  '-DNODE_GYP_MODULE_NAME=gantry_native',
  '-DNAPI_VERSION=8',
  `-I${nodeHeaders}`,
  `-I${path.dirname(path.dirname(path.dirname(dnnlHeader)))}`,
  source,
  '-o',
  tmp,
  '-ldnnl',
];
try {
  execFileSync(cxx, args, { stdio: ['ignore', 'inherit', 'inherit'] });
} catch (e) {
  fs.rmSync(tmp, { force: true });
  skip(`${cxx} failed: ${e.code === 'ENOENT' ? 'not installed' : `exit ${e.status}`}`);
}
fs.renameSync(tmp, out);
console.log(`@gantry/native: built ${path.relative(process.cwd(), out)} (${cxx}, ${path.dirname(dnnlHeader)})`);
