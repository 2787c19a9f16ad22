/**
 * The bad-input table: every case gets a one-line error naming the flag or file and what was expected, a
 * non-zero exit code, no stack trace, and nothing written where the command would have written.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { runApp } from './run-app.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-bad-'));
const at = (...p: string[]) => path.join(tmp, ...p);

const app = (name: string, args: string[]) => runApp(name, args, { GANTRY_RUNS: at('runs'), GANTRY_DATA_CACHE: at('cache'), INIT_CWD: tmp });

const png = (file: string, width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: '#7a8' } }).png().toFile(file);

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
  for (const d of ['onlyA/trainA', 'empty', 'wrong/images', 'corrupt/train', 'odd/train', 'good/train', 'good/test', 'notimages/train']) fs.mkdirSync(at(d), { recursive: true });
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
  for (const d of ['oneclass/cats', 'flatimages', 'emptyclass/cats', 'emptyclass/dogs']) fs.mkdirSync(at(d), { recursive: true });
  for (const f of ['oneclass/cats/0.png', 'flatimages/0.png', 'emptyclass/cats/0.png']) await png(at(f), 16, 16);
  fs.writeFileSync(at('emptyclass/dogs/readme.txt'), 'no images');
  fs.writeFileSync(at('a-file'), 'x');
  fs.writeFileSync(at('photo.txt'), 'not an image');
  // Tiny trained models for the sampling commands.
  const cg = await app('cgan', ['train', '--steps', '2', '--batch-size', '8', '--limit', '64', '--ngf', '4', '--ndf', '4', '--out', at('cgan-run'), '--progress', 'false']);
  expect(cg.code, cg.err).toBe(0);
  const p2p = await app('pix2pix', ['train', '--data', at('good'), '--netG', 'unet_32', '--crop-size', '32', '--load-size', '32', '--ngf', '4', '--ndf', '4', '--steps', '1', '--out', at('p2p-run'), '--progress', 'false']);
  expect(p2p.code, p2p.err).toBe(0);
}, 300_000);

type Case = [app: string, what: string, args: string[], message: RegExp, writes: string];
const cgan = (c: string) => ['--checkpoint', at('cgan-run'), ...(c ? [c] : [])].filter(Boolean);

const cases: Case[] = [
  // MNIST apps: flags
  ['cgan', 'label out of range', ['generate', '--label', '12', ...cgan(''), '--out', at('o1')], /--label: '12' is not a class \(expected 0-9/, 'o1'],
  ['cgan', 'label not a number', ['generate', '--label', 'x', ...cgan(''), '--out', at('o2')], /--label: 'x' is not a class/, 'o2'],
  ['cgan', 'missing checkpoint', ['generate', '--checkpoint', 'nope', '--out', at('o3')], /--checkpoint nope: no such run or checkpoint/, 'o3'],
  ['cgan', 'negative count', ['generate', '--count', '-1', ...cgan(''), '--out', at('o4')], /--count: expected a positive integer, got '-1'/, 'o4'],
  ['cgan', 'non-numeric batch size', ['train', '--batch-size', 'abc', '--out', at('o5')], /--batch-size: expected a positive integer, got 'abc'/, 'o5'],
  ['cgan', 'negative learning rate', ['train', '--lr', '-0.1', '--out', at('o6')], /--lr: expected a positive number, got '-0.1'/, 'o6'],
  ['cgan', 'zero discriminator learning rate', ['train', '--d-lr', '0', '--out', at('o33')], /--d-lr: expected a positive number, got '0'/, 'o33'],
  ['cgan', 'weight-average decay out of range', ['train', '--ema', '1.5', '--out', at('o32')], /--ema: expected a decay in \[0, 1\), got '1.5'/, 'o32'],
  ['cgan', 'negative R1 weight', ['train', '--r1', '-1', '--out', at('o34')], /--r1: expected a non-negative number, got '-1'/, 'o34'],
  ['cgan', 'negative mode-seeking weight', ['train', '--mode-seeking', '-0.1', '--out', at('o35')], /--mode-seeking: expected a non-negative number, got '-0.1'/, 'o35'],
  ['cgan', 'unknown flag', ['train', '--bogus', '--out', at('o7')], /Unknown argument: bogus/, 'o7'],
  ['cgan', 'unknown loss', ['train', '--loss', 'nope', '--out', at('o8')], /Invalid values: Argument: loss, Given: "nope"/, 'o8'],
  ['cgan', 'unknown backend', ['train', '--backend', 'tpu', '--out', at('o9')], /--backend tpu: unknown backend; expected one of/, 'o9'],
  ['cgan', 'batch larger than the dataset', ['train', '--limit', '10', '--batch-size', '64', '--out', at('o10')], /--batch-size 64: larger than the dataset \(10 digits\)/, 'o10'],
  ['cgan', 'output path is a file', ['generate', ...cgan(''), '--out', at('a-file', 'sub')], /--out .*a-file\/sub: not a writable directory|a-file.*is a file/, 'a-file/sub'],
  ['cgan', 'output path is an existing file', ['generate', ...cgan(''), '--out', at('a-file')], /--out .*a-file: is a file, expected a directory/, 'none'],
  ['dcgan', 'checkpoint of another variant', ['generate', ...cgan(''), '--out', at('o13')], /a cgan checkpoint, expected dcgan/, 'o13'],
  // MNIST apps: data
  ['cgan', 'missing IDX folder', ['train', '--data', 'no-such-dir', '--out', at('o14')], /no-such-dir/, 'o14'],
  ['cgan', 'IDX file with a wrong magic number', ['train', '--data', at('idx-magic'), '--out', at('o15')], /train-images-idx3-ubyte\.gz.*magic/, 'o15'],
  ['cgan', 'truncated IDX file', ['train', '--data', at('idx-short'), '--out', at('o16')], /train-images-idx3-ubyte\.gz.*(truncated|expected)/, 'o16'],
  // dcgan and cgan: folders of images
  ['dcgan', 'missing image folder', ['train', '--data', at('no-such-folder'), '--out', at('o40')], /--data .*no-such-folder: folder not found \(expected MNIST IDX files or a folder of images\)/, 'o40'],
  ['dcgan', 'empty folder', ['train', '--data', at('empty'), '--out', at('o41')], /--data .*empty: neither MNIST IDX files .* nor images/, 'o41'],
  ['dcgan', 'folder without images', ['train', '--data', at('notimages', 'train'), '--out', at('o42')], /notimages\/train: neither MNIST IDX files/, 'o42'],
  ['dcgan', 'unreadable image', ['train', '--data', at('corrupt'), '--image-size', '32', '--out', at('o43')], /corrupt\/train\/0\.png: not a readable image/, 'o43'],
  ['dcgan', 'data that is a file', ['train', '--data', at('a-file'), '--out', at('o44')], /--data .*a-file: is a file/, 'o44'],
  ['dcgan', 'unknown scenes', ['train', '--data', 'scenes:dusk', '--out', at('o45')], /--data scenes:dusk: unknown scenes \(expected scenes:day, scenes:night/, 'o45'],
  ['dcgan', 'image size MNIST cannot have', ['train', '--image-size', '64', '--out', at('o46')], /--image-size 64: MNIST is 28 or 32/, 'o46'],
  ['dcgan', 'RGB MNIST', ['train', '--channels', '3', '--out', at('o47')], /--channels 3: MNIST is grey/, 'o47'],
  ['gan', 'image folder for the plain GAN', ['train', '--data', at('flatimages'), '--out', at('o48')], /gan trains on MNIST IDX files only/, 'o48'],
  ['cgan', 'ImageFolder with one class', ['train', '--data', at('oneclass'), '--out', at('o49')], /oneclass: one class sub-folder \(cats\); a conditional model needs at least two/, 'o49'],
  ['cgan', 'images without class folders', ['train', '--data', at('flatimages'), '--out', at('o50')], /flatimages: no class sub-folders/, 'o50'],
  ['cgan', 'class folder without images', ['train', '--data', at('emptyclass'), '--out', at('o51')], /emptyclass\/dogs: no images \(expected .* in class folder dogs\)/, 'o51'],
  // pix2pix: datasets
  ['pix2pix', 'missing dataset folder', ['train', '--data', at('missing'), '--out', at('o17')], /missing: dataset folder not found/, 'o17'],
  ['pix2pix', 'empty dataset folder', ['train', '--data', at('empty'), '--out', at('o18')], /empty: no train\/ folder/, 'o18'],
  ['pix2pix', 'wrong layout', ['train', '--data', at('wrong'), '--out', at('o19')], /wrong: no train\/ folder \(expected pix2pix layout/, 'o19'],
  ['pix2pix', 'zero-byte image', ['train', '--data', at('corrupt'), '--out', at('o20')], /corrupt\/train\/0\.png: not a readable image/, 'o20'],
  ['pix2pix', 'A|B image with odd width', ['train', '--data', at('odd'), '--out', at('o21')], /odd\/train\/0\.png: width 65 is odd/, 'o21'],
  ['pix2pix', 'no images among the files', ['train', '--data', at('notimages'), '--out', at('o22')], /notimages.*(no images|skipped)/, 'o22'],
  // pix2pix: flags and translate
  ['pix2pix', 'non-numeric crop size', ['train', '--crop-size', 'big', '--out', at('o23')], /--crop-size: expected a positive integer, got 'big'/, 'o23'],
  ['pix2pix', 'unknown direction', ['train', '--direction', 'sideways', '--out', at('o24')], /Invalid values: Argument: direction, Given: "sideways"/, 'o24'],
  ['pix2pix', 'translate a missing input', ['translate', '--checkpoint', at('p2p-run'), '--input', at('nope.jpg'), '--output', at('o25.png')], /nope\.jpg.*(not found|no such)/i, 'o25.png'],
  ['pix2pix', 'translate a non-image file', ['translate', '--checkpoint', at('p2p-run'), '--input', at('photo.txt'), '--output', at('o26.png')], /photo\.txt: not a readable image/, 'o26.png'],
  ['pix2pix', 'checkpoint of another variant', ['translate', '--checkpoint', at('cgan-run'), '--input', at('good/train/0.png'), '--output', at('o27.png')], /a cgan checkpoint, expected pix2pix/, 'o27.png'],
  // CycleGAN
  ['cyclegan', 'unaligned dataset without trainB', ['train', '--data', at('onlyA'), '--out', at('o28')], /onlyA\/trainB: folder not found \(expected CycleGAN layout/, 'o28'],
  ['cyclegan', 'image size the generator cannot take', ['train', '--crop-size', '30', '--out', at('o29')], /--crop-size 30: the ResNet generator needs a multiple of 4/, 'o29'],
  ['cyclegan', 'unknown translate direction', ['translate', '--direction', 'sideways', '--input', at('good/train/0.png'), '--output', at('o30.png')], /Invalid values: Argument: direction, Given: "sideways"/, 'o30.png'],
  ['cyclegan', 'checkpoint of another variant', ['translate', '--checkpoint', at('p2p-run'), '--input', at('good/train/0.png'), '--output', at('o31.png')], /a pix2pix checkpoint, expected cyclegan/, 'o31.png'],
];

describe('bad input', () => {
  it('has at least 25 cases', async () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
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
