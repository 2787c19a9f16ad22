import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  GantryError,
  type ImportTarget,
  importTorchCommand,
  initBackend,
  loadModel,
  readCheckpointState,
  resnetGenerator,
  restoreCheckpoint,
  unetGenerator,
} from '@gantry/core';
import { torchImport as cycleganImport } from '@gantry/cyclegan';
import { torchImport as pix2pixImport } from '@gantry/pix2pix';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** What import-torch makes of the reference's generators in each variant (their definitions' `torch` hooks). */
const TARGETS: Record<'pix2pix' | 'cyclegan', ImportTarget> = {
  pix2pix: { variant: 'pix2pix', ...pix2pixImport },
  cyclegan: { variant: 'cyclegan', ...cycleganImport },
};
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../packages/core/src/torch/fixtures');
const fixture = (n: string) => path.join(FIXTURES, n);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-import-'));
beforeAll(() => initBackend({ backend: 'cpu', log: () => {} }));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const quiet = () => {};

async function refusal(
  args: Parameters<typeof importTorchCommand>[1],
  variant: 'pix2pix' | 'cyclegan' = 'cyclegan',
): Promise<string> {
  const before = tf.memory().numTensors;
  const err = await importTorchCommand(TARGETS[variant], args, quiet).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GantryError);
  expect((err as GantryError).exitCode).toBe(2);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  expect(fs.existsSync(args.out)).toBe(false);
  expect(fs.readdirSync(path.dirname(args.out)).filter((n) => n.includes('.tmp'))).toEqual([]);
  expect(tf.memory().numTensors).toBe(before);
  return msg;
}

