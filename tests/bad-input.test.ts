/**
 * The bad-input table: every case gets a one-line error naming the flag or file and what was expected, a
 * non-zero exit code, no stack trace, and nothing written where the command would have written.
 */

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32, deflateSync, gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { type FakeTensor, ownStorages, torchZip, unetShapes } from '../packages/core/src/torch/pickle-writer.js';
import { listZip } from '../packages/core/src/torch/zip.js';
import { runApp } from './run-app.js';

/** The fields of model.json and state.json that these tests tamper with. */
type SavedJson = {
  weightsManifest: { paths: string[]; weights: { shape: unknown; dtype: unknown }[] }[];
  step: unknown;
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-bad-'));
const at = (...p: string[]) => path.join(tmp, ...p);

const torchFixture = (f: string) => path.join(import.meta.dirname, '..', 'packages/core/src/torch/fixtures', f);

const app = (name: string, args: string[]) =>
  runApp(name, args, { GANTRY_RUNS: at('runs'), GANTRY_DATA_CACHE: at('cache'), INIT_CWD: tmp });

const png = (file: string, width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: '#7a8' } })
    .png()
    .toFile(file);

/** IDX images file with a given magic number and count, optionally cut short. */
function idxImages(file: string, magic: number, count: number, truncate = false) {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(magic, 0);
  header.writeUInt32BE(count, 4);
  header.writeUInt32BE(28, 8);
  header.writeUInt32BE(28, 12);
  const body = Buffer.alloc(truncate ? 100 : count * 784);
  fs.writeFileSync(file, gzipSync(Buffer.concat([header, body])));
}
function idxLabels(file: string, count: number) {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0x801, 0);
  header.writeUInt32BE(count, 4);
  fs.writeFileSync(file, Buffer.concat([header, Buffer.alloc(count)]));
}

