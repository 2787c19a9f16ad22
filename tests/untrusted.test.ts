/**
 * Issue #40 at the command line: interrupts, two commands on one folder, exports into used folders, and
 * fine-tuning what import-torch writes. Model files are made here or taken from the torch fixtures.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownStorages, torchZip, unetShapes } from '../packages/core/src/torch/pickle-writer.js';
import { repoRoot, runApp } from './run-app.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-untrusted-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const at = (...p: string[]) => path.join(tmp, ...p);
const env = { GANTRY_RUNS: at('runs'), INIT_CWD: tmp };
const app = (name: string, args: string[]) => runApp(name, args, env);
const fixture = (f: string) => path.join(repoRoot, 'packages/core/src/torch/fixtures', f);
/** stderr without the backend line every command prints. */
const errLines = (err: string) =>
  err
    .trim()
    .split('\n')
    .filter((l) => !l.startsWith('backend:'))
    .join('\n');
const leftovers = () => fs.readdirSync(tmp).filter((n) => n.includes('.tmp-'));

const png = (file: string, width: number, height: number, colour: string) =>
  sharp({ create: { width, height, channels: 3, background: colour } })
    .png()
    .toFile(file);

beforeAll(async () => {
  // unet_256 at ngf 8 (3.4 million zero weights, 14 MB): an import that takes long enough to be interrupted.
  fs.writeFileSync(at('unet256-ngf8.pth'), torchZip(ownStorages(unetShapes(8, 8))));
  fs.mkdirSync(at('pairs', 'train'), { recursive: true });
  await png(at('pairs', 'train', '0.png'), 512, 256, '#468');
  for (const d of ['trainA', 'trainB']) {
    fs.mkdirSync(at('unpaired', d), { recursive: true });
    await png(at('unpaired', d, '0.png'), 256, 256, d === 'trainA' ? '#abc' : '#321');
  }
});

/** Starts an app command, sends `signal` once `ready` holds, and resolves with its exit. */
function interruptWhen(name: string, args: string[], ready: () => boolean, signal: NodeJS.Signals) {
  const child = spawn(process.execPath, [path.join(repoRoot, 'apps', name, 'dist', 'cli.js'), ...args], {
    env: { ...process.env, ...env },
  });
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const timer = setInterval(() => {
    if (ready()) {
      clearInterval(timer);
      child.kill(signal);
    }
  }, 5);
  return new Promise<{ code: number | null; err: string }>((resolve) =>
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({ code, err });
    }),
  );
}

