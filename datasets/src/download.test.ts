import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { encodeImage, GantryError } from '@gantry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDatasetLayout, datasetKind, datasetUrl, downloadDataset, extractArchive } from './download.js';
import { noiseImage } from './testutil.js';

const tmp = mkdtempSync(join(tmpdir(), 'gantry-download-'));
const files = new Map<string, Buffer>();
let server: Server;
let base = '';

/** A minimal zip (deflated entries) for the tests. */
function makeZip(entries: { name: string; data: Buffer }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const comp = zlib.deflateRawSync(e.data);
    const name = Buffer.from(e.name);
    const crc = zlib.crc32(e.data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(8, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(comp.length, 18);
    lh.writeUInt32LE(e.data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(8, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(comp.length, 20);
    ch.writeUInt32LE(e.data.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, name, comp);
    centrals.push(ch, name);
    offset += 30 + name.length + comp.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

const png = async (seed: number, w = 16) => encodeImage(noiseImage(w, 8, seed), 'png');

beforeAll(async () => {
  // pix2pix-style tarball: facades/train/*.png, facades/val/*.png
  const src = join(tmp, 'src');
  for (const split of ['train', 'val']) {
    mkdirSync(join(src, 'facades', split), { recursive: true });
    for (let i = 0; i < 2; i++) writeFileSync(join(src, 'facades', split, `${i}.png`), await png(i));
  }
  execFileSync('tar', ['-czf', join(tmp, 'facades.tar.gz'), '-C', src, 'facades']);
  mkdirSync(join(src, 'wrong', 'images'), { recursive: true });
  writeFileSync(join(src, 'wrong', 'images', '0.png'), await png(0));
  execFileSync('tar', ['-czf', join(tmp, 'wrong.tar.gz'), '-C', src, 'wrong']);
  files.set('/facades.tar.gz', readFileSync(join(tmp, 'facades.tar.gz')));
  files.set('/wrong.tar.gz', readFileSync(join(tmp, 'wrong.tar.gz')));
  files.set(
    '/horse2zebra.zip',
    makeZip([
      { name: 'horse2zebra/trainA/h0.png', data: await png(1) },
      { name: 'horse2zebra/trainB/z0.png', data: await png(2) },
      { name: 'horse2zebra/testA/h1.png', data: await png(3) },
      { name: 'horse2zebra/testB/z1.png', data: await png(4) },
      { name: '../evil.png', data: Buffer.from('zip slip') },
      { name: '/abs.png', data: Buffer.from('absolute') },
    ]),
  );
  files.set('/truncated.tar.gz', files.get('/facades.tar.gz')!.subarray(0, 100));
  server = createServer((req, res) => {
    const body = files.get(req.url ?? '');
    if (!body) {
      res.writeHead(404, 'Not Found').end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
async function failure(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (x) => x,
  );
  expect(e).toBeInstanceOf(GantryError);
  expect(e.message).not.toContain('\n');
  return e.message;
}

describe('dataset names', () => {
  it('maps names to collections and URLs', () => {
    expect(datasetKind('night2day')).toBe('pix2pix');
    expect(datasetKind('horse2zebra')).toBe('cyclegan');
    expect(datasetKind('facades', 'cyclegan')).toBe('cyclegan');
    expect(datasetUrl('night2day', 'pix2pix')).toBe(
      'http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/night2day.tar.gz',
    );
    expect(datasetUrl('horse2zebra', 'cyclegan')).toBe(
      'http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip',
    );
    expect(() => datasetKind('cats2dogs')).toThrow(
      /unknown dataset 'cats2dogs' \(pix2pix: .*night2day.*cyclegan: .*horse2zebra/,
    );
  });
});

describe('downloadDataset offline', () => {
  it('says in one line that the host cannot be reached and where to put the file', async () => {
    const dir = join(tmp, 'offline');
    const offlineFetch = (async () => {
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('getaddrinfo ENOTFOUND efrosgans.eecs.berkeley.edu'), { code: 'ENOTFOUND' }),
      });
    }) as typeof fetch;
    const msg = await failure(downloadDataset('night2day', { dir, fetch: offlineFetch }));
    expect(msg).toBe(
      `cannot reach efrosgans.eecs.berkeley.edu: host not found (offline?) [ENOTFOUND]; download http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/night2day.tar.gz by hand into ${dir}/ and run this again`,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('reports a refused connection (real fetch, closed local port)', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r)); // nothing listens there now
    const msg = await failure(
      downloadDataset('facades', { dir: join(tmp, 'refused'), url: `http://127.0.0.1:${port}/facades.tar.gz` }),
    );
    expect(msg).toMatch(
      /^cannot reach 127\.0\.0\.1:\d+: connection refused \[ECONNREFUSED\]; download .* by hand into /,
    );
  });

  it('rejects unknown names and the unhosted CycleGAN cityscapes', async () => {
    expect(await failure(downloadDataset('nope', { dir: tmp }))).toMatch(/unknown dataset 'nope'/);
    expect(await failure(downloadDataset('cityscapes', { dir: tmp, kind: 'cyclegan' }))).toMatch(
      /not hosted for CycleGAN/,
    );
    expect(await failure(downloadDataset('../x', { dir: tmp }))).toMatch(/must be a plain name/);
    expect(await failure(downloadDataset('facades', { dir: tmp, sha256: 'abc' }))).toMatch(
      /--sha256 must be 64 hex digits/,
    );
  });
});

describe('downloadDataset from a local server', () => {
  it('downloads, verifies, extracts and checks a pix2pix tarball', async () => {
    const dir = join(tmp, 'ok');
    const progress: number[] = [];
    const r = await downloadDataset('facades', {
      dir,
      url: `${base}/facades.tar.gz`,
      sha256: sha(files.get('/facades.tar.gz')!),
      onProgress: (n) => progress.push(n),
    });
    expect(r).toMatchObject({ dir: join(dir, 'facades'), kind: 'pix2pix', existed: false });
    expect(readdirSync(join(dir, 'facades')).sort()).toEqual(['train', 'val']);
    expect(readdirSync(dir)).toEqual(['facades']); // archive and temp folders gone
    expect(progress.at(-1)).toBe(files.get('/facades.tar.gz')!.length);
    // Second call: already there.
    const again = await downloadDataset('facades', {
      dir,
      fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch,
    });
    expect(again.existed).toBe(true);
  });

  it('rejects a checksum mismatch and removes the download', async () => {
    const dir = join(tmp, 'badsha');
    const msg = await failure(
      downloadDataset('facades', { dir, url: `${base}/facades.tar.gz`, sha256: '0'.repeat(64) }),
    );
    expect(msg).toMatch(
      /facades\.tar\.gz: SHA-256 [0-9a-f]{64} does not match the expected 0{64} \(download removed; run this again\)/,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('reports HTTP errors, a wrong layout and a broken archive', async () => {
    expect(
      await failure(downloadDataset('facades', { dir: join(tmp, 'h404'), url: `${base}/missing.tar.gz` })),
    ).toMatch(/missing\.tar\.gz: HTTP 404 Not Found \(expected the dataset archive/);
    const dir = join(tmp, 'wrong');
    expect(await failure(downloadDataset('wrong', { dir, url: `${base}/wrong.tar.gz`, kind: 'pix2pix' }))).toMatch(
      /wrong\.tar\.gz \(extracted\): no train\/ folder \(expected a pix2pix dataset/,
    );
    expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(
      await failure(downloadDataset('facades', { dir: join(tmp, 'trunc'), url: `${base}/truncated.tar.gz` })),
    ).toMatch(/facades\.tar\.gz: not a valid tar archive/);
  });

  it('uses an archive downloaded by hand without touching the network', async () => {
    const dir = join(tmp, 'manual');
    mkdirSync(dir);
    writeFileSync(join(dir, 'facades.tar.gz'), files.get('/facades.tar.gz')!);
    const r = await downloadDataset('facades', {
      dir,
      keepArchive: true,
      fetch: (() => Promise.reject(new Error('no network'))) as typeof fetch,
    });
    expect(r.sha256).toBe(sha(files.get('/facades.tar.gz')!));
    expect(existsSync(join(dir, 'facades', 'train', '0.png'))).toBe(true);
    expect(existsSync(join(dir, 'facades.tar.gz'))).toBe(true);
  });

  it('extracts a CycleGAN zip, skipping entries that would escape', async () => {
    const dir = join(tmp, 'zip');
    const r = await downloadDataset('horse2zebra', { dir, url: `${base}/horse2zebra.zip` });
    expect(r.kind).toBe('cyclegan');
    expect(readdirSync(join(dir, 'horse2zebra')).sort()).toEqual(['testA', 'testB', 'trainA', 'trainB']);
    expect(existsSync(join(tmp, 'evil.png'))).toBe(false);
    expect(existsSync(join(dir, 'evil.png'))).toBe(false);
    await checkDatasetLayout(join(dir, 'horse2zebra'), 'cyclegan');
    expect(await failure(checkDatasetLayout(join(dir, 'horse2zebra'), 'pix2pix'))).toMatch(/no train\/ folder/);
    writeFileSync(join(tmp, 'bad.zip'), 'PK not a zip');
    mkdirSync(join(tmp, 'badzip'));
    expect(await failure(extractArchive(join(tmp, 'bad.zip'), join(tmp, 'badzip')))).toMatch(
      /bad\.zip: not a valid zip archive \(no end-of-central-directory record\)/,
    );
  });
});
