/**
 * Checkpoints of the Train view: the newest one kept in IndexedDB (a reload resumes from it), downloaded as a zip
 * of the folder a Node run writes (step-NNNNNNNN/state.json, <net>/model.json, <net>/weights.bin, optim-*.bin),
 * and imported from such a zip, a picked folder or dropped files. Imports are checked with Node's own code
 * (runs/checkpoint-data.ts): paths, shapes, dtypes, sizes, values.
 */
import {
  type CheckpointFiles,
  type CheckpointState,
  checkpointName,
  modelFromFiles,
  parseCheckpointState,
} from '@gantry/core/browser';
import { unzipSync, zipSync } from 'fflate';
import type { FileList, TrainSettings } from './protocol.js';

export interface SavedRun {
  settings: TrainSettings;
  step: number;
  files: FileList;
  savedAt: string;
  /** What the run trains on (MNIST or a folder); a folder's images are not kept, so it is dropped again. */
  data: string;
}

const DB = 'gantry-train';
const STORE = 'runs';
const KEY = 'current';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const req = f(t.objectStore(STORE));
      t.oncomplete = () => resolve(req.result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  } finally {
    db.close();
  }
}

export const saveRun = (run: SavedRun): Promise<IDBValidKey> => tx('readwrite', (s) => s.put(run, KEY));
export const loadRun = (): Promise<SavedRun | undefined> => tx('readonly', (s) => s.get(KEY));
export const clearRun = (): Promise<undefined> => tx('readwrite', (s) => s.delete(KEY));

/** Config keys that are not flags of the Node app (derived from the data, or the page's own). */
const NOT_FLAGS = new Set(['numClasses', 'classNames', 'images', 'loss', 'batchSize']);

/**
 * A checkpoint as a zip of a Node run directory: `<variant>-page-run/run.json` (the options as the app's flags,
 * so `train --resume` continues with them) and `checkpoints/step-NNNNNNNN/…`, the checkpoint folder itself.
 */
export function checkpointZip(
  step: number,
  files: FileList,
  settings: TrainSettings,
  extra: Record<string, unknown> = {},
): Uint8Array {
  const root = `${settings.variant}-page-run`;
  const dir = `${root}/checkpoints/${checkpointName(step)}`;
  const args = {
    ...Object.fromEntries(Object.entries(settings.config).filter(([k]) => !NOT_FLAGS.has(k))),
    steps: settings.steps,
    batchSize: settings.batchSize,
    lr: settings.lr,
    beta1: settings.beta1,
    seed: settings.seed,
    loss: settings.loss,
    sampleEvery: settings.sampleEvery,
    checkpointEvery: settings.checkpointEvery,
    ...extra,
  };
  const run = { variant: settings.variant, backend: 'browser', created: new Date().toISOString(), options: args, args };
  return zipSync(
    {
      [`${root}/run.json`]: new TextEncoder().encode(JSON.stringify(run, null, 2)),
      ...Object.fromEntries(files.map(([p, b]) => [`${dir}/${p}`, b])),
    },
    { level: 0 },
  );
}

/**
 * Checkpoint files from an upload: a zip of a checkpoint folder, or the files of a picked/dropped folder (paths
 * relative to it). The folder holding state.json is the checkpoint; its files keep their paths below it.
 */
export function checkpointFromUpload(files: { path: string; bytes: Uint8Array }[]): CheckpointFiles {
  let all = files;
  if (files.length === 1 && /\.zip$/i.test(files[0]!.path)) {
    let entries: Record<string, Uint8Array>;
    try {
      entries = unzipSync(files[0]!.bytes);
    } catch {
      throw new Error(`${files[0]!.path}: not a readable zip file`);
    }
    all = Object.entries(entries).map(([path, bytes]) => ({ path, bytes }));
  }
  const states = all.filter((f) => f.path === 'state.json' || f.path.endsWith('/state.json'));
  if (states.length === 0)
    throw new Error(
      'not a Gantry checkpoint: no state.json (pick a checkpoint folder such as step-00001200, or its zip)',
    );
  if (states.length > 1) throw new Error('more than one checkpoint (state.json) here: pick one checkpoint folder');
  const prefix = states[0]!.path.slice(0, -'state.json'.length);
  return new Map(
    all
      .filter((f) => f.path.startsWith(prefix) && !f.path.endsWith('/'))
      .map((f) => [f.path.slice(prefix.length), f.bytes]),
  );
}