beforeAll(async () => {
  // Datasets with one thing wrong each.
  for (const d of [
    'onlyA/trainA',
    'empty',
    'wrong/images',
    'corrupt/train',
    'odd/train',
    'good/train',
    'good/test',
    'notimages/train',
  ])
    fs.mkdirSync(at(d), { recursive: true });
  fs.writeFileSync(at('corrupt/train/0.png'), '');
  await png(at('onlyA/trainA/0.png'), 32, 32);
  fs.writeFileSync(at('notimages/train/readme.txt'), 'not an image');
  await png(at('odd/train/0.png'), 65, 32);
  for (const split of ['train', 'test']) for (let i = 0; i < 2; i++) await png(at(`good/${split}/${i}.png`), 64, 32);
  fs.mkdirSync(at('idx-magic'));
  idxImages(at('idx-magic/train-images-idx3-ubyte.gz'), 0x1234, 10);
  idxLabels(at('idx-magic/train-labels-idx1-ubyte'), 10);
  fs.mkdirSync(at('idx-short'));
  idxImages(at('idx-short/train-images-idx3-ubyte.gz'), 0x803, 10, true);
  idxLabels(at('idx-short/train-labels-idx1-ubyte'), 10);
  // Image folders for dcgan and cgan: one class only, images but no class folders, a class without images.
  for (const d of ['oneclass/cats', 'flatimages', 'emptyclass/cats', 'emptyclass/dogs'])
    fs.mkdirSync(at(d), { recursive: true });
  for (const f of ['oneclass/cats/0.png', 'flatimages/0.png', 'emptyclass/cats/0.png']) await png(at(f), 16, 16);
  fs.writeFileSync(at('emptyclass/dogs/readme.txt'), 'no images');
  fs.writeFileSync(at('a-file'), 'x');
  fs.writeFileSync(at('photo.txt'), 'not an image');
  // Issue #40: hostile model files, made here (tiny), and inputs that are not files.
  const stride0: Record<string, FakeTensor> = {};
  for (const [k, size] of Object.entries(unetShapes(512)))
    stride0[k] = { storage: k, numel: 1, size, stride: size.map(() => 0) };
  fs.writeFileSync(at('stride0.pth'), torchZip(stride0));
  const shared: FakeTensor = { storage: '0', numel: 1, size: [2 ** 14, 2 ** 14], stride: [0, 0] };
  fs.writeFileSync(at('shared.pth'), torchZip({ a: shared, b: shared, c: shared }));
  fs.writeFileSync(
    at('proto.pth'),
    torchZip({ 'model.1.weight': { storage: '0', type: 'constructor', numel: 4, size: [4] } }),
  );
  fs.writeFileSync(
    at('huge-dim.pth'),
    torchZip({ 'model.model.0.weight': { storage: '0', numel: 1, size: [1.5e300, 0], stride: [1, 1] } }),
  );
  const wide = unetShapes(1);
  wide['model.model.0.weight'] = [512, 3, 4, 4];
  fs.writeFileSync(at('wide.pth'), torchZip(ownStorages(wide)));
  fs.writeFileSync(at('bomb.pth'), torchZip({ a: { storage: '0', numel: 2 ** 20, size: [2 ** 20] } }, { level: 9 }));
  const flipped = fs.readFileSync(torchFixture('ok_resnet6.pth'));
  const m = [...listZip(flipped).values()].find((e) => /\/data\/\d+$/.test(e.name))!;
  flipped[
    m.localHeader + 30 + flipped.readUInt16LE(m.localHeader + 26) + flipped.readUInt16LE(m.localHeader + 28) + 5
  ]! ^= 0x40;
  fs.writeFileSync(at('flipped.pth'), flipped);
  execFileSync('mkfifo', [at('pipe.pth')]);
  fs.mkdirSync(at('used-export'));
  fs.writeFileSync(at('used-export', 'model.json'), '{}');
  // Training folders: a PNG whose header says 16000×16000, and one cut in half.
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type), data]);
    const n = Buffer.alloc(4);
    n.writeUInt32BE(data.length);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([n, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(16000, 0);
  ihdr.writeUInt32BE(16000, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  for (const d of ['bigpng/cats', 'bigpng/dogs', 'halfpng/cats', 'halfpng/dogs'])
    fs.mkdirSync(at(d), { recursive: true });
  fs.writeFileSync(
    at('bigpng/cats/0.png'),
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', deflateSync(Buffer.alloc(1000))),
      chunk('IEND', Buffer.alloc(0)),
    ]),
  );
  const noisy = await sharp({
    create: {
      width: 64,
      height: 64,
      channels: 3,
      background: '#000',
      noise: { type: 'gaussian', mean: 128, sigma: 40 },
    },
  })
    .png()
    .toBuffer();
  for (const d of ['bigpng/dogs', 'halfpng/dogs']) fs.writeFileSync(at(d, '0.png'), noisy);
  fs.writeFileSync(at('halfpng/cats/0.png'), noisy.subarray(0, noisy.length >> 1));
  // Tiny trained models for the sampling commands.
  const cg = await app('cgan', [
    'train',
    '--steps',
    '2',
    '--batch-size',
    '8',
    '--limit',
    '64',
    '--ngf',
    '4',
    '--ndf',
    '4',
    '--out',
    at('cgan-run'),
    '--progress',
    'false',
  ]);
  expect(cg.code, cg.err).toBe(0);
  const p2p = await app('pix2pix', [
    'train',
    '--data',
    at('good'),
    '--netG',
    'unet_32',
    '--crop-size',
    '32',
    '--load-size',
    '32',
    '--ngf',
    '4',
    '--ndf',
    '4',
    '--steps',
    '1',
    '--out',
    at('p2p-run'),
    '--progress',
    'false',
  ]);
  expect(p2p.code, p2p.err).toBe(0);
  const g = await app('gan', [
    'train',
    '--steps',
    '10',
    '--checkpoint-every',
    '5',
    '--batch-size',
    '16',
    '--limit',
    '64',
    '--out',
    at('gan-run'),
    '--progress',
    'false',
  ]);
  expect(g.code, g.err).toBe(0);
  // Copies of that run with one thing wrong each (the run's newest checkpoint is step 10).
  const copy = (name: string) => {
    fs.cpSync(at('gan-run'), at(name), { recursive: true });
    return (...p: string[]) => at(name, 'checkpoints', 'step-00000010', ...p);
  };
  const truncate = (file: string, bytes: number) => fs.writeFileSync(file, fs.readFileSync(file).subarray(0, bytes));
  truncate(copy('gan-trunc-w')('generator_ema', 'weights.bin'), 1000);
  truncate(copy('gan-trunc-opt')('optim-G.bin'), 1000);
  const editJson = (file: string, edit: (j: SavedJson) => void) => {
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as SavedJson;
    edit(j);
    fs.writeFileSync(file, JSON.stringify(j));
  };
  editJson(copy('gan-outside')('generator_ema', 'model.json'), (j) => {
    j.weightsManifest[0].paths = ['../../../../../../../../etc/passwd'];
  });
  const nan = copy('gan-nan')('generator_ema', 'weights.bin');
  const w = fs.readFileSync(nan);
  w.writeFloatLE(Number.NaN, 400);
  fs.writeFileSync(nan, w);
  // Random bytes of the right length, as a corrupt or hostile download would be.
  const random = copy('gan-random')('generator_ema', 'weights.bin');
  fs.writeFileSync(random, randomBytes(fs.statSync(random).size));
  editJson(copy('gan-step-abc')('state.json'), (j) => {
    j.step = 'abc';
  });
  editJson(copy('gan-step-big')('state.json'), (j) => {
    j.step = 1e9;
  });
  copy('gan-rb');
  copy('gan-older');
  copy('gan-full');
  fs.rmSync(at('gan-full', 'losses.jsonl'));
  fs.symlinkSync('/dev/full', at('gan-full', 'losses.jsonl'));
  fs.writeFileSync(
    at('bomb.svg'),
    '<svg xmlns="http://www.w3.org/2000/svg" width="16000" height="16000"><rect width="16000" height="16000" fill="#888"/></svg>',
  );
}, 300_000);

