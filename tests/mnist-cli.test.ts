/**
 * End to end through the built apps (`pnpm test` builds first): the MNIST apps' --help, a short cgan run,
 * generate's file contract, resume and export (bad input is in bad-input.test.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runApp } from './run-app.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-e2e-'));

const app = (name: string, args: string[]) =>
  runApp(name, args, { GANTRY_RUNS: path.join(tmp, 'runs'), INIT_CWD: tmp });

describe.each(['gan', 'dcgan', 'cgan'])('%s --help', (name) => {
  it('lists train, generate, evaluate and export', async () => {
    const r = await app(name, ['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['train', 'generate', 'evaluate', 'export']) expect(r.out).toContain(`${name} ${cmd}`);
  });
  it('documents the train flags with defaults', async () => {
    const r = await app(name, ['train', '--help']);
    expect(r.code).toBe(0);
    for (const flag of [
      '--epochs',
      '--batch-size',
      '--lr',
      '--loss',
      '--seed',
      '--out',
      '--resume',
      '--sample-every',
      '--latent-dim',
    ]) {
      expect(r.out).toContain(flag);
    }
  });
});

describe('cgan train → generate', () => {
  const run = path.join(tmp, 'cgan-run');
  it('trains, writes samples and checkpoints, and resumes the step count', async () => {
    const first = await app('cgan', [
      'train',
      '--steps',
      '3',
      '--batch-size',
      '16',
      '--limit',
      '512',
      '--ngf',
      '8',
      '--ndf',
      '8',
      '--out',
      run,
      '--progress',
      'false',
    ]);
    expect(first.code, first.err).toBe(0);
    expect(first.err).toMatch(/^backend: \w+/m);
    expect(fs.readdirSync(path.join(run, 'checkpoints'))).toEqual(['step-00000003']);
    const resumed = await app('cgan', [
      'train',
      '--steps',
      '6',
      '--resume',
      run,
      '--progress',
      'false',
      '--sample-every',
      '3',
    ]);
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.err).toContain('at step 3');
    expect(resumed.err).toContain('done at step 6');
    expect(fs.readdirSync(path.join(run, 'checkpoints'))).toContain('step-00000006');
    expect(fs.readdirSync(path.join(run, 'samples'))).toEqual(['final.png', 'step-00000006.png']);
  });

  it('writes N PNGs named <label>-NNNN.png and a grid, reproducibly', async () => {
    const out = path.join(tmp, 'samples7');
    const r = await app('cgan', [
      'generate',
      '--label',
      '7',
      '--count',
      '5',
      '--out',
      'samples7',
      '--checkpoint',
      run,
      '--seed',
      '3',
    ]);
    expect(r.code, r.err).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual([
      '7-0000.png',
      '7-0001.png',
      '7-0002.png',
      '7-0003.png',
      '7-0004.png',
      'grid.png',
    ]);
    const again = path.join(tmp, 'samples7b');
    await app('cgan', ['generate', '--label', '7', '--count', '5', '--out', again, '--checkpoint', run, '--seed', '3']);
    expect(fs.readFileSync(path.join(again, '7-0004.png'))).toEqual(fs.readFileSync(path.join(out, '7-0004.png')));
    const many = await app('cgan', [
      'generate',
      '--label',
      '0,3,9',
      '--count',
      '2',
      '--out',
      path.join(tmp, 'multi'),
      '--checkpoint',
      run,
    ]);
    expect(many.code, many.err).toBe(0);
    expect(fs.readdirSync(path.join(tmp, 'multi')).sort()).toEqual([
      '0-0000.png',
      '0-0001.png',
      '3-0000.png',
      '3-0001.png',
      '9-0000.png',
      '9-0001.png',
      'grid.png',
    ]);
  });

  it('exports the generator with metadata', async () => {
    const out = path.join(tmp, 'export');
    const r = await app('cgan', ['export', '--out', out, '--checkpoint', run]);
    expect(r.code, r.err).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['metadata.json', 'model.json', 'weights.bin']);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'metadata.json'), 'utf8'))).toMatchObject({
      variant: 'cgan',
      latentDim: 100,
      imageSize: 28,
    });
  });
});

// Runs from before a config key was added: neither run.json nor the checkpoint's config names it, and a resume
// must rebuild the networks the checkpoint holds.
const OLDER_RUNS = [
  {
    variant: 'dcgan',
    before: '--d-layers and --d-hidden',
    flags: ['--d-layers', '2', '--d-hidden', '0', '--ngf', '4', '--ndf', '4'],
    config: { dLayers: 2, dHidden: 0 },
  },
  { variant: 'gan', before: '--minibatch-stddev', flags: ['--minibatch-stddev', '0'], config: { minibatchStddev: 0 } },
];
for (const older of OLDER_RUNS) {
  describe(`${older.variant}: a run from before ${older.before}`, () => {
    it('resumes with the discriminator its checkpoint holds', async () => {
      const run = path.join(tmp, `${older.variant}-old`);
      const small = ['--batch-size', '8', '--limit', '64', '--progress', 'false'];
      const first = await app(older.variant, ['train', '--steps', '2', ...older.flags, ...small, '--out', run]);
      expect(first.code, first.err).toBe(0);
      const edit = (file: string, drop: (o: Record<string, Record<string, unknown>>) => void) => {
        const o = JSON.parse(fs.readFileSync(file, 'utf8'));
        drop(o);
        fs.writeFileSync(file, JSON.stringify(o));
      };
      for (const key of Object.keys(older.config)) {
        edit(path.join(run, 'run.json'), (o) => delete o.args![key]);
        edit(path.join(run, 'checkpoints', 'step-00000002', 'state.json'), (o) => delete o.config![key]);
      }
      const resumed = await app(older.variant, ['train', '--steps', '4', '--resume', run, '--progress', 'false']);
      expect(resumed.code, resumed.err).toBe(0);
      expect(resumed.err).toContain('at step 2');
      const state = JSON.parse(fs.readFileSync(path.join(run, 'checkpoints', 'step-00000004', 'state.json'), 'utf8'));
      expect(state.config).toMatchObject(older.config);
    });
  });
}
