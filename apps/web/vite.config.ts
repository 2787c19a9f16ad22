import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
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

export default defineConfig({
  root: path.join(here, 'src'),
  publicDir,
  // Relative asset URLs: the built folder works from any static server and any sub-path.
  base: './',
  resolve: {
    alias: { '@gantry/layers': path.join(here, '../../packages/core/src/nn/layers-browser.ts') },
    // One TF.js instance: the custom layers must register with the same tf.serialization the page loads with.
    dedupe: ['@tensorflow/tfjs'],
  },
  build: {
    outDir: path.join(here, 'dist'),
    emptyOutDir: true,
    chunkSizeWarningLimit: 4000,
    reportCompressedSize: false,
  },
  plugins: [modelIndex()],
});
