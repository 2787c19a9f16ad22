#!/usr/bin/env node
/**
 * Issue #40's bound: no model file under 64 KB makes Gantry use more than 500 MB. Writes hostile PyTorch files
 * (all under 64 KB: broadcast storages, shared storages, zip bombs, a pickle of deep nesting, prototype names, a
 * huge declared size, a network at the largest width the inflation cap lets through) plus /dev/zero and a FIFO as
 * --from, runs `pix2pix import-torch` on each in a child process and reads its peak RSS (/usr/bin/time -f %M).
 * Needs `pnpm build`.
 *
 *   node bench/untrusted-memory.mjs [--json FILE] [--limit-mb 500]
 *
 * Prints one row per file (bytes, exit code, peak RSS, seconds, the error's end) and exits 1 if any run exceeds
 * the limit, takes over 60 s, or exits 0 for a file that must be refused.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const { values: opts } = parseArgs({
  options: { json: { type: 'string' }, 'limit-mb': { type: 'string', default: '500' } },
});
const limitMB = Number(opts['limit-mb']);
const w = await import(path.join(root, 'packages/core/dist/torch/pickle-writer.js'));
const cli = path.join(root, 'apps/pix2pix/dist/cli.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-untrusted-mem-'));

/** name → [bytes, must be refused] */
const files = new Map();
const put = (name, bytes, refused = true) => {
  fs.writeFileSync(path.join(dir, name), bytes);
  files.set(name, { bytes: bytes.byteLength, refused });
};

// 1. The first convolution at 512 channels through stride-0 (broadcast) storages of one element.
const stride0 = {};
for (const [k, size] of Object.entries(w.unetShapes(512)))
  stride0[k] = { storage: k, numel: 1, size, stride: size.map(() => 0) };
put('stride0-512ch.pth', w.torchZip(stride0));
// 2. Many keys sharing one stride-0 tensor of 2^28 elements (each once cost 1 GiB).
const shared = { storage: '0', numel: 1, size: [2 ** 14, 2 ** 14], stride: [0, 0] };
const many = {};
for (let i = 0; i < 64; i++) many[`k${i}`] = shared;
put('shared-2^28-x64.pth', w.torchZip(many));
// 3. Tensors overlapping in one real storage.
const overlap = { storage: '0', numel: 4096, size: [4096] };
const overlaps = {};
for (let i = 0; i < 64; i++) overlaps[`k${i}`] = overlap;
put('overlap-x64.pth', w.torchZip(overlaps));
// 4. A deflated storage of 256 MiB of zeros (a zip bomb, about 260 KB deflated: too big; 16 MiB fits in 64 KB).
const n = 4 * 2 ** 20;
put('zip-bomb-16MiB.pth', w.torchZip({ a: { storage: '0', numel: n, size: [n] } }, { level: 9 }));
// 5. An unreferenced stored member (never read: members are read only when a tensor refers to them).
put(
  'unreferenced-members.pth',
  w.torchZip(w.ownStorages(w.unetShapes(1)), { extra: { 'archive/data/x': new Uint8Array(4096).fill(7) } }),
  false,
);
// 6. The largest network the inflation cap lets through (16 × the file + 1 MiB): unet_256 at ngf 6 (478 000 zero
// weights, 1.9 MB), deflated, in a file padded to 63 KB with an unreferenced stored member to raise the cap to 2 MB.
const padded = (ngf, pad) =>
  w.torchZip(w.ownStorages(w.unetShapes(ngf, 8)), { level: 9, extra: { 'archive/pad': new Uint8Array(pad) } });