describe('interrupts', () => {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal} during import-torch exits ${code} and writes nothing`, async () => {
      const out = at(`int-${signal}`);
      const r = await interruptWhen(
        'pix2pix',
        ['import-torch', '--from', at('unet256-ngf8.pth'), '--out', out],
        () => fs.existsSync(path.join(out, '.gantry.lock')),
        signal,
      );
      expect(r.code, r.err).toBe(code);
      expect(errLines(r.err)).toBe(`pix2pix: error: import-torch interrupted (${signal}): nothing was written`);
      expect(fs.existsSync(out)).toBe(false);
      expect(leftovers()).toEqual([]);
    });
  }
});

describe('one owner per output folder', () => {
  it('two import-torch runs into one --out at once: one succeeds, the other is refused', async () => {
    for (let i = 0; i < 2; i++) {
      const out = at(`race-${i}`);
      const runs = await Promise.all(
        [0, 1].map(() => app('cyclegan', ['import-torch', '--from', at('unet256-ngf8.pth'), '--out', out])),
      );
      const codes = runs.map((r) => r.code).sort();
      expect(codes, runs.map((r) => r.err).join('\n')).toEqual([0, 2]);
      const refused = runs.find((r) => r.code === 2)!;
      expect(refused.err).toMatch(/in use by another import-torch \(pid \d+\)|already exists and is not empty/);
      expect(fs.readdirSync(out).sort()).toEqual(['G_A', 'state.json']);
    }
    expect(leftovers()).toEqual([]);
  });

  it('export refuses a non-empty --out; --force replaces its content instead of mixing it', async () => {
    const p2p = at('imp-p2p');
    const cg = at('imp-cg');
    expect((await app('pix2pix', ['import-torch', '--from', fixture('unet_256_batch.pth'), '--out', p2p])).code).toBe(
      0,
    );
    expect((await app('cyclegan', ['import-torch', '--from', fixture('ok_resnet6.pth'), '--out', cg])).code).toBe(0);
    const web = at('web');
    expect((await app('pix2pix', ['export', '--checkpoint', p2p, '--out', web])).code).toBe(0);
    expect(fs.readdirSync(web).sort()).toEqual(['metadata.json', 'model.json', 'weights.bin']);
    const r = await app('cyclegan', ['export', '--checkpoint', cg, '--out', web]);
    expect(r.code).toBe(2);
    expect(errLines(r.err)).toMatch(
      /^cyclegan: error: --out .*web: already exists and is not empty \(pass --force to replace it\)$/,
    );
    const f = await app('cyclegan', ['export', '--checkpoint', cg, '--out', web, '--force']);
    expect(f.code, f.err).toBe(0);
    // A one-generator cyclegan import exports model.json at the top; no file of the pix2pix export is left.
    const meta = JSON.parse(fs.readFileSync(path.join(web, 'metadata.json'), 'utf8')) as { variant: string };
    expect(meta.variant).toBe('cyclegan');
    expect(fs.readdirSync(web).sort()).toEqual(['metadata.json', 'model.json', 'weights.bin']);
    expect(leftovers()).toEqual([]);
  });
});

describe('--init-from takes what import-torch writes, with the default preset', () => {
  it('pix2pix: an imported unet_256 fine-tunes at 256 (sizes from the model, printed)', async () => {
    const src = at('imp-p2p');
    if (!fs.existsSync(src))
      await app('pix2pix', ['import-torch', '--from', fixture('unet_256_batch.pth'), '--out', src]);
    const r = await app('pix2pix', [
      'train',
      '--init-from',
      src,
      '--data',
      at('pairs'),
      '--steps',
      '1',
      '--progress',
      'false',
      '--out',
      at('ft-p2p'),
    ]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(
      /init-from .*imp-p2p: --crop-size 256 \(from the model\), --load-size 286 \(from the model\)/,
    );
    expect(r.err).toMatch(/init-from .*generator loaded; discriminator fresh/);
  });

  it("a source's size out of bounds is refused as the source's, not as a flag the user never typed", async () => {
    const src = at('imp-p2p');
    if (!fs.existsSync(src))
      await app('pix2pix', ['import-torch', '--from', fixture('unet_256_batch.pth'), '--out', src]);
    const tam = at('tampered');
    fs.cpSync(src, tam, { recursive: true });
    const state = JSON.parse(fs.readFileSync(path.join(tam, 'state.json'), 'utf8'));
    state.config.cropSize = 2 ** 30;
    state.config.loadSize = 2 ** 30;
    fs.writeFileSync(path.join(tam, 'state.json'), JSON.stringify(state));
    const r = await app('pix2pix', [
      'train',
      '--init-from',
      tam,
      '--data',
      at('pairs'),
      '--steps',
      '1',
      '--out',
      at('ft-tam'),
    ]);
    expect(r.code).toBe(2);
    expect(errLines(r.err)).toMatch(
      /^pix2pix: error: --init-from .*tampered: its (loadSize|cropSize) 1073741824 is refused as --(load|crop)-size would be \(expected a positive integer up to 4096 \(memory\)/,
    );
    expect(fs.existsSync(at('ft-tam'))).toBe(false);
  });

  it('cyclegan: an imported U-Net fine-tunes (it is not "an older layer structure")', async () => {
    const src = at('imp-cg-unet');
    expect((await app('cyclegan', ['import-torch', '--from', fixture('unet_256_batch.pth'), '--out', src])).code).toBe(
      0,
    );
    const r = await app('cyclegan', [
      'train',
      '--init-from',
      src,
      '--data',
      at('unpaired'),
      '--steps',
      '1',
      '--progress',
      'false',
      '--out',
      at('ft-cg'),
    ]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/--crop-size 256 \(from the model\)/);
    expect(r.err).toMatch(/init-from .*G_A loaded/);
  });
});
