import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { GantryError } from '../errors.js';
import {
  atomicWriteAsync,
  bytesToTensor,
  cropImage,
  decodeFailure,
  encodePng,
  flipImage,
  imageGrid,
  imagesToTensor,
  imageToTensor,
  MAX_IMAGE_MEGAPIXELS,
  pixelLimit,
  type RawImage,
  readImage,
  readImageSize,
  resizeImage,
  saveImageGrid,
  tensorToImage,
  tensorToPng,
  writeImage,
} from './image.js';

const dir = mkdtempSync(join(tmpdir(), 'gantry-image-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A w x h RGB test pattern: red grows left->right, green top->bottom, blue constant. */
function pattern(w: number, h: number): RawImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      data[i] = Math.round((x / Math.max(1, w - 1)) * 255);
      data[i + 1] = Math.round((y / Math.max(1, h - 1)) * 255);
      data[i + 2] = 100;
    }
  return { data, width: w, height: h, channels: 3 };
}
const raw = (img: RawImage) => ({ raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 | 4 } });
const maxDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('readImage', () => {
  it('reads PNG exactly and JPEG/WebP approximately', async () => {
    const img = pattern(16, 8);
    await sharp(img.data, raw(img)).png().toFile(join(dir, 'p.png'));
    await sharp(img.data, raw(img)).jpeg({ quality: 95 }).toFile(join(dir, 'p.jpg'));
    await sharp(img.data, raw(img)).webp({ lossless: true }).toFile(join(dir, 'p.webp'));
    const png = await readImage(join(dir, 'p.png'));
    expect([png.width, png.height, png.channels]).toEqual([16, 8, 3]);
    expect(png.data).toEqual(img.data);
    expect(maxDiff((await readImage(join(dir, 'p.webp'))).data, img.data)).toBe(0);
    expect(maxDiff((await readImage(join(dir, 'p.jpg'))).data, img.data)).toBeLessThan(40);
  });

  it('converts grayscale to RGB and RGB to grayscale', async () => {
    const gray = new Uint8Array(4 * 4).map((_, i) => i * 16);
    await sharp(gray, { raw: { width: 4, height: 4, channels: 1 } })
      .png()
      .toFile(join(dir, 'g.png'));
    const rgb = await readImage(join(dir, 'g.png'));
    expect(rgb.channels).toBe(3);
    for (let i = 0; i < 16; i++)
      expect([rgb.data[3 * i], rgb.data[3 * i + 1], rgb.data[3 * i + 2]]).toEqual([gray[i], gray[i], gray[i]]);
    const g1 = await readImage(join(dir, 'g.png'), { channels: 1 });
    expect(g1.channels).toBe(1);
    expect(g1.data).toEqual(gray);
    const fromRgb = await readImage(join(dir, 'p.png'), { channels: 1 });
    expect(fromRgb.data.length).toBe(16 * 8);
  });

  it('flattens alpha onto white', async () => {
    const rgba = new Uint8Array([255, 0, 0, 255, 0, 0, 255, 0]); // opaque red, fully transparent blue
    await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } })
      .png()
      .toFile(join(dir, 'a.png'));
    const img = await readImage(join(dir, 'a.png'));
    expect(Array.from(img.data)).toEqual([255, 0, 0, 255, 255, 255]);
  });

  it('reads 16-bit PNG and CMYK JPEG as 8-bit sRGB', async () => {
    const img = pattern(8, 8);
    await sharp(img.data, raw(img)).toColourspace('rgb16').png().toFile(join(dir, 'd16.png'));
    expect((await sharp(join(dir, 'd16.png')).metadata()).depth).toBe('ushort');
    const r16 = await readImage(join(dir, 'd16.png'));
    expect(r16.channels).toBe(3);
    expect(maxDiff(r16.data, img.data)).toBeLessThanOrEqual(1);

    const four = new Uint8Array([255, 255, 255, 0, 0, 0, 220, 30, 30, 30, 30, 220]);
    await sharp(four, { raw: { width: 4, height: 1, channels: 3 } })
      .toColourspace('cmyk')
      .jpeg({ quality: 100, chromaSubsampling: '4:4:4' })
      .toFile(join(dir, 'cmyk.jpg'));
    expect((await sharp(join(dir, 'cmyk.jpg')).metadata()).space).toBe('cmyk');
    const c = await readImage(join(dir, 'cmyk.jpg'));
    expect(c.channels).toBe(3);
    expect(c.data.length).toBe(12);
    expect(maxDiff(c.data.subarray(0, 9), four.subarray(0, 9))).toBeLessThan(20); // white, black, red
    expect(c.data[11]).toBeGreaterThan(c.data[9]! + 80); // blue stays blue
  });

  it('honours EXIF orientation', async () => {
    // 4x2: left half red, right half blue; orientation 6 = rotate 90° clockwise for display.
    const data = new Uint8Array(4 * 2 * 3);
    for (let y = 0; y < 2; y++)
      for (let x = 0; x < 4; x++) data.set(x < 2 ? [255, 0, 0] : [0, 0, 255], (y * 4 + x) * 3);
    await sharp(data, { raw: { width: 4, height: 2, channels: 3 } })
      .png()
      .withMetadata({ orientation: 6 })
      .toFile(join(dir, 'exif.png'));
    const img = await readImage(join(dir, 'exif.png'));
    expect([img.width, img.height]).toEqual([2, 4]);
    expect(Array.from(img.data.subarray(0, 3))).toEqual([255, 0, 0]); // top = former left
    expect(Array.from(img.data.subarray(img.data.length - 3))).toEqual([0, 0, 255]);
    expect(await readImageSize(join(dir, 'exif.png'))).toEqual({ width: 2, height: 4 });
  });

  it('reports corrupt, empty, truncated, non-image and missing files as GantryError', async () => {
    const png = await readFile(join(dir, 'p.png'));
    const big = pattern(64, 64);
    const bigJpg = await sharp(big.data, raw(big)).jpeg().toBuffer();
    writeFileSync(join(dir, 'empty.png'), '');
    writeFileSync(join(dir, 'trunc.png'), png.subarray(0, Math.floor(png.length / 2)));
    writeFileSync(join(dir, 'trunc.jpg'), bigJpg.subarray(0, Math.floor(bigJpg.length / 2)));
    writeFileSync(join(dir, 'notes.png'), 'hello, I am text');
    writeFileSync(join(dir, 'garbage.jpg'), Buffer.from([0xff, 0xd8, 0xff, 1, 2, 3, 4, 5, 6, 7]));
    for (const f of ['empty.png', 'trunc.png', 'trunc.jpg', 'notes.png', 'garbage.jpg']) {
      const p = join(dir, f);
      const err = await readImage(p).catch((e) => e);
      expect(err, f).toBeInstanceOf(GantryError);
      expect(err.message).toContain(`${p}: not a readable image (`);
      expect(err.message).not.toContain('\n');
    }
    await expect(readImage(join(dir, 'missing.png'))).rejects.toThrow(/missing\.png: file not found/);
    await expect(readImageSize(join(dir, 'notes.png'))).rejects.toBeInstanceOf(GantryError);
  });

  it('says a half-written PNG is truncated (not "Unknown error")', async () => {
    // Noise does not compress: half the file is half the pixel rows.
    const noisy = await sharp({
      create: {
        width: 200,
        height: 200,
        channels: 3,
        background: '#000',
        noise: { type: 'gaussian', mean: 128, sigma: 40 },
      },
    })
      .png()
      .toBuffer();
    const p = join(dir, 'half.png');
    writeFileSync(p, noisy.subarray(0, noisy.length >> 1));
    await expect(readImage(p)).rejects.toThrow(/half\.png: not a readable image \(truncated or corrupt image data: /);
    expect(decodeFailure(new Error('Unknown error'))).toBe('truncated or corrupt image data: Unknown error');
  });

  it("applies one pixel limit to every decode, from the header, and moves sharp's own cap with it", async () => {
    // A 16000×16000 SVG (256 megapixels) is refused before it is rasterised: a training folder's bomb.
    const p = join(dir, 'bomb.svg');
    writeFileSync(
      p,
      '<svg xmlns="http://www.w3.org/2000/svg" width="16000" height="16000"><rect width="16000" height="16000"/></svg>',
    );
    const start = performance.now();
    await expect(readImage(p)).rejects.toThrow(
      new RegExp(`bomb\\.svg: 16000×16000 is 256\\.0 megapixels, over the limit of ${MAX_IMAGE_MEGAPIXELS}$`),
    );
    expect(performance.now() - start).toBeLessThan(2000);
    // The limit given wins both ways: below the default ...
    await expect(
      readImage(join(dir, 'p.png'), { maxMegapixels: 1e-4, limitHint: ' (--max-megapixels)' }),
    ).rejects.toThrow(/over the limit of 0\.0001 \(--max-megapixels\)$/);
    // ... and above sharp's default cap of 268 megapixels (0x3FFF × 0x3FFF), which it raises too.
    expect(pixelLimit(500)).toBe(500_000_000);
    expect(pixelLimit(500)).toBeGreaterThan(0x3fff * 0x3fff);
  });
});

