import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { GantryError } from '../errors.js';
import { tilePlan } from '../nn/tiles.js';
import { type RawImage, readImage, writeRawImage } from '../runs/image.js';
import { chooseTile, outputNameFor, type TranslateFn, translateCommand, translatePaths } from './translate.js';

const dir = mkdtempSync(join(tmpdir(), 'gantry-translate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A "model" that darkens: y = (x - 1) / 2, so byte v becomes about v / 2. Records the input shapes it saw. */
const seen: number[][] = [];
const darken: TranslateFn = (x) => {
  seen.push(x.shape);
  return tf.tidy(() => tf.div(tf.sub(x, 1), 2) as tf.Tensor4D);
};
const quiet = { log: () => {} };

function pattern(w: number, h: number, c = 3): RawImage {
  const data = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < c; k++)
        data[(y * w + x) * c + k] = k === 3 ? (x < w / 2 ? 0 : 255) : 120 + ((x * 3 + y * 5 + k * 40) % 100);
  return { data, width: w, height: h, channels: c };
}
const mean = (v: Uint8Array) => v.reduce((s, x) => s + x, 0) / v.length;

describe('chooseTile', () => {
  const windows = (t: number, m: number) => {
    const p = tilePlan(1600, 2560, { tile: t, multiple: m });
    return p.ys.length * p.xs.length;
  };
  it('runs whole within the budget, else takes the smallest square that needs no more windows than the largest', async () => {
    const at = (maxMemory: number, multiple: number, tile: 'auto' | number = 'auto') =>
      chooseTile(2560, 1600, { tile, maxMemory, multiple, bytesPerPixel: async () => 800 });
    expect(await at(2560 * 1600 * 800, 4)).toBe(0);
    expect(await at(1000, 4, 512)).toBe(512); // a given side is kept
    for (const [budget, m] of [
      [2 ** 30, 4],
      [1.5 * 2 ** 30, 4],
      [0.3 * 2 ** 30, 4],
      [2 ** 30, 256],
    ] as const) {
      const largest = Math.floor(Math.sqrt(budget / 800) / m) * m;
      const side = await at(budget, m);
      expect(side % m, `budget ${budget}, multiple ${m}`).toBe(0);
      expect(side).toBeLessThanOrEqual(largest);
      expect(windows(side, m)).toBe(windows(largest, m));
      if (side - m >= 2 * m) expect(windows(side - m, m)).toBeGreaterThan(windows(side, m));
    }
    // The case that motivated it: 1.5 GiB at 800 bytes a pixel allows 1,416 px, whose 6 windows a 1,024-px side
    // also needs, with half the pixels.
    expect(await at(1.5 * 2 ** 30, 4)).toBeLessThan(1100);
  });
});

describe('translatePaths', () => {
  it('keeps the size of any aspect ratio and runs the model at its own size (--resolution model)', async () => {
    const src = join(dir, 'wide.png');
    await writeRawImage(pattern(37, 23), src);
    seen.length = 0;
    const s = await translatePaths(darken, {
      input: src,
      output: join(dir, 'wide-out.jpg'),
      modelSize: 16,
      resolution: 'model',
      ...quiet,
    });
    expect(s.failed).toEqual([]);
    expect(seen).toEqual([[1, 16, 16, 3]]);
    const out = await readImage(join(dir, 'wide-out.jpg'));
    expect([out.width, out.height]).toEqual([37, 23]);
    const inp = await readImage(src);
    expect(mean(out.data)).toBeLessThan(mean(inp.data) * 0.6);
    expect((await sharp(join(dir, 'wide-out.jpg')).metadata()).format).toBe('jpeg');
  });

  it('at native resolution runs the model on the padded photo and reports the structure kept', async () => {
    const src = join(dir, 'wide.png');
    seen.length = 0;
    const lines: string[] = [];
    const s = await translatePaths(darken, {
      input: src,
      output: join(dir, 'wide-native.png'),
      modelSize: 16,
      multiple: 8,
      log: (l) => lines.push(l),
    });
    expect(s.failed).toEqual([]);
    // 37×23 reflect-padded up to multiples of 8, in one pass.
    expect(seen).toEqual([[1, 24, 40, 3]]);
    const out = await readImage(join(dir, 'wide-native.png'));
    const inp = await readImage(src);
    expect([out.width, out.height]).toEqual([37, 23]);
    // Pixel for pixel: y = (x − 1) / 2 on [-1, 1] maps byte v to about v / 2.
    for (let i = 0; i < inp.data.length; i++) expect(Math.abs(out.data[i]! - inp.data[i]! / 2)).toBeLessThanOrEqual(1);
    // Darkening keeps every edge: structure 1.00.
    expect(s.reports[0]!.structure.correlation).toBeGreaterThan(0.99);
    expect(lines).toEqual([`${src} → ${join(dir, 'wide-native.png')} (structure 1.00)`]);
  });

  it('tiles a photo above the memory budget, and warns when a model destroys the structure', async () => {
    const src = join(dir, 'tiled.png');
    await writeRawImage(pattern(70, 50), src);
    seen.length = 0;
    const lines: string[] = [];
    const flat: TranslateFn = (x) => {
      seen.push(x.shape);
      return tf.zerosLike(x);
    };
    const s = await translatePaths(flat, {
      input: src,
      output: join(dir, 'tiled-out.png'),
      modelSize: 16,
      multiple: 4,
      maxMemory: 1000 * 32 * 32,
      bytesPerPixel: async () => 1000,
      log: (l) => lines.push(l),
    });
    expect(s.failed).toEqual([]);
    // Budget 32×32 pixels: windows of 32, overlapping by at least 8, over the 72×52 padded image.
    expect(seen.every((sh) => sh[1] === 32 && sh[2] === 32)).toBe(true);
    expect(s.reports[0]!.run.tiles).toBe(seen.length);
    expect(seen.length).toBe(6);
    expect(lines[0]).toContain('structure 0.00; 6 tiles of 32 px');
    expect(lines[1]).toMatch(/tiled\.png: warning: the output keeps little of the input's structure/);
    await expect(
      translatePaths(darken, {
        input: src,
        output: join(dir, 't.png'),
        modelSize: 8,
        tile: 16,
        tileOverlap: 16,
        ...quiet,
      }),
    ).rejects.toThrow(/--tile-overlap 16: must be smaller than --tile 16/);
    await expect(
      translatePaths(darken, { input: src, output: join(dir, 't.png'), modelSize: 8, tile: -3, ...quiet }),
    ).rejects.toThrow(/--tile: expected/);
  });

  it('honours EXIF orientation (the output is upright, with the displayed size)', async () => {
    const src = join(dir, 'rotated.jpg');
    const p = pattern(40, 20);
    await sharp(p.data, { raw: { width: 40, height: 20, channels: 3 } })
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toFile(src);
    const s = await translatePaths(darken, {
      input: src,
      output: join(dir, 'rotated-out.png'),
      modelSize: 8,
      ...quiet,
    });
    expect(s.failed).toEqual([]);
    const m = await sharp(join(dir, 'rotated-out.png')).metadata();
    expect([m.width, m.height]).toEqual([20, 40]);
  });

  it('writes grayscale for grayscale input, and keeps alpha', async () => {
    const gray = join(dir, 'gray.png');
    await sharp(pattern(30, 20, 1).data, { raw: { width: 30, height: 20, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(gray);
    expect((await sharp(gray).metadata()).channels).toBe(1);
    await translatePaths(darken, { input: gray, output: join(dir, 'gray-out.png'), modelSize: 8, ...quiet });
    const gm = await sharp(join(dir, 'gray-out.png')).metadata();
    expect(gm.channels).toBe(1);
    expect([gm.width, gm.height]).toEqual([30, 20]);

    const rgba = join(dir, 'alpha.png');
    await writeRawImage(pattern(24, 12, 4), rgba);
    await translatePaths(darken, { input: rgba, output: join(dir, 'alpha-out.webp'), modelSize: 8, ...quiet });
    const { data, info } = await sharp(join(dir, 'alpha-out.webp')).raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(4);
    expect(data[3]).toBeLessThan(10); // left half transparent
    expect(data[(24 - 1) * 4 + 3]).toBeGreaterThan(245); // right half opaque
  });

  it('reads WebP and writes into an existing folder under the input name', async () => {
    const src = join(dir, 'in.webp');
    const p = pattern(20, 20);
    await sharp(p.data, { raw: { width: 20, height: 20, channels: 3 } })
      .webp()
      .toFile(src);
    const outDir = join(dir, 'out-existing');
    mkdirSync(outDir);
    const s = await translatePaths(darken, { input: src, output: outDir, modelSize: 8, ...quiet });
    expect(s.written.map((w) => w[1])).toEqual([join(outDir, 'in.webp')]);
    expect((await sharp(join(outDir, 'in.webp')).metadata()).format).toBe('webp');
  });

  it('gives a one-line error naming a non-image, corrupt, empty or missing file', async () => {
    const txt = join(dir, 'notes.txt');
    writeFileSync(txt, 'hello, not an image');
    const corrupt = join(dir, 'corrupt.jpg');
    const good = await sharp(pattern(32, 32).data, { raw: { width: 32, height: 32, channels: 3 } })
      .jpeg()
      .toBuffer();
    writeFileSync(corrupt, good.subarray(0, good.length / 2));
    const empty = join(dir, 'empty.png');
    writeFileSync(empty, '');
    const garbage = join(dir, 'garbage.png');
    writeFileSync(garbage, Buffer.from('\x89PNG\r\n\x1a\n this is not really a png'));
    for (const f of [txt, corrupt, empty, garbage]) {
      const lines: string[] = [];
      const err = await translateCommand(darken, {
        input: f,
        output: join(dir, 'x.png'),
        modelSize: 8,
        log: (l) => lines.push(l),
      }).catch((e) => e);
      // A single input's failure is the command's own one-line usage error.
      expect(err).toBeInstanceOf(GantryError);
      expect((err as GantryError).exitCode).toBe(2);
      expect((err as Error).message).toContain(f);
      expect((err as Error).message).not.toContain('\n');
      expect(lines).toEqual([]);
    }
    expect(readdirSync(dir).filter((n) => n.startsWith('x.png'))).toEqual([]); // nothing written, no temp files
    await expect(
      translatePaths(darken, { input: join(dir, 'missing.png'), output: join(dir, 'y.png'), modelSize: 8, ...quiet }),
    ).rejects.toThrow(/missing\.png: no such file or folder/);
  });

  it('rejects a bad output extension, a file output for a folder, and overwriting the input', async () => {
    const src = join(dir, 'wide.png');
    await expect(
      translatePaths(darken, { input: src, output: join(dir, 'o.gif'), modelSize: 8, ...quiet }),
    ).rejects.toThrow(/unsupported output extension/);
    const inDir = join(dir, 'folder-a');
    mkdirSync(inDir, { recursive: true });
    await writeRawImage(pattern(10, 10), join(inDir, 'a.png'));
    await expect(translatePaths(darken, { input: inDir, output: src, modelSize: 8, ...quiet })).rejects.toThrow(
      /is a file, but --input is a folder/,
    );
    await expect(translatePaths(darken, { input: inDir, output: inDir, modelSize: 8, ...quiet })).rejects.toThrow(
      /input folder/,
    );
    await expect(translatePaths(darken, { input: src, output: src, modelSize: 8, ...quiet })).rejects.toThrow(
      /refusing to overwrite the input/,
    );
    const emptyDir = join(dir, 'empty-dir');
    mkdirSync(emptyDir);
    await expect(
      translatePaths(darken, { input: emptyDir, output: join(dir, 'e-out'), modelSize: 8, ...quiet }),
    ).rejects.toThrow(/no files to translate/);
  });

  it('in folder mode translates the good files, reports each failure and exits non-zero', async () => {
    const inDir = join(dir, 'mixed');
    mkdirSync(join(inDir, 'sub'), { recursive: true });
    await writeRawImage(pattern(50, 30), join(inDir, '1.png'));
    await writeRawImage(pattern(20, 40), join(inDir, '2.jpg'));
    await sharp(pattern(16, 16).data, { raw: { width: 16, height: 16, channels: 3 } })
      .tiff()
      .toFile(join(inDir, '3.tif'));
    writeFileSync(join(inDir, 'bad.png'), 'not a png');
    writeFileSync(join(inDir, 'readme.txt'), 'text');
    writeFileSync(join(inDir, '.DS_Store'), 'junk');
    const outDir = join(dir, 'mixed-out');
    const lines: string[] = [];
    const err = await translateCommand(darken, {
      input: inDir,
      output: outDir,
      modelSize: 8,
      log: (l) => lines.push(l),
    }).catch((e) => e);
    expect(err).toBeInstanceOf(GantryError);
    expect((err as GantryError).exitCode).toBe(2);
    expect((err as Error).message).toBe('2 of 5 files failed: bad.png, readme.txt');
    expect(readdirSync(outDir).sort()).toEqual(['1.png', '2.jpg', '3.png']);
    expect(lines.filter((l) => l.includes('bad.png'))).toHaveLength(1);
    const two = await sharp(join(outDir, '2.jpg')).metadata();
    expect([two.width, two.height]).toEqual([20, 40]);
  });

  it('reports a model that returns the wrong shape', async () => {
    await expect(
      translatePaths((x) => tf.slice(x, [0, 0, 0, 0], [1, 4, 4, 3]) as tf.Tensor4D, {
        input: join(dir, 'wide.png'),
        output: join(dir, 'shape.png'),
        modelSize: 8,
        ...quiet,
      }),
    ).rejects.toThrow(/returned shape \[1,4,4,3\]/);
  });

  it('names outputs after inputs, .png for formats it cannot write', () => {
    expect(outputNameFor('a.JPG')).toBe('a.JPG');
    expect(outputNameFor('a.tiff')).toBe('a.png');
    expect(outputNameFor('a.gif')).toBe('a.png');
  });

  it('skips a looping or dangling symlink in a folder with a named failure; the other files are translated', async () => {
    const inDir = join(dir, 'links');
    mkdirSync(inDir);
    await writeRawImage(pattern(12, 12), join(inDir, 'a.png'));
    symlinkSync('loop.png', join(inDir, 'loop.png'));
    symlinkSync('nowhere.png', join(inDir, 'dangling.png'));
    const outDir = join(dir, 'links-out');
    const lines: string[] = [];
    const err = await translateCommand(darken, {
      input: inDir,
      output: outDir,
      modelSize: 8,
      log: (l) => lines.push(l),
    }).catch((e) => e);
    expect((err as Error).message).toMatch(
      /^2 of 3 files failed: (loop\.png, dangling\.png|dangling\.png, loop\.png)$/,
    );
    expect(readdirSync(outDir)).toEqual(['a.png']);
    expect(lines).toContain(`${join(inDir, 'loop.png')}: cannot read (ELOOP: a symbolic link loop)`);
    expect(lines).toContain(`${join(inDir, 'dangling.png')}: cannot read (ENOENT: a link to nothing)`);
  });

  it('refuses inputs over the size limit from their header, before decoding (default and --max-megapixels)', async () => {
    // 16000×16000: an SVG costs a few bytes to write and tens of seconds and gigabytes to rasterise.
    const bomb = join(dir, 'bomb.svg');
    writeFileSync(
      bomb,
      '<svg xmlns="http://www.w3.org/2000/svg" width="16000" height="16000"><rect width="16000" height="16000" fill="#888"/></svg>',
    );
    const t0 = Date.now();
    await expect(
      translatePaths(darken, { input: bomb, output: join(dir, 'bomb.png'), modelSize: 8, ...quiet }),
    ).rejects.toThrow(/bomb\.svg: 16000×16000 is 256\.0 megapixels, over the limit of 50 \(--max-megapixels\)/);
    expect(Date.now() - t0).toBeLessThan(5000);
    const src = join(dir, 'wide.png'); // 37×23
    await expect(
      translatePaths(darken, {
        input: src,
        output: join(dir, 'mp.png'),
        modelSize: 8,
        maxMegapixels: 0.0005,
        ...quiet,
      }),
    ).rejects.toThrow(/wide\.png: 37×23 is 0\.0 megapixels, over the limit of 0\.0005/);
    await expect(
      translatePaths(darken, { input: src, output: join(dir, 'mp.png'), modelSize: 8, maxMegapixels: 0, ...quiet }),
    ).rejects.toThrow(/--max-megapixels: expected a positive number, got '0'/);
    expect(readdirSync(dir).filter((n) => n.startsWith('bomb.png') || n.startsWith('mp.png'))).toEqual([]);
  });

  it('fails at once for an output under /proc instead of hanging in mkdir (file and folder mode)', async () => {
    const t0 = Date.now();
    await expect(
      translatePaths(darken, {
        input: join(dir, 'wide.png'),
        output: '/proc/gantry-test/out.png',
        modelSize: 8,
        ...quiet,
      }),
    ).rejects.toThrow(/\/proc\/gantry-test\/out\.png: cannot write \(ENOENT/);
    const inDir = join(dir, 'folder-proc');
    mkdirSync(inDir);
    await writeRawImage(pattern(10, 10), join(inDir, 'a.png'));
    await expect(
      translatePaths(darken, { input: inDir, output: '/proc/gantry-test/out', modelSize: 8, ...quiet }),
    ).rejects.toThrow(/--output \/proc\/gantry-test\/out: cannot create folder \(ENOENT\)/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('leaves no tensors behind', async () => {
    const before = tf.memory().numTensors;
    await translatePaths(darken, {
      input: join(dir, 'wide.png'),
      output: join(dir, 'leak.png'),
      modelSize: 8,
      ...quiet,
    });
    await translatePaths(darken, {
      input: join(dir, 'wide.png'),
      output: join(dir, 'leak.png'),
      modelSize: 8,
      resolution: 'model',
      ...quiet,
    });
    await translatePaths(darken, {
      input: join(dir, 'wide.png'),
      output: join(dir, 'leak.png'),
      modelSize: 8,
      multiple: 4,
      tile: 16,
      ...quiet,
    });
    expect(tf.memory().numTensors).toBe(before);
    expect((await readFile(join(dir, 'leak.png'))).length).toBeGreaterThan(0);
  });
});

describe('animated inputs (issue #40)', () => {
  it('translates the first frame of an animated GIF and says so', async () => {
    const frame = (c: string) =>
      sharp({ create: { width: 8, height: 8, channels: 3, background: c } })
        .png()
        .toBuffer();
    const gif = await sharp([await frame('#f00'), await frame('#00f'), await frame('#0f0')], {
      join: { animated: true },
    })
      .gif()
      .toBuffer();
    const input = join(dir, 'anim.gif');
    writeFileSync(input, gif);
    const lines: string[] = [];
    await translateCommand(darken, { input, output: join(dir, 'anim.png'), modelSize: 8, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(
      /anim\.gif: warning: an animated image of 3 frames; only the first frame is translated/,
    );
    const out = await readImage(join(dir, 'anim.png'));
    expect([out.width, out.height]).toEqual([8, 8]);
  });
});
