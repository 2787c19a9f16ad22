import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import workspace packages from their TypeScript sources, so `pnpm test` needs no build first.
const src = (dir: string) => fileURLToPath(new URL(`./${dir}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      // Before '@gantry/core', which would otherwise match it as a prefix.
      '@gantry/core/browser': fileURLToPath(new URL('./packages/core/src/browser.ts', import.meta.url)),
      '@gantry/core': src('packages/core'),
      '@gantry/datasets': src('datasets'),
      '@gantry/gan': src('packages/gan'),
      '@gantry/dcgan': src('packages/dcgan'),
      '@gantry/cgan': src('packages/cgan'),
      '@gantry/pix2pix': src('packages/pix2pix'),
      '@gantry/cyclegan': src('packages/cyclegan'),
      '@gantry/mnist': src('packages/mnist'),
      '@gantry/sweep': src('packages/sweep'),
    },
  },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'apps/*/src/**/*.test.ts',
      'datasets/src/**/*.test.ts',
      'tests/**/*.test.ts',
    ],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // Two test processes share the 2 cores: one oneDNN thread each (the apps the tests start inherit it).
    // GANTRY_NATIVE_MIN_WORK: the kernel tests' small tensors still split across threads.
    env: { GANTRY_THREADS: '1', GANTRY_NATIVE_MIN_WORK: '16384' },
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
