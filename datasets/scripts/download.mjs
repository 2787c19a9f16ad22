#!/usr/bin/env node
// Downloads a public pix2pix or CycleGAN dataset into <dir>/<name>.
// Usage: node datasets/scripts/download.mjs <name> [--dir data] [--kind pix2pix|cyclegan] [--sha256 HEX] [--force] [--keep-archive] [--url URL]
// Needs the built package: pnpm --filter @gantry/core build && pnpm --filter @gantry/datasets build
import { parseArgs } from 'node:util';

const usage =
  'usage: download.mjs <name> [--dir data] [--kind pix2pix|cyclegan] [--sha256 HEX] [--url URL] [--force] [--keep-archive] [--verbose]';

let mod;
try {
  mod = await import('../dist/index.js');
} catch (e) {
  console.error(
    `error: cannot load @gantry/datasets (${e.code ?? e.message}); build it first: pnpm --filter @gantry/core build && pnpm --filter @gantry/datasets build`,
  );
  process.exit(1);
}
const { downloadDataset, PIX2PIX_DATASETS, CYCLEGAN_DATASETS } = mod;

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      dir: { type: 'string', default: 'data' },
      kind: { type: 'string' },
      sha256: { type: 'string' },
      url: { type: 'string' },
      force: { type: 'boolean', default: false },
      'keep-archive': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (e) {
  console.error(`error: ${e.message}\n${usage}`);
  process.exit(2);
}
const { values, positionals } = args;
if (values.help || positionals.length !== 1) {
  console.error(`${usage}\npix2pix: ${PIX2PIX_DATASETS.join(', ')}\ncyclegan: ${CYCLEGAN_DATASETS.join(', ')}`);
  process.exit(values.help ? 0 : 2);
}
const name = positionals[0];
let last = 0;
try {
  const r = await downloadDataset(name, {
    dir: values.dir,
    kind: values.kind,
    sha256: values.sha256,
    url: values.url,
    force: values.force,
    keepArchive: values['keep-archive'],
    onProgress: process.stderr.isTTY
      ? (n, total) => {
          if (n - last < 1 << 20 && n !== total) return;
          last = n;
          const mb = (x) => (x / 1048576).toFixed(1);
          process.stderr.write(`\r${name}: ${mb(n)}${total ? ` / ${mb(total)}` : ''} MB`);
        }
      : undefined,
  });
  if (last) process.stderr.write('\n');
  console.log(r.existed ? `${r.dir} already present` : `${name} (${r.kind}) ready in ${r.dir} (sha256 ${r.sha256})`);
} catch (e) {
  if (last) process.stderr.write('\n');
  if (e?.name === 'GantryError') {
    console.error(`error: ${e.message}`);
    if (values.verbose) console.error(e.stack);
    process.exit(e.exitCode ?? 2);
  }
  throw e;
}