describe('import-torch', () => {
  it('writes a pix2pix checkpoint that loads and computes what the imported network does', async () => {
    const out = path.join(tmp, 'p2p');
    const before = tf.memory().numTensors;
    await importTorchCommand(TARGETS.pix2pix, { from: fixture('unet_256_batch.pth'), out }, quiet);
    expect(tf.memory().numTensors).toBe(before);
    const state = readCheckpointState(out);
    expect(state.variant).toBe('pix2pix');
    expect(state.config).toMatchObject({
      netG: 'unet_256',
      ngf: 2,
      norm: 'batch',
      cropSize: 256,
      channels: 3,
      dropout: true,
    });
    const g = await loadModel(path.join(out, 'generator'));
    // Any multiple of 256: the generator runs fully convolutionally.
    const y = tf.tidy(() => g.predict(tf.zeros([1, 256, 512, 3])) as tf.Tensor);
    expect(y.shape).toEqual([1, 256, 512, 3]);
    y.dispose();
    g.dispose();
  });

  it("restores into networks built from the checkpoint's config, as the variants build them (for --init-from)", async () => {
    const p2p = path.join(tmp, 'p2p');
    const c = readCheckpointState(p2p).config as {
      ngf: number;
      norm: 'batch';
      dropout: boolean;
      cropSize: number;
      channels: number;
    };
    // packages/pix2pix/src/networks.ts buildGenerator with this config (unet_256: 8 downsamplings).
    const g = unetGenerator({
      size: c.cropSize,
      inChannels: c.channels,
      outChannels: c.channels,
      numDowns: 8,
      ngf: c.ngf,
      norm: c.norm,
      dropout: c.dropout,
      name: 'generator',
    });
    await restoreCheckpoint(p2p, {
      variant: 'pix2pix',
      nets: { generator: g },
      optimizers: {},
      config: c,
      mustMatch: ['ngf', 'norm', 'cropSize'],
    });
    const saved = await loadModel(path.join(p2p, 'generator'));
    const x = tf.randomUniform([1, 256, 256, 3], -1, 1, 'float32', 3);
    const [a, b] = [g.predict(x) as tf.Tensor, saved.predict(x) as tf.Tensor];
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBe(0);
    tf.dispose([x, a, b]);
    g.dispose();
    saved.dispose();
  });

  it('writes a cyclegan checkpoint with G_A and G_B', async () => {
    const out = path.join(tmp, 'cg');
    await importTorchCommand(
      TARGETS.cyclegan,
      { from: fixture('resnet_9blocks_instance.pth'), fromB: fixture('resnet_9blocks_instance.legacy.pth'), out },
      quiet,
    );
    expect(readCheckpointState(out).config).toMatchObject({
      generator: 'resnet',
      blocks: 9,
      ngf: 2,
      norm: 'instance',
      cropSize: 256,
    });
    expect(
      fs.existsSync(path.join(out, 'G_A', 'model.json')) && fs.existsSync(path.join(out, 'G_B', 'weights.bin')),
    ).toBe(true);
    // packages/cyclegan/src/networks.ts buildGenerator with this config.
    const c = readCheckpointState(out).config as {
      cropSize: number;
      channels: number;
      ngf: number;
      blocks: number;
      norm: 'instance';
    };
    const nets = Object.fromEntries(
      ['G_A', 'G_B'].map((name) => [
        name,
        resnetGenerator({
          size: c.cropSize,
          inChannels: c.channels,
          outChannels: c.channels,
          ngf: c.ngf,
          blocks: c.blocks,
          norm: c.norm,
          name,
        }),
      ]),
    );
    await restoreCheckpoint(out, {
      variant: 'cyclegan',
      nets,
      optimizers: {},
      config: c,
      mustMatch: ['ngf', 'blocks'],
    });
    for (const m of Object.values(nets)) m.dispose();
  });

  const bad: [string, string, RegExp][] = [
    ['not a state dict', 'bad_not_dict.pth', /bad_not_dict\.pth: not a state dict/],
    ['a whole pickled module (code)', 'bad_whole_module.pth', /refers to __main__\.ResnetGenerator/],
    [
      'missing and unexpected keys',
      'bad_keys.pth',
      /does not fit resnet_6blocks .*: missing keys model\.4\.weight; unexpected keys model\.99\.weight$/,
    ],
    [
      'a shape mismatch',
      'bad_shape.pth',
      /model\.4\.weight: shape \[3, 1, 3, 3\] in the file, \[2, 1, 3, 3\] expected by resnet_6blocks/,
    ],
    ['an unknown architecture', 'bad_unknown_arch.pth', /unknown architecture: keys such as conv\.weight/],
    ['NaN weights', 'bad_nan.pth', /model\.1\.weight: contains NaN/],
  ];
  for (const [what, file, re] of bad) {
    it(`refuses ${what} in one line, exit code 2, nothing written`, async () => {
      expect(await refusal({ from: fixture(file), out: path.join(tmp, `bad-${file}`) })).toMatch(re);
    });
  }

  it('refuses truncated files of both formats, a non-PyTorch file and a missing file', async () => {
    const zip = fs.readFileSync(fixture('unet_256_batch.pth'));
    const legacy = fs.readFileSync(fixture('unet_256_batch.legacy.pth'));
    const cases: [Buffer, RegExp][] = [
      [zip.subarray(0, 5000), /not a readable zip archive/],
      [zip.subarray(0, zip.length - 30), /not a readable zip archive/],
      [legacy.subarray(0, 100_000), /storage \S+ is truncated/],
      [legacy.subarray(0, 40), /corrupt pickle/],
      [Buffer.from('hello, not a model'), /not a PyTorch file/],
    ];
    for (const [i, [bytes, re]] of cases.entries()) {
      const f = path.join(tmp, `trunc-${i}.pth`);
      fs.writeFileSync(f, bytes);
      expect(await refusal({ from: f, out: path.join(tmp, `out-trunc-${i}`) })).toMatch(re);
    }
    expect(await refusal({ from: path.join(tmp, 'nope.pth'), out: path.join(tmp, 'out-nope') })).toMatch(
      /nope\.pth: no such file/,
    );
  });

  it('refuses a ResNet for pix2pix, a flag no file fits, and an existing --out', async () => {
    expect(await refusal({ from: fixture('ok_resnet6.pth'), out: path.join(tmp, 'p-res') }, 'pix2pix')).toMatch(
      /pix2pix runs U-Nets/,
    );
    expect(await refusal({ from: fixture('ok_resnet6.pth'), out: path.join(tmp, 'p-flag'), netG: 'unet_256' })).toMatch(
      /does not fit unet_256/,
    );
    const existing = path.join(tmp, 'exists');
    fs.mkdirSync(existing);
    fs.writeFileSync(path.join(existing, 'keep'), 'x');
    await expect(
      importTorchCommand(TARGETS.cyclegan, { from: fixture('ok_resnet6.pth'), out: existing }, quiet),
    ).rejects.toThrow(/already exists/);
    expect(fs.readdirSync(existing)).toEqual(['keep']);
  });
});