/** An export's metadata.json (what `export --out` writes beside model.json). */
export interface ExportMeta {
  variant?: string;
  kind?: string;
  imageSize?: number;
  channels?: number;
  latentDim?: number;
  labels?: string[] | null;
  direction?: 'AtoB' | 'BtoA';
  [k: string]: unknown;
}

/**
 * An export in an upload (no state.json; model.json and metadata.json side by side): its files relative to its
 * folder and its metadata; undefined when the upload is not one.
 */
export function exportFromUpload(
  files: { path: string; bytes: Uint8Array }[],
): { files: CheckpointFiles; meta: ExportMeta } | undefined {
  let all = files;
  if (files.length === 1 && /\.zip$/i.test(files[0]!.path)) {
    try {
      all = Object.entries(unzipSync(files[0]!.bytes)).map(([path, bytes]) => ({ path, bytes }));
    } catch {
      return undefined;
    }
  }
  if (all.some((f) => f.path === 'state.json' || f.path.endsWith('/state.json'))) return undefined;
  const metas = all.filter((f) => f.path === 'metadata.json' || f.path.endsWith('/metadata.json'));
  if (metas.length !== 1) return undefined;
  const prefix = metas[0]!.path.slice(0, -'metadata.json'.length);
  const map: CheckpointFiles = new Map(
    all
      .filter((f) => f.path.startsWith(prefix) && !f.path.endsWith('/'))
      .map((f) => [f.path.slice(prefix.length), f.bytes]),
  );
  if (!map.has('model.json')) return undefined;
  let meta: ExportMeta;
  try {
    meta = JSON.parse(new TextDecoder().decode(map.get('metadata.json')));
  } catch {
    throw new Error(`${metas[0]!.path}: not readable JSON`);
  }
  return { files: map, meta };
}

type LayerJson = { class_name?: string; config?: { units?: number } };

/**
 * G's width (ngf) of a cGAN or DCGAN export, from its first dense layer: base² · ngf · 2^(levels − 1) units, base
 * and levels by the image size as both variants' generators are built (7×7 and 2 levels at 28, else 4×4 and
 * log2(size / 4)).
 */
export function exportWidth(modelJson: Uint8Array, imageSize: number, label: string): number {
  const topology = JSON.parse(new TextDecoder().decode(modelJson)).modelTopology as {
    config?: { layers?: LayerJson[] };
  };
  const dense = topology.config?.layers?.find((l) => l.class_name === 'Dense');
  const [levels, base] = imageSize === 28 ? [2, 7] : [Math.round(Math.log2(imageSize / 4)), 4];
  const ngf = (dense?.config?.units ?? 0) / (base * base * 2 ** (levels - 1));
  if (!Number.isInteger(ngf) || ngf < 1)
    throw new Error(
      `${label}: not a Gantry cGAN/DCGAN generator (its first dense layer does not fit ${imageSize}×${imageSize})`,
    );
  return ngf;
}

/**
 * Checks an imported checkpoint before anything is replaced: state.json's fields, the variant, and every
 * network's model.json and weights (Node's checks). The worker checks again that they fit the networks.
 */
export function checkImport(files: CheckpointFiles, label: string, variants: string[]): CheckpointState {
  const state = parseCheckpointState(files.get('state.json'), label);
  if (!variants.includes(state.variant))
    throw new Error(`${label}: a ${state.variant} checkpoint; the page trains ${variants.join(' and ')}`);
  const nets = [...new Set([...files.keys()].filter((k) => k.endsWith('/model.json')).map((k) => k.slice(0, -11)))];
  for (const net of ['generator', 'discriminator']) {
    if (!nets.includes(net))
      throw new Error(`${label}: no ${net}/model.json (a checkpoint to train on holds both networks)`);
  }
  for (const net of nets) modelFromFiles(files, net, label);
  return state;
}
