import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { workspaceRoot } from '@gantry/core';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureSceneDataset, sceneDatasetPath } from './default-data.js';
import { AlignedDataset } from './paired.js';

const tmp = mkdtempSync(join(tmpdir(), 'gantry-default-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('ensureSceneDataset', () => {
  it('names the folder after layout, size, count (and a non-zero seed) under <repo>/data by default', () => {
    expect(sceneDatasetPath({ layout: 'aligned', size: 128, count: 1000 })).toBe(
      join(workspaceRoot(), 'data', 'scenes-v3-aligned-128-1000'),
    );
    expect(sceneDatasetPath({ layout: 'unaligned', size: 64, count: 10, seed: 3, root: tmp })).toBe(
      join(tmp, 'scenes-v3-unaligned-64-10-seed3'),
    );
  });

  it('generates an aligned dataset once and reuses it', async () => {
    const lines: string[] = [];
    const dir = await ensureSceneDataset({
      layout: 'aligned',
      size: 32,
      count: 10,
      root: tmp,
      log: (l) => lines.push(l),
    });
    expect(dir).toBe(join(tmp, 'scenes-v3-aligned-32-10'));
    expect(readdirSync(dir).sort()).toEqual(['test', 'train', 'val']);
    expect(readdirSync(join(dir, 'train'))).toHaveLength(8);
    const mtime = statSync(join(dir, 'train', '0000.png')).mtimeMs;
    expect(lines.some((l) => l.includes('generating'))).toBe(true);
    lines.length = 0;
    expect(
      await ensureSceneDataset({ layout: 'aligned', size: 32, count: 10, root: tmp, log: (l) => lines.push(l) }),
    ).toBe(dir);
    expect(lines).toEqual([]);
    expect(statSync(join(dir, 'train', '0000.png')).mtimeMs).toBe(mtime);
    const ds = await AlignedDataset.open(dir, { direction: 'BtoA', cropSize: 32, loadSize: 32 });
    expect(ds.length).toBe(8);
  });

  it('generates an unaligned dataset', async () => {
    const dir = await ensureSceneDataset({ layout: 'unaligned', size: 32, count: 10, root: tmp, log: () => {} });
    expect(readdirSync(dir).sort()).toEqual(['testA', 'testB', 'trainA', 'trainB']);
    expect(readdirSync(join(dir, 'trainA'))).toHaveLength(9);
  });

  it('refuses a folder that is there but incomplete, and bad specs', async () => {
    const bad = join(tmp, 'scenes-v3-aligned-32-5');
    mkdirSync(bad);
    writeFileSync(join(bad, 'junk'), 'x');
    await expect(ensureSceneDataset({ layout: 'aligned', size: 32, count: 5, root: tmp })).rejects.toThrow(
      /not a complete aligned scene dataset/,
    );
    await expect(ensureSceneDataset({ layout: 'paired' as never, size: 32, count: 5, root: tmp })).rejects.toThrow(
      /layout/,
    );
    await expect(ensureSceneDataset({ layout: 'aligned', size: 8, count: 5, root: tmp })).rejects.toThrow(/size/);
  });
});
