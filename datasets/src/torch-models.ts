/**
 * The generators the reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix) publishes, by the names of
 * its scripts/download_pix2pix_model.sh and download_cyclegan_model.sh, and their download to a local file that
 * `import-torch --model NAME` then imports. A file already at the target path (downloaded by hand) is used as is.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GantryError, type PublishedModels, userPath, workspaceRoot } from '@gantry/core';
import { DATASET_HOST, downloadToFile } from './download.js';

/** http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/<name>.pth (U-Net 256, batch norm). */
export const PIX2PIX_MODELS = ['edges2shoes', 'sat2map', 'map2sat', 'facades_label2photo', 'day2night'] as const;
/** http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/<name>.pth (ResNet 9 blocks, instance norm). */
export const CYCLEGAN_MODELS = [
  'apple2orange',
  'orange2apple',
  'summer2winter_yosemite',
  'winter2summer_yosemite',
  'horse2zebra',
  'zebra2horse',
  'monet2photo',
  'style_monet',
  'style_cezanne',
  'style_ukiyoe',
  'style_vangogh',
  'sat2map',
  'map2sat',
  'cityscapes_photo2label',
  'cityscapes_label2photo',
  'facades_photo2label',
  'facades_label2photo',
  'iphone2dslr_flower',
] as const;

/**
 * Known SHA-256 digests of the published files, keyed `<variant>/<name>`. Empty: none could be fetched while
 * writing this (no network here); pass `sha256` to verify and add entries once confirmed.
 */
export const KNOWN_MODEL_SHA256: Readonly<Record<string, string>> = {};

export type ModelVariant = 'pix2pix' | 'cyclegan';

export function torchModelUrl(name: string, variant: ModelVariant): string {
  const known: readonly string[] = variant === 'pix2pix' ? PIX2PIX_MODELS : CYCLEGAN_MODELS;
  if (!known.includes(name))
    throw new GantryError(
      `--model ${name}: not a published ${variant} generator (expected one of ${known.join(', ')})`,
    );
  return variant === 'pix2pix'
    ? `${DATASET_HOST}/pix2pix/models-pytorch/${name}.pth`
    : `${DATASET_HOST}/cyclegan/pretrained_models/${name}.pth`;
}

export interface ModelDownloadOptions {
  /** Folder for the files, relative to the user's directory (default <repo>/data/torch-models/<variant>). */
  dir?: string;
  /** Override the address (mirrors, tests). */
  url?: string;
  sha256?: string;
  fetch?: typeof fetch;
  onProgress?: (received: number, total: number | undefined) => void;
  connectTimeoutMs?: number;
}

/** The local path of a published generator, downloaded unless it is already there; checks a known or given SHA-256. */
export async function downloadTorchModel(
  name: string,
  variant: ModelVariant,
  o: ModelDownloadOptions = {},
): Promise<{ file: string; downloaded: boolean; sha256: string }> {
  const url = o.url ?? torchModelUrl(name, variant);
  if (o.url && !/^[A-Za-z0-9_.-]+$/.test(name)) throw new GantryError(`--model ${name}: must be a plain name`);
  const expected = o.sha256 ?? KNOWN_MODEL_SHA256[`${variant}/${name}`];
  if (expected !== undefined && !/^[0-9a-f]{64}$/i.test(expected))
    throw new GantryError(`--sha256 ${expected}: must be 64 hex digits`);
  const dir = o.dir !== undefined ? userPath(o.dir) : join(workspaceRoot(), 'data', 'torch-models', variant);
  const file = join(dir, `${name}.pth`);
  let downloaded = false;
  let sha: string;
  if (existsSync(file)) sha = createHash('sha256').update(readFileSync(file)).digest('hex');
  else {
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw new GantryError(
        `${dir}: cannot create folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
    sha = await downloadToFile(url, file, dir, o);
    downloaded = true;
  }
  if (expected !== undefined && sha !== expected.toLowerCase()) {
    throw new GantryError(
      `${file}: SHA-256 ${sha}, expected ${expected.toLowerCase()} (a corrupt or different file: delete it and run this again)`,
    );
  }
  return { file, downloaded, sha256: sha };
}

/** The published generators of `variant` for `import-torch`: --model NAME (and --model-b) to download first. */
export function publishedTorchModels(variant: ModelVariant): PublishedModels {
  return {
    options: {
      model: {
        type: 'string',
        describe: `a published generator to download and import instead of --from (${variant === 'pix2pix' ? PIX2PIX_MODELS.join(', ') : 'horse2zebra, monet2photo, style_monet, … see the docs'})`,
      },
      ...(variant === 'cyclegan'
        ? {
            'model-b': {
              type: 'string',
              describe: 'a published generator for G_B (B → A), e.g. zebra2horse with --model horse2zebra',
            },
          }
        : {}),
      'models-dir': {
        type: 'string',
        describe: 'where --model files are kept (default <repo>/data/torch-models/<variant>)',
      },
      sha256: { type: 'string', describe: 'expected SHA-256 of the --model file' },
    },
    async resolve(a, args) {
      const str = (k: string) => (typeof a[k] === 'string' ? a[k] : undefined);
      const model = str('model');
      const modelB = str('modelB');
      const modelsDir = str('modelsDir');
      if (model !== undefined) {
        if (args.from !== '') throw new GantryError('--model and --from: give one of them');
        const got = await downloadTorchModel(model, variant, { dir: modelsDir, sha256: str('sha256') });
        console.log(`${got.downloaded ? 'downloaded' : 'using'} ${got.file} (SHA-256 ${got.sha256})`);
        args.from = got.file;
      }
      if (modelB !== undefined) {
        if (args.fromB !== undefined) throw new GantryError('--model-b and --from-b: give one of them');
        const got = await downloadTorchModel(modelB, variant, { dir: modelsDir });
        console.log(`${got.downloaded ? 'downloaded' : 'using'} ${got.file} (SHA-256 ${got.sha256})`);
        args.fromB = got.file;
      }
    },
  };
}
