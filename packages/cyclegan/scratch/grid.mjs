import * as core from '@gantry/core';
import * as fs from 'node:fs';
const [out, scale, ...files] = process.argv.slice(2);
await core.initBackend({ backend: 'cpu', log: () => {} });
const imgs = await Promise.all(files.map(async (f) => { const im = await core.readImage(f); return core.resizeImage(im, im.width * Number(scale), im.height * Number(scale)); }));
const t = core.imagesToTensor(imgs);
await core.saveImageGrid(t, out, { cols: Math.min(4, files.length) });
