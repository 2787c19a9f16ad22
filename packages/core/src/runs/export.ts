/** What the apps' `export` and `evaluate` commands write, in one place. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Options } from 'yargs';
import { saveModel } from './checkpoint.js';
import { atomicWrite, ensureWritableDir } from './fsutil.js';
import { userPath } from './run.js';

/** Flags of every `export` command. */
export function exportOptions(variant: string) {
  return {
    out: { type: 'string', demandOption: true, describe: 'output directory' },
    checkpoint: { type: 'string', describe: `run or checkpoint directory (default: the latest ${variant} run)` },
  } satisfies Record<string, Options>;
}

/**
 * Writes generators in the TF.js layers format plus `metadata.json` into `out`, for the browser demo or any
 * `tf.loadLayersModel` user. `models` maps a sub-folder ('' for `out` itself) to a model. Everything is
 * assembled in a temporary folder first, so an interrupted export leaves the previous one intact.
 */
export async function exportModels(
  out: string,
  models: Record<string, tf.LayersModel>,
  metadata: Record<string, unknown>,
): Promise<void> {
  ensureWritableDir(out);
  const tmp = path.join(out, `.export-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    for (const [sub, model] of Object.entries(models)) await saveModel(model, path.join(tmp, sub));
    atomicWrite(path.join(tmp, 'metadata.json'), JSON.stringify(metadata, null, 2));
    for (const f of fs.readdirSync(tmp)) {
      fs.rmSync(path.join(out, f), { recursive: true, force: true });
      fs.renameSync(path.join(tmp, f), path.join(out, f));
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Saves evaluation figures as `evaluation.json` in the checkpoint's run (the report shows them) and, if asked, to `--json`. */
export function saveEvaluation(checkpoint: string, figures: Record<string, unknown>, jsonFlag?: unknown): void {
  const text = JSON.stringify(figures, null, 2);
  atomicWrite(path.join(checkpoint, '..', '..', 'evaluation.json'), text);
  if (typeof jsonFlag === 'string') atomicWrite(userPath(jsonFlag), text);
}