describe('pixel helpers', () => {
  it('crops, flips and resizes', async () => {
    const img = pattern(10, 6);
    const c = cropImage(img, 2, 1, 4, 3);
    expect([c.width, c.height]).toEqual([4, 3]);
    expect(Array.from(c.data.subarray(0, 3))).toEqual(
      Array.from(img.data.subarray((1 * 10 + 2) * 3, (1 * 10 + 2) * 3 + 3)),
    );
    expect(() => cropImage(img, 8, 0, 4, 3)).toThrow(GantryError);
    const f = flipImage(img);
    expect(Array.from(f.data.subarray(0, 3))).toEqual(Array.from(img.data.subarray(27, 30)));
    expect(flipImage(f).data).toEqual(img.data);
    const r = await resizeImage(img, 20, 12);
    expect([r.width, r.height, r.channels, r.data.length]).toEqual([20, 12, 3, 720]);
    expect(await resizeImage(img, 10, 6)).toBe(img);
  });
});

describe('tensors', () => {
  it('maps bytes to [-1,1] and back without leaking tensors', async () => {
    const img = pattern(8, 4);
    const before = tf.memory().numTensors;
    const t = imageToTensor(img);
    expect(t.shape).toEqual([4, 8, 3]);
    expect(t.dtype).toBe('float32');
    const v = t.dataSync();
    expect(Math.min(...v)).toBeCloseTo(-1);
    expect(Math.max(...v)).toBeCloseTo(1);
    const back = await tensorToImage(t);
    expect(back.data).toEqual(img.data);
    const t4 = t.expandDims(0) as tf.Tensor4D;
    expect((await tensorToImage(t4)).data).toEqual(img.data);
    const png = await encodePng(t4);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    t.dispose();
    t4.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('clamps out-of-range values', async () => {
    const t = tf.tensor3d([-5, -1, 0, 1, 5, Number.NaN], [1, 2, 3]);
    expect(Array.from((await tensorToImage(t)).data)).toEqual([0, 0, 128, 255, 255, 0]);
    t.dispose();
    expect(() => bytesToTensor(new Uint8Array(5), [2, 2])).toThrow(GantryError);
    await expect(tensorToImage(tf.zeros([2, 2, 2, 3]) as tf.Tensor4D)).rejects.toThrow(GantryError);
  });

  it('stacks images', () => {
    const t = imagesToTensor([pattern(4, 4), pattern(4, 4)]);
    expect(t.shape).toEqual([2, 4, 4, 3]);
    t.dispose();
    expect(() => imagesToTensor([pattern(4, 4), pattern(4, 5)])).toThrow(GantryError);
  });
});

describe('writing', () => {
  it('writes PNG/JPEG/WebP round trips, resizing when asked, and leaves no temp files', async () => {
    const img = pattern(16, 16);
    const t = imageToTensor(img);
    await tensorToPng(t, join(dir, 'out', 't.png'));
    expect((await readImage(join(dir, 'out', 't.png'))).data).toEqual(img.data);
    await writeImage(t, join(dir, 'out', 't.jpg'));
    expect(maxDiff((await readImage(join(dir, 'out', 't.jpg'))).data, img.data)).toBeLessThan(40);
    await writeImage(t, join(dir, 'out', 't.webp'), { width: 32, height: 24 });
    const w = await readImage(join(dir, 'out', 't.webp'));
    expect([w.width, w.height]).toEqual([32, 24]);
    await expect(writeImage(t, join(dir, 'out', 't.bmp'))).rejects.toThrow(/unsupported output extension '\.bmp'/);
    t.dispose();
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['t.jpg', 't.png', 't.webp']);
  });

  it('writes grayscale tensors', async () => {
    const t = tf.linspace(-1, 1, 16).reshape([4, 4, 1]) as tf.Tensor3D;
    await writeImage(t, join(dir, 'gray.png'));
    const g = await readImage(join(dir, 'gray.png'), { channels: 1 });
    expect(g.data[0]).toBe(0);
    expect(g.data[15]).toBe(255);
    t.dispose();
  });

  it('tiles a grid', async () => {
    const imgs = tf.stack([imageToTensor(pattern(4, 4)), tf.ones([4, 4, 3]), tf.fill([4, 4, 3], -1)]) as tf.Tensor4D;
    const g = await imageGrid(imgs, { cols: 2, padding: 1, padValue: 7 });
    expect([g.width, g.height]).toEqual([2 * 4 + 3, 2 * 4 + 3]);
    expect(g.data[0]).toBe(7);
    expect(Array.from(g.data.subarray((1 * 11 + 6) * 3, (1 * 11 + 6) * 3 + 3))).toEqual([255, 255, 255]); // tile 2
    expect(g.data[(6 * 11 + 1) * 3]).toBe(0); // tile 3 (black)
    expect(g.data[(6 * 11 + 6) * 3]).toBe(7); // empty 4th slot stays padding
    await saveImageGrid(imgs, join(dir, 'grid.png'), { cols: 3 });
    const back = await readImage(join(dir, 'grid.png'));
    expect([back.width, back.height]).toEqual([3 * 4 + 8, 4 + 4]);
    tf.dispose(imgs);
  });

  it('atomicWriteAsync replaces files whole and creates folders', async () => {
    const p = join(dir, 'atomic', 'deep', 'f.txt');
    await atomicWriteAsync(p, 'one');
    await atomicWriteAsync(p, Buffer.from('two'));
    expect(await readFile(p, 'utf8')).toBe('two');
    expect(readdirSync(join(dir, 'atomic', 'deep'))).toEqual(['f.txt']);
    await expect(atomicWriteAsync(join(dir, 'p.png', 'x.txt'), 'x')).rejects.toBeInstanceOf(GantryError);
  });
});
