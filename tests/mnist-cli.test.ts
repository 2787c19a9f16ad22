/**
 * End to end through the built apps (`pnpm test` builds first): the MNIST apps' --help, a short cgan run,
 * generate's file contract, resume, and the one-line errors with nothing written.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-e2e-'));

function app(name: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(root, 'apps', name, 'dist', 'cli.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, GANTRY_RUNS: path.join(tmp, 'runs'), INIT_CWD: tmp, ...env },
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe.each(['gan', 'dcgan', 'cgan'])('%s --help', (name) => {
  it('lists train, generate, evaluate and export', () => {
    const r = app(name, ['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['train', 'generate', 'evaluate', 'export']) expect(r.out).toContain(`${name} ${cmd}`);
  });
  it('documents the train flags with defaults', () => {
    const r = app(name, ['train', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--epochs', '--batch-size', '--lr', '--loss', '--seed', '--out', '--resume', '--sample-every', '--latent-dim']) {
      expect(r.out).toContain(flag);
    }
  });
});

describe('cgan train → generate', () => {
  const run = path.join(tmp, 'cgan-run');
  const train = (extra: string[] = []) =>
    app('cgan', ['train', '--steps', '6', '--batch-size', '16', '--limit', '512', '--ngf', '8', '--ndf', '8', '--out', run, '--sample-every', '3', '--checkpoint-every', '3', '--progress', 'false', ...extra]);

  it('trains, writes samples and checkpoints, and resumes the step count', () => {
    const first = app('cgan', ['train', '--steps', '3', '--batch-size', '16', '--limit', '512', '--ngf', '8', '--ndf', '8', '--out', run, '--progress', 'false']);
    expect(first.code, first.err).toBe(0);
    expect(first.err).toMatch(/^backend: \w+/m);
    expect(fs.readdirSync(path.join(run, 'checkpoints'))).toEqual(['step-00000003']);
    const resumed = app('cgan', ['train', '--steps', '6', '--resume', run, '--progress', 'false', '--sample-every', '3']);
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.err).toContain('at step 3');
    expect(resumed.err).toContain('done at step 6');
    expect(fs.readdirSync(path.join(run, 'checkpoints'))).toContain('step-00000006');
    expect(fs.readdirSync(path.join(run, 'samples'))).toEqual(['final.png', 'step-00000006.png']);
  });

  it('writes N PNGs named <label>-NNNN.png and a grid, reproducibly', () => {
    const out = path.join(tmp, 'samples7');
    const r = app('cgan', ['generate', '--label', '7', '--count', '5', '--out', 'samples7', '--checkpoint', run, '--seed', '3']);
    expect(r.code, r.err).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['7-0000.png', '7-0001.png', '7-0002.png', '7-0003.png', '7-0004.png', 'grid.png']);
    const again = path.join(tmp, 'samples7b');
    app('cgan', ['generate', '--label', '7', '--count', '5', '--out', again, '--checkpoint', run, '--seed', '3']);
    expect(fs.readFileSync(path.join(again, '7-0004.png'))).toEqual(fs.readFileSync(path.join(out, '7-0004.png')));
    const many = app('cgan', ['generate', '--label', '0,3,9', '--count', '2', '--out', path.join(tmp, 'multi'), '--checkpoint', run]);
    expect(many.code, many.err).toBe(0);
    expect(fs.readdirSync(path.join(tmp, 'multi')).sort()).toEqual(['0-0000.png', '0-0001.png', '3-0000.png', '3-0001.png', '9-0000.png', '9-0001.png', 'grid.png']);
  });

  it('exports the generator with metadata', () => {
    const out = path.join(tmp, 'export');
    const r = app('cgan', ['export', '--out', out, '--checkpoint', run]);
    expect(r.code, r.err).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['metadata.json', 'model.json', 'weights.bin']);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'metadata.json'), 'utf8'))).toMatchObject({ variant: 'cgan', latentDim: 100, imageSize: 28 });
  });

  // Each bad input: exit code 2, one line naming the flag or file, nothing written.
  const cases: [string, string[], RegExp][] = [
    ['label out of range', ['generate', '--label', '12'], /--label: '12' is not a class/],
    ['label not a number', ['generate', '--label', 'x'], /--label: 'x' is not a class/],
    ['missing checkpoint', ['generate', '--checkpoint', 'nope'], /--checkpoint nope: no such run or checkpoint/],
    ['negative count', ['generate', '--count', '-1'], /--count: expected a positive integer, got '-1'/],
    ['non-numeric batch size', ['train', '--batch-size', 'abc'], /--batch-size: expected a positive integer/],
    ['unknown flag', ['train', '--bogus'], /Unknown argument: bogus/],
    ['unknown loss', ['train', '--loss', 'nope'], /Invalid values:.*loss/],
    ['unknown backend', ['train', '--backend', 'tpu', '--steps', '1'], /--backend.*tpu/],
    ['batch larger than the dataset', ['train', '--limit', '10', '--batch-size', '64'], /--batch-size 64: larger than the dataset \(10 digits\)/],
    ['missing IDX files', ['train', '--data', 'no-such-dir'], /no-such-dir.*(not found|missing|no such)/i],
  ];
  it.each(cases)('%s: one-line error, exit 2, nothing written', (_, args, message) => {
    const out = path.join(tmp, `bad-${args.join('_').replace(/\W/g, '')}`);
    const r = app('cgan', [...args, ...(args[0] === 'generate' ? ['--out', out] : ['--out', out]), ...(args.includes('--checkpoint') || args[0] !== 'generate' ? [] : ['--checkpoint', run])]);
    expect(r.code).toBe(2);
    const lines = r.err.trim().split('\n').filter((l) => !l.startsWith('backend:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses a checkpoint of another variant', () => {
    const r = app('dcgan', ['generate', '--checkpoint', run, '--out', path.join(tmp, 'x')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/a cgan checkpoint, expected dcgan/);
  });

  it('gives an unwritable --out a one-line error', () => {
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, 'x');
    const r = app('cgan', ['generate', '--out', file, '--checkpoint', run]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--out .*a-file: is a file, expected a directory/);
  });
});