type Case = [app: string, what: string, args: string[], message: RegExp, writes: string];
const cgan = (c: string) => ['--checkpoint', at('cgan-run'), ...(c ? [c] : [])].filter(Boolean);

const cases: Case[] = [
  // MNIST apps: flags
  [
    'cgan',
    'label out of range',
    ['generate', '--label', '12', ...cgan(''), '--out', at('o1')],
    /--label: '12' is not a class \(expected 0-9/,
    'o1',
  ],
  [
    'cgan',
    'label not a number',
    ['generate', '--label', 'x', ...cgan(''), '--out', at('o2')],
    /--label: 'x' is not a class/,
    'o2',
  ],
  [
    'cgan',
    'missing checkpoint',
    ['generate', '--checkpoint', 'nope', '--out', at('o3')],
    /--checkpoint nope: no such run or checkpoint/,
    'o3',
  ],
  [
    'cgan',
    'negative count',
    ['generate', '--count', '-1', ...cgan(''), '--out', at('o4')],
    /--count: expected a positive integer up to 100000 \(one PNG file each\), got '-1'/,
    'o4',
  ],
  [
    'cgan',
    'non-numeric batch size',
    ['train', '--batch-size', 'abc', '--out', at('o5')],
    /--batch-size: expected a positive integer up to 1024 \(memory\), got 'abc'/,
    'o5',
  ],
  [
    'cgan',
    'negative learning rate',
    ['train', '--lr', '-0.1', '--out', at('o6')],
    /--lr: expected a positive number, got '-0.1'/,
    'o6',
  ],
  [
    'cgan',
    'zero discriminator learning rate',
    ['train', '--d-lr', '0', '--out', at('o33')],
    /--d-lr: expected a positive number, got '0'/,
    'o33',
  ],
  [
    'cgan',
    'weight-average decay out of range',
    ['train', '--ema', '1.5', '--out', at('o32')],
    /--ema: expected a decay in \[0, 1\), got '1.5'/,
    'o32',
  ],
  [
    'cgan',
    'negative R1 weight',
    ['train', '--r1', '-1', '--out', at('o34')],
    /--r1: expected a non-negative number, got '-1'/,
    'o34',
  ],
  [
    'cgan',
    'negative mode-seeking weight',
    ['train', '--mode-seeking', '-0.1', '--out', at('o35')],
    /--mode-seeking: expected a non-negative number, got '-0.1'/,
    'o35',
  ],
  ['cgan', 'unknown flag', ['train', '--bogus', '--out', at('o7')], /Unknown argument: bogus/, 'o7'],
  [
    'cgan',
    'unknown loss',
    ['train', '--loss', 'nope', '--out', at('o8')],
    /Invalid values: Argument: loss, Given: "nope"/,
    'o8',
  ],
  [
    'cgan',
    'unknown backend',
    ['train', '--backend', 'tpu', '--out', at('o9')],
    /--backend tpu: unknown backend; expected one of/,
    'o9',
  ],
  [
    'cgan',
    'batch larger than the dataset',
    ['train', '--limit', '10', '--batch-size', '64', '--out', at('o10')],
    /--batch-size 64: larger than the dataset \(10 digits\)/,
    'o10',
  ],
  [
    'cgan',
    'output path is a file',
    ['generate', ...cgan(''), '--out', at('a-file', 'sub')],
    /--out .*a-file\/sub: not a writable directory|a-file.*is a file/,
    'a-file/sub',
  ],
  [
    'cgan',
    'output path is an existing file',
    ['generate', ...cgan(''), '--out', at('a-file')],
    /--out .*a-file: is a file, expected a directory/,
    'none',
  ],
  [
    'dcgan',
    'checkpoint of another variant',
    ['generate', ...cgan(''), '--out', at('o13')],
    /a cgan checkpoint, expected dcgan/,
    'o13',
  ],
  // MNIST apps: data
  ['cgan', 'missing IDX folder', ['train', '--data', 'no-such-dir', '--out', at('o14')], /no-such-dir/, 'o14'],
  [
    'cgan',
    'IDX file with a wrong magic number',
    ['train', '--data', at('idx-magic'), '--out', at('o15')],
    /train-images-idx3-ubyte\.gz.*magic/,
    'o15',
  ],
  [
    'cgan',
    'truncated IDX file',
    ['train', '--data', at('idx-short'), '--out', at('o16')],
    /train-images-idx3-ubyte\.gz.*(truncated|expected)/,
    'o16',
  ],
  // dcgan and cgan: folders of images
  [
    'dcgan',
    'missing image folder',
    ['train', '--data', at('no-such-folder'), '--out', at('o40')],
    /--data .*no-such-folder: folder not found \(expected MNIST IDX files or a folder of images\)/,
    'o40',
  ],
  [
    'dcgan',
    'empty folder',
    ['train', '--data', at('empty'), '--out', at('o41')],
    /--data .*empty: neither MNIST IDX files .* nor images/,
    'o41',
  ],
  [
    'dcgan',
    'folder without images',
    ['train', '--data', at('notimages', 'train'), '--out', at('o42')],
    /notimages\/train: neither MNIST IDX files/,
    'o42',
  ],
  [
    'dcgan',
    'unreadable image',
    ['train', '--data', at('corrupt'), '--image-size', '32', '--out', at('o43')],
    /corrupt\/train\/0\.png: not a readable image/,
    'o43',
  ],
  [
    'dcgan',
    'data that is a file',
    ['train', '--data', at('a-file'), '--out', at('o44')],
    /--data .*a-file: is a file/,
    'o44',
  ],
  [
    'dcgan',
    'unknown scenes',
    ['train', '--data', 'scenes:dusk', '--out', at('o45')],
    /--data scenes:dusk: unknown scenes \(expected scenes:day, scenes:night/,
    'o45',
  ],
  [
    'dcgan',
    'a discriminator deeper than the image allows',
    ['train', '--d-layers', '4', '--out', at('o54')],
    /--d-layers 4: at most 3 at 28×28 pixels/,
    'o54',
  ],
  [
    'dcgan',
    'image size MNIST cannot have',
    ['train', '--image-size', '64', '--out', at('o46')],
    /--image-size 64: MNIST is 28 or 32/,
    'o46',
  ],
  ['dcgan', 'RGB MNIST', ['train', '--channels', '3', '--out', at('o47')], /--channels 3: MNIST is grey/, 'o47'],
  [
    'gan',
    'image folder for the plain GAN',
    ['train', '--data', at('flatimages'), '--out', at('o48')],
    /gan trains on MNIST IDX files only/,
    'o48',
  ],
  [
    'cgan',
    'ImageFolder with one class',
    ['train', '--data', at('oneclass'), '--out', at('o49')],
    /oneclass: one class sub-folder \(cats\); a conditional model needs at least two/,
    'o49',
  ],
  [
    'cgan',
    'images without class folders',
    ['train', '--data', at('flatimages'), '--out', at('o50')],
    /flatimages: no class sub-folders/,
    'o50',
  ],
  [
    'cgan',
    'class folder without images',
    ['train', '--data', at('emptyclass'), '--out', at('o51')],
    /emptyclass\/dogs: no images \(expected .* in class folder dogs\)/,
    'o51',
  ],
  // pix2pix: datasets
  [
    'pix2pix',
    'missing dataset folder',
    ['train', '--data', at('missing'), '--out', at('o17')],
    /missing: dataset folder not found/,
    'o17',
  ],
  [
    'pix2pix',
    'empty dataset folder',
    ['train', '--data', at('empty'), '--out', at('o18')],
    /empty: no train\/ folder/,
    'o18',
  ],
  [
    'pix2pix',
    'wrong layout',
    ['train', '--data', at('wrong'), '--out', at('o19')],
    /wrong: no train\/ folder \(expected pix2pix layout/,
    'o19',
  ],
  [
    'pix2pix',
    'zero-byte image',
    ['train', '--data', at('corrupt'), '--out', at('o20')],
    /corrupt\/train\/0\.png: not a readable image/,
    'o20',
  ],
  [
    'pix2pix',
    'A|B image with odd width',
    ['train', '--data', at('odd'), '--out', at('o21')],
    /odd\/train\/0\.png: width 65 is odd/,
    'o21',
  ],
  [
    'pix2pix',
    'no images among the files',
    ['train', '--data', at('notimages'), '--out', at('o22')],
    /notimages.*(no images|skipped)/,
    'o22',
  ],
  // pix2pix: flags and translate
  [
    'pix2pix',
    'non-numeric crop size',
    ['train', '--crop-size', 'big', '--out', at('o23')],
    /--crop-size: expected a positive integer up to 4096 \(memory\), got 'big'/,
    'o23',
  ],
  [
    'pix2pix',
    'unknown direction',
    ['train', '--direction', 'sideways', '--out', at('o24')],
    /Invalid values: Argument: direction, Given: "sideways"/,
    'o24',
  ],
  [
    'pix2pix',
    'translate a missing input',
    ['translate', '--checkpoint', at('p2p-run'), '--input', at('nope.jpg'), '--output', at('o25.png')],
    /nope\.jpg.*(not found|no such)/i,
    'o25.png',
  ],
  [
    'pix2pix',
    'translate a non-image file',
    ['translate', '--checkpoint', at('p2p-run'), '--input', at('photo.txt'), '--output', at('o26.png')],
    /photo\.txt: not a readable image/,
    'o26.png',
  ],
  [
    'pix2pix',
    'checkpoint of another variant',
    ['translate', '--checkpoint', at('cgan-run'), '--input', at('good/train/0.png'), '--output', at('o27.png')],
    /a cgan checkpoint, expected pix2pix/,
    'o27.png',
  ],
  // CycleGAN
  [
    'cyclegan',
    'unaligned dataset without trainB',
    ['train', '--data', at('onlyA'), '--out', at('o28')],
    /onlyA\/trainB: folder not found \(expected CycleGAN layout/,
    'o28',
  ],
  [
    'cyclegan',
    'image size the generator cannot take',
    ['train', '--crop-size', '30', '--out', at('o29')],
    /--crop-size 30: the ResNet generator needs a multiple of 4/,
    'o29',
  ],
  [
    'cyclegan',
    'unknown translate direction',
    ['translate', '--direction', 'sideways', '--input', at('good/train/0.png'), '--output', at('o30.png')],
    /Invalid values: Argument: direction, Given: "sideways"/,
    'o30.png',
  ],
  [
    'cyclegan',
    'checkpoint of another variant',
    ['translate', '--checkpoint', at('p2p-run'), '--input', at('good/train/0.png'), '--output', at('o31.png')],
    /a pix2pix checkpoint, expected cyclegan/,
    'o31.png',
  ],
  // Issue #21: ranges checked before any work
  [
    'gan',
    'Adam β1 out of range',
    ['train', '--beta1', '1.5', '--out', at('o40')],
    /--beta1: expected a number in \[0, 1\), got '1\.5'/,
    'o40',
  ],
  [
    'gan',
    'batch size over the memory limit',
    ['train', '--batch-size', '60000', '--out', at('o41')],
    /--batch-size: expected a positive integer up to 1024 \(memory\), got '60000'/,
    'o41',
  ],
  [
    'gan',
    'latent size over the limit',
    ['train', '--latent-dim', '1e8', '--out', at('o42')],
    /--latent-dim: expected a positive integer up to 4096 \(memory\), got '100000000'/,
    'o42',
  ],
  [
    'gan',
    'generate count over the limit',
    ['generate', '--count', '1e9', '--checkpoint', at('gan-run'), '--out', at('o43')],
    /--count: expected a positive integer up to 100000 \(one PNG file each\)/,
    'o43',
  ],
  // Issue #21: run directories
  [
    'gan',
    'train --out pointing at a file',
    ['train', '--steps', '2', '--out', at('a-file')],
    /--out .*a-file: is a file, expected a directory/,
    'none',
  ],
  [
    'gan',
    'train --out under a file',
    ['train', '--steps', '2', '--out', at('a-file', 'sub')],
    /--out .*a-file\/sub: .*a-file is a file, expected a directory/,
    'a-file/sub',
  ],
  [
    'gan',
    'train --out under /proc (no hang)',
    ['train', '--steps', '2', '--out', '/proc/gantry-bad-input/run'],
    /--out \/proc\/gantry-bad-input\/run: not a writable directory \(ENOENT/,
    'none',
  ],
  [
    'cgan',
    'generate --out under /proc (no hang)',
    ['generate', ...cgan(''), '--out', '/proc/gantry-bad-input/out'],
    /--out \/proc\/gantry-bad-input\/out: not a writable directory \(ENOENT/,
    'none',
  ],
  [
    'cgan',
    "train into another run's folder",
    ['train', '--steps', '2', '--limit', '64', '--out', at('cgan-run')],
    /--out .*cgan-run: already holds a run \(a run directory belongs to one run\); continue it with --resume/,
    'none',
  ],
  // Issue #21: model files are untrusted input
  [
    'gan',
    'truncated weights.bin',
    ['generate', '--checkpoint', at('gan-trunc-w'), '--out', at('o44')],
    /gan-trunc-w\/.*generator_ema\/weights\.bin: truncated \(1000 bytes/,
    'o44',
  ],
  [
    'gan',
    'weight path outside the checkpoint',
    ['generate', '--checkpoint', at('gan-outside'), '--out', at('o45')],
    /generator_ema\/model\.json: weight path '\.\.\/.*etc\/passwd' points outside the model folder/,
    'o45',
  ],
  [
    'gan',
    'NaN weights',
    ['generate', '--checkpoint', at('gan-nan'), '--out', at('o46')],
    /generator_ema\/weights\.bin: weight \S+ contains NaN \(refusing NaN\/Inf weights\)/,
    'o46',
  ],
  [
    'gan',
    'random weights',
    ['generate', '--checkpoint', at('gan-random'), '--out', at('o53')],
    /generator_ema\/weights\.bin: weight \S+ contains (NaN|-?Infinity) \(refusing NaN\/Inf weights\)/,
    'o53',
  ],
  [
    'gan',
    'state.json step not a number',
    ['generate', '--checkpoint', at('gan-step-abc'), '--out', at('o47')],
    /state\.json: 'step' is "abc", expected an integer in 0\.\.99999999/,
    'o47',
  ],
  [
    'gan',
    'state.json step out of range',
    ['generate', '--checkpoint', at('gan-step-big'), '--out', at('o48')],
    /state\.json: 'step' is 1000000000, expected an integer/,
    'o48',
  ],
  [
    'pix2pix',
    'translate --output under /proc (no hang)',
    [
      'translate',
      '--checkpoint',
      at('p2p-run'),
      '--input',
      at('good/train/0.png'),
      '--output',
      '/proc/gantry-bad-input/o.png',
    ],
    /\/proc\/gantry-bad-input\/o\.png: cannot write \(ENOENT/,
    'none',
  ],
  // Issue #21: translate's input-size limit
  [
    'pix2pix',
    'translate an image over the default size limit',
    ['translate', '--checkpoint', at('p2p-run'), '--input', at('bomb.svg'), '--output', at('o49.png')],
    /bomb\.svg: 16000×16000 is 256\.0 megapixels, over the limit of 50 \(--max-megapixels\)/,
    'o49.png',
  ],
  [
    'pix2pix',
    'translate an image over --max-megapixels',
    [
      'translate',
      '--checkpoint',
      at('p2p-run'),
      '--max-megapixels',
      '0.001',
      '--input',
      at('good/train/0.png'),
      '--output',
      at('o50.png'),
    ],
    /0\.png: 64×32 is 0\.0 megapixels, over the limit of 0\.001/,
    'o50.png',
  ],
  // import-torch (#23): PyTorch files
  [
    'pix2pix',
    'import-torch of a pickled module',
    ['import-torch', '--from', torchFixture('bad_whole_module.pth'), '--out', at('o36')],
    /bad_whole_module\.pth: refers to __main__\.ResnetGenerator/,
    'o36',
  ],
  [
    'cyclegan',
    'import-torch with a wrong shape',
    ['import-torch', '--from', torchFixture('bad_shape.pth'), '--out', at('o37')],
    /bad_shape\.pth: model\.4\.weight: shape \[3, 1, 3, 3\] in the file/,
    'o37',
  ],
  [
    'cyclegan',
    'import-torch of an unknown published name',
    ['import-torch', '--model', 'day2night', '--out', at('o38')],
    /--model day2night: not a published cyclegan generator/,
    'o38',
  ],
  // Issue #40: untrusted model files and output folders
  [
    'pix2pix',
    'import-torch --out under /proc (no hang)',
    ['import-torch', '--from', torchFixture('unet_256_batch.pth'), '--out', '/proc/gantry-bad-input/x'],
    /--out \/proc\/gantry-bad-input\/x: \/proc is on proc, a kernel file system, not a place for files/,
    'none',
  ],
  [
    'cyclegan',
    'import-torch --out under /proc/self (no hang)',
    ['import-torch', '--from', torchFixture('ok_resnet6.pth'), '--out', '/proc/self/gantry-x'],
    /--out \/proc\/self\/gantry-x: \/proc\/self is on proc, a kernel file system/,
    'none',
  ],
  [
    'pix2pix',
    'import-torch --out under a file',
    ['import-torch', '--from', torchFixture('unet_256_batch.pth'), '--out', at('a-file', 'sub')],
    /--out .*a-file\/sub: .*a-file is a file, expected a directory/,
    'a-file/sub',
  ],
  [
    'pix2pix',
    'import-torch --from a named pipe (no hang)',
    ['import-torch', '--from', at('pipe.pth'), '--out', at('o60')],
    /--from .*pipe\.pth: a named pipe, expected a \.pth file/,
    'o60',
  ],
  [
    'cyclegan',
    'import-torch --from /dev/zero (no endless read)',
    ['import-torch', '--from', '/dev/zero', '--out', at('o61')],
    /--from \/dev\/zero: a device, expected a \.pth file/,
    'o61',
  ],
  [
    'pix2pix',
    'import-torch of a stride-0 (broadcast) 512-channel file',
    ['import-torch', '--from', at('stride0.pth'), '--out', at('o62')],
    /stride0\.pth: model\.model\.0\.weight: size \[512, 3, 4, 4\] has 24576 elements, more than its storage/,
    'o62',
  ],
  [
    'cyclegan',
    'import-torch of keys sharing a 2^28-element stride-0 tensor',
    ['import-torch', '--from', at('shared.pth'), '--out', at('o63')],
    /shared\.pth: a: size \[16384, 16384\] has 268435456 elements, more than its storage 0 holds \(1\)/,
    'o63',
  ],
  [
    'pix2pix',
    'import-torch of a storage type named torch.constructor',
    ['import-torch', '--from', at('proto.pth'), '--out', at('o64')],
    /proto\.pth: refers to torch\.constructor, which a state dict of float tensors does not use/,
    'o64',
  ],
  [
    'pix2pix',
    'import-torch of a size [1.5e300, 0] (blames the file, not a flag)',
    ['import-torch', '--from', at('huge-dim.pth'), '--out', at('o65')],
    /huge-dim\.pth: a tensor of size \[1\.5e\+300, 0\].*each must be an integer in 0\.\.2\^31-1/,
    'o65',
  ],
  [
    'pix2pix',
    'import-torch of a first convolution wider than the rest (checked before building)',
    ['import-torch', '--from', at('wide.pth'), '--out', at('o66')],
    /wide\.pth: model\.model\.1\.model\.1\.weight: shape \[2, 1, 4, 4\] in the file, \[1024, 512, 4, 4\] expected by unet_128 \(ngf 512/,
    'o66',
  ],
  [
    'pix2pix',
    'import-torch of a zip bomb',
    ['import-torch', '--from', at('bomb.pth'), '--out', at('o67')],
    /bomb\.pth: its deflated members inflate to more than 16 × the file's size: a zip bomb\?/,
    'o67',
  ],
  [
    'cyclegan',
    'import-torch of a file with a flipped byte in a weight',
    ['import-torch', '--from', at('flipped.pth'), '--out', at('o68')],
    /flipped\.pth: not a readable zip archive \(member \S+ fails its CRC-32 check: the file is corrupt\)/,
    'o68',
  ],
  [
    'pix2pix',
    'export --out under /proc',
    ['export', '--checkpoint', at('p2p-run'), '--out', '/proc/gantry-bad-input/web'],
    /--out \/proc\/gantry-bad-input\/web: \/proc is on proc, a kernel file system/,
    'none',
  ],
  [
    'pix2pix',
    'export into a non-empty folder',
    ['export', '--checkpoint', at('p2p-run'), '--out', at('used-export')],
    /--out .*used-export: already exists and is not empty \(pass --force to replace it\)/,
    'none',
  ],
  [
    'dcgan',
    'training folder with a 16000×16000 PNG (pixel limit)',
    ['train', '--data', at('bigpng'), '--out', at('o69')],
    /bigpng\/cats\/0\.png: 16000×16000 is 256\.0 megapixels, over the limit of 50/,
    'o69',
  ],
  [
    'cgan',
    'training folder with a half-written PNG',
    ['train', '--data', at('halfpng'), '--out', at('o70')],
    /halfpng\/cats\/0\.png: not a readable image \(truncated or corrupt image data: /,
    'o70',
  ],
];

describe('bad input', () => {
  it('has at least 45 cases (with the training-time cases below)', async () => {
    expect(cases.length + runCases.length).toBeGreaterThanOrEqual(45);
  });

  it.each(cases)('%s: %s', async (name, _what, args, message, writes) => {
    const r = await app(name, args);
    expect(r.code, r.err).not.toBe(0);
    expect(r.code).not.toBeNull();
    const lines = r.err
      .trim()
      .split('\n')
      // The backend line, and the progress line of a folder of images being decoded before a bad file is found.
      .filter((l) => !l.startsWith('backend:') && !l.startsWith('images: decoding'));
    expect(lines, r.err).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${name}: error: `));
    expect(lines[0]).toMatch(message);
    expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
    if (writes !== 'none') expect(fs.existsSync(at(writes))).toBe(false);
  });
});

/**
 * Cases that fail once the run has started (after its "N steps → run" line): exit code 2, the last line a one-line
 * error naming what is wrong, no stack trace, and what was there before left as it was.
 */
type RunCase = [app: string, what: string, args: string[], message: RegExp, after?: (err: string) => void];
const steps = (run: string) => fs.readdirSync(at(run, 'checkpoints')).filter((n) => n.startsWith('step-'));

const runCases: RunCase[] = [
  [
    'gan',
    'rollback retries are bounded, each at a lower rate',
    [
      'train',
      '--resume',
      at('gan-rb'),
      '--steps',
      '40',
      '--lr',
      '1e10',
      '--nan-policy',
      'rollback',
      '--progress',
      'false',
    ],
    /again after 5 rollbacks to .*step-00000010, the last at 1\/32 of the learning rate; training diverged \(lower --lr\)/,
    (err) => {
      const scales = [...err.matchAll(/rolled back to .* at (\S+) of the learning rate \(retry (\d) of 5\)/g)].map(
        (m) => m[1],
      );
      expect(scales).toEqual(['1/2', '1/4', '1/8', '1/16', '1/32']);
      expect(steps('gan-rb')).toEqual(['step-00000005', 'step-00000010']);
    },
  ],
  [
    'gan',
    'resume with a truncated optimizer file',
    ['train', '--resume', at('gan-trunc-opt'), '--steps', '12', '--progress', 'false'],
    /optim-G\.bin: truncated \(1000 bytes, the weight list needs/,
  ],
  [
    'gan',
    "resume from a checkpoint older than the run's latest",
    ['train', '--resume', at('gan-older', 'checkpoints', 'step-00000005'), '--steps', '20', '--progress', 'false'],
    /step 5 is older than this run's latest checkpoint \(step 10\); a run directory holds one history/,
    () => expect(steps('gan-older')).toEqual(['step-00000005', 'step-00000010']),
  ],
  [
    'gan',
    'disk full while appending losses.jsonl',
    ['train', '--resume', at('gan-full'), '--steps', '14', '--progress', 'false'],
    /cannot write .*gan-full\/losses\.jsonl: the disk is full/,
    () => expect(steps('gan-full')).toEqual(['step-00000005', 'step-00000010']),
  ],
  [
    'cgan',
    'failed validation leaves no empty run directory',
    ['train', '--limit', '10', '--batch-size', '64'],
    /--batch-size 64: larger than the dataset \(10 digits\)/,
    () => expect(fs.existsSync(at('runs', 'cgan')) ? fs.readdirSync(at('runs', 'cgan')) : []).toEqual([]),
  ],
];

describe('bad input after the run has started', () => {
  it.each(runCases)('%s: %s', async (name, _what, args, message, after) => {
    const r = await app(name, args);
    expect(r.code, r.err).toBe(2);
    const lines = r.err.trim().split('\n');
    expect(
      lines.filter((l) => l.includes(': error: ')),
      r.err,
    ).toHaveLength(1);
    expect(lines.at(-1)).toMatch(new RegExp(`^${name}: error: `));
    expect(lines.at(-1)).toMatch(message);
    expect(r.err).not.toMatch(/\n\s+at /);
    after?.(r.err);
  });

  it('--resume with another --out says that --out is ignored, and writes nothing there', async () => {
    fs.cpSync(at('gan-run'), at('gan-resume-out'), { recursive: true });
    const r = await app('gan', [
      'train',
      '--resume',
      at('gan-resume-out'),
      '--out',
      at('o51'),
      '--steps',
      '11',
      '--progress',
      'false',
    ]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(
      `warning: --out ${at('o51')} is ignored with --resume: the run continues in ${at('gan-resume-out')}`,
    );
    expect(fs.existsSync(at('o51'))).toBe(false);
    expect(steps('gan-resume-out')).toContain('step-00000011');
  });

  it('generate without --checkpoint uses the newest run with a complete checkpoint, past a newer broken one', async () => {
    const runs = at('runs-latest');
    fs.cpSync(at('gan-run'), path.join(runs, 'gan', '2026-01-01_00-00-00'), { recursive: true });
    // A newer run killed during its first checkpoint: only a partial checkpoint folder.
    fs.mkdirSync(path.join(runs, 'gan', '2026-01-02_00-00-00', 'checkpoints', '.partial.tmp-1-abcdef'), {
      recursive: true,
    });
    const r = await runApp('gan', ['generate', '--count', '2', '--out', at('o52')], {
      GANTRY_RUNS: runs,
      INIT_CWD: tmp,
    });
    expect(r.code, r.err).toBe(0);
    expect(fs.readdirSync(at('o52')).sort()).toEqual(['0000.png', '0001.png', 'grid.png']);
  });
});
