import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GantryError, importTorchFromArgs, readCheckpointState } from '@gantry/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadTorchModel, publishedTorchModels, torchModelUrl } from './torch-models.js';

const fixture = fileURLToPath(new URL('../../packages/core/src/torch/fixtures/ok_resnet6.pth', import.meta.url));
const body = readFileSync(fixture);
const tmp = mkdtempSync(join(tmpdir(), 'gantry-torch-models-'));
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/cut.pth') {
      // Announces the whole file, sends half and ends the connection.
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1));
      res.destroy();
      return;
    }
    if (req.url !== '/horse2zebra.pth') {
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

async function failure(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GantryError);
  return (e as Error).message;
}

describe('published PyTorch generators', () => {
  it('knows the reference addresses', () => {
    expect(torchModelUrl('day2night', 'pix2pix')).toBe(
      'http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/day2night.pth',
    );
    expect(torchModelUrl('horse2zebra', 'cyclegan')).toBe(
      'http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth',
    );
    expect(() => torchModelUrl('day2night', 'cyclegan')).toThrow(/not a published cyclegan generator/);
  });

  it('downloads from a local server, checks the SHA-256, then reuses the file', async () => {
    const dir = join(tmp, 'ok');
    const sha = createHash('sha256').update(body).digest('hex');
    const got = await downloadTorchModel('horse2zebra', 'cyclegan', {
      dir,
      url: `${base}/horse2zebra.pth`,
      sha256: sha,
    });
    expect(got).toEqual({ file: join(dir, 'horse2zebra.pth'), downloaded: true, sha256: sha });
    expect(readFileSync(got.file).equals(body)).toBe(true);
    const again = await downloadTorchModel('horse2zebra', 'cyclegan', { dir, url: `${base}/nothing-there.pth` });
    expect(again.downloaded).toBe(false);
    expect(await failure(downloadTorchModel('horse2zebra', 'cyclegan', { dir, sha256: '0'.repeat(64) }))).toMatch(
      /SHA-256 [0-9a-f]{64}, expected 0{64}/,
    );
  });

  it('says clearly when offline, on HTTP errors and cut-off downloads, leaving no partial file', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const dir = join(tmp, 'bad');
    expect(
      await failure(
        downloadTorchModel('horse2zebra', 'cyclegan', { dir, url: `http://127.0.0.1:${port}/horse2zebra.pth` }),
      ),
    ).toMatch(
      /^cannot reach 127\.0\.0\.1:\d+: connection refused \[ECONNREFUSED\]; download .*horse2zebra\.pth by hand into .*bad\/ and run this again$/,
    );
    expect(
      await failure(downloadTorchModel('zebra2horse', 'cyclegan', { dir, url: `${base}/zebra2horse.pth` })),
    ).toMatch(/HTTP 404/);
    expect(await failure(downloadTorchModel('monet2photo', 'cyclegan', { dir, url: `${base}/cut.pth` }))).toMatch(
      /cut off|cannot download|cannot reach/,
    );
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });

  it('import-torch --model downloads and imports in one command', async () => {
    const out = join(tmp, 'imported');
    // The published address is out of reach here: fetch the file from the local server into the models folder
    // first (as a download by hand would), then --model finds it there and imports.
    await downloadTorchModel('horse2zebra', 'cyclegan', { dir: join(tmp, 'models'), url: `${base}/horse2zebra.pth` });
    // A variant whose config is the imported architecture itself, with the published cyclegan generators.
    const target = {
      variant: 'cyclegan',
      nets: { AtoB: 'G_A', BtoA: 'G_B' },
      config: (arch: object) => ({ ...arch }),
      published: publishedTorchModels('cyclegan'),
    };
    await importTorchFromArgs(target, { model: 'horse2zebra', modelsDir: join(tmp, 'models'), out });
    expect(readCheckpointState(out).config).toMatchObject({ kind: 'resnet', blocks: 6, ngf: 1 });
    expect(
      await failure(importTorchFromArgs(target, { model: 'horse2zebra', from: fixture, out: join(tmp, 'x') })),
    ).toMatch(/give one of them/);
  });
});
