/** What the apps' `export` and `evaluate` commands write, in one place. */
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Options } from 'yargs';
import { saveModel } from './checkpoint.js';
import { atomicWrite } from './fsutil.js';
import { claimOutputDir, interrupts, type OutputDir } from './output-dir.js';
import { userPath } from './run.js';

/** Flags of every `export` command. */
export function exportOptions(variant: string) {
  return {
    out: { type: 'string', demandOption: true, describe: 'output directory (new or empty, or --force)' },
    checkpoint: { type: 'string', describe: `run or checkpoint directory (default: the latest ${variant} run)` },
    force: { type: 'boolean', default: false, describe: 'replace the content of a non-empty --out' },
  } satisfies Record<string, Options>;
}

/**
 * Writes generators in the TF.js layers format plus `metadata.json` into `out`, for the browser demo or any
 * `tf.loadLayersModel` user. `models` maps a sub-folder ('' for `out` itself) to a model. `out` is claimed as
 * `import-torch` claims its folder (runs/output-dir.ts): new or empty unless `force` (then its content is
 * replaced, never mixed with an older export), locked, written in a temporary sibling and moved in when complete;
 * Ctrl-C or SIGTERM leaves it as it was (exit 130 or 143).
 */
export async function exportModels(
  out: string,
  models: Record<string, tf.LayersModel>,
  metadata: Record<string, unknown>,
  o: { force?: boolean; inputs?: string[] } = {},
): Promise<void> {
  const signals = interrupts('export');
  let dir: OutputDir | undefined;
  // The checkpoint read (metadata.checkpoint) is an input --force must not delete.
  const inputs = o.inputs ?? (typeof metadata.checkpoint === 'string' ? [metadata.checkpoint] : []);
  try {
    dir = claimOutputDir(out, { force: o.force, what: 'export', inputs });
    await signals.check();
    for (const [sub, model] of Object.entries(models)) {
      await saveModel(model, path.join(dir.tmp, sub));
      await signals.check();
    }
    atomicWrite(path.join(dir.tmp, 'metadata.json'), JSON.stringify(metadata, null, 2));
    await signals.check();
    dir.commit();
    dir = undefined;
  } finally {
    dir?.abort();
    signals.dispose();
  }
}

/** Saves evaluation figures as `evaluation.json` in the checkpoint's run (the report shows them) and, if asked, to `--json`. */
export function saveEvaluation(checkpoint: string, figures: Record<string, unknown>, jsonFlag?: unknown): void {
  const text = JSON.stringify(figures, null, 2);
  atomicWrite(path.join(checkpoint, '..', '..', 'evaluation.json'), text);
  if (typeof jsonFlag === 'string') atomicWrite(userPath(jsonFlag), text);
}