const ngf6 = padded(6, 0);
put('unet256-ngf6-deflated-padded.pth', padded(6, 63 * 1024 - ngf6.byteLength - 400), false);
// 7. The same at ngf 8 (3.4 million weights): over the cap even padded.
put('unet256-ngf8-deflated-padded.pth', padded(8, 63 * 1024 - padded(8, 0).byteLength - 400));
// 8. A first convolution at ngf 512 with real data (96 KB stored: deflated to fit), the rest at ngf 1.
const wide = w.unetShapes(1);
wide['model.model.0.weight'] = [512, 3, 4, 4];
put('wide-first-conv.pth', w.torchZip(w.ownStorages(wide), { level: 9 }));
// 9. Prototype names as storage types.
put(
  'torch.constructor.pth',
  w.torchZip({ 'model.1.weight': { storage: '0', type: 'constructor', numel: 4, size: [4] } }),
);
put('torch.__proto__.pth', w.torchZip({ 'model.1.weight': { storage: '0', type: '__proto__', numel: 4, size: [4] } }));
// 10. A size of 1.5e300 and a storage that declares 2^50 elements.
put(
  'size-1.5e300.pth',
  w.torchZip({ 'model.model.0.weight': { storage: '0', numel: 1, size: [1.5e300, 0], stride: [1, 1] } }),
);
put(
  'numel-2^50.pth',
  w.torchZip({ a: { storage: '0', numel: 2 ** 50, size: [4] } }, { data: { 0: new Uint8Array(16) } }),
);
// 11. A pickle nested 60 000 lists deep (EMPTY_LIST × n, then APPEND × n), and one of 60 000 memo references.
const depth = 30_000;
const deep = new Uint8Array([0x80, 2, ...new Array(depth).fill(0x5d), ...new Array(depth - 1).fill(0x61), 0x2e]);
put('deep-pickle.pth', w.zipFiles({ 'a/data.pkl': deep }));
const memo = [0x80, 2, 0x5d, 0x71, 0, 0x28];
for (let i = 0; i < 20_000; i++) memo.push(0x68, 0);
memo.push(0x65, 0x2e);
put('memo-pickle.pth', w.zipFiles({ 'a/data.pkl': new Uint8Array(memo) }));
// 12. Not files.
execFileSync('mkfifo', [path.join(dir, 'fifo.pth')]);
files.set('fifo.pth', { bytes: 0, refused: true });
files.set('/dev/zero', { bytes: 0, refused: true });

const rows = [];
let failed = false;
for (const [name, f] of files) {
  if (f.bytes >= 64 * 1024) throw new Error(`${name}: ${f.bytes} bytes, not under 64 KB`);
  const from = name.startsWith('/') ? name : path.join(dir, name);
  const out = path.join(dir, `out-${rows.length}`);
  const t0 = performance.now();
  const r = spawnSync(
    '/usr/bin/time',
    ['-f', 'RSS_KB %M', process.execPath, cli, 'import-torch', '--from', from, '--out', out],
    {
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, INIT_CWD: dir },
    },
  );
  const seconds = (performance.now() - t0) / 1000;
  const rssMB = Number(/RSS_KB (\d+)/.exec(r.stderr)?.[1] ?? Number.NaN) / 1024;
  const err = r.stderr.split('\n').find((l) => l.startsWith('pix2pix: error:')) ?? r.stdout.split('\n')[0] ?? '';
  const code = r.status;
  const ok = rssMB <= limitMB && seconds < 60 && (f.refused ? code === 2 : code === 0);
  if (!ok) failed = true;
  rows.push({
    file: name,
    bytes: f.bytes,
    code,
    rssMB: Math.round(rssMB),
    seconds: Number(seconds.toFixed(2)),
    message: err.slice(-110),
    ok,
  });
}
console.log(`| file | bytes | exit | peak RSS (MB) | s | message (end) |\n|---|---:|---:|---:|---:|---|`);
for (const r of rows)
  console.log(
    `| ${r.file} | ${r.bytes} | ${r.code} | ${r.rssMB} | ${r.seconds} | ${r.message.replace(/\|/g, '\\|')} |`,
  );
const worst = Math.max(...rows.map((r) => r.rssMB));
console.log(`\nworst peak RSS ${worst} MB (limit ${limitMB} MB): ${failed ? 'FAIL' : 'ok'}`);
if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ limitMB, worstMB: worst, ok: !failed, rows }, null, 2));
fs.rmSync(dir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
