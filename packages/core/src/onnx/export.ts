/**
 * `export --format onnx`: a variant's generator(s) as ONNX files, with what a user needs to run them (the variant,
 * the normalisation, the sizes, the labels, the layout and the inference mode) in each file's `metadata_props`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { GantryError } from '../errors.js';
import { strideMultiple } from '../nn/fully-conv.js';
import { mkdirp, tempSibling, writeError } from '../runs/fsutil.js';
import { layersModelToOnnx } from './convert.js';
import { OPSET } from './graph.js';

export interface OnnxExportOptions {
  /**
   * Image-to-image generators: batch norm with its running statistics and no dropout (the reference's --eval).
   * Default false: the batch's own statistics and dropout on, as `translate` and the reference's test run by default.
   * Noise → image generators always export in eval mode, as `generate` runs them.
   */
  evalMode?: boolean;
  /** Replace files that exist already (`--force`); without it an existing file is refused, as `--out` folders are. */
  force?: boolean;
}

/** The file of each generator: `out` for a single one; `<stem>.<net>.onnx` for several (CycleGAN's G_A and G_B). */
export function onnxFileNames(out: string, nets: string[]): Record<string, string> {
  if (!out.toLowerCase().endsWith('.onnx'))
    throw new GantryError(`--out ${out}: expected a file name ending in .onnx (with --format onnx)`);
  if (nets.length === 1) return { [nets[0]!]: out };
  const stem = out.slice(0, -'.onnx'.length);
  return Object.fromEntries(nets.map((n) => [n, `${stem}.${n}.onnx`]));
}

const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/**
 * Converts `models` (sub-name → generator, as `exportModels` takes them: '' for one, G_A/G_B for CycleGAN) and
 * writes them as ONNX files at `out` (see `onnxFileNames`). Every model is converted before anything is written, and
 * each file is written to a temporary sibling and renamed, so a layer without a mapping or a failed write leaves no
 * file behind. Returns the files written.
 */
export async function exportOnnxModels(
  out: string,
  models: Record<string, tf.LayersModel>,
  metadata: Record<string, unknown>,
  o: OnnxExportOptions = {},
): Promise<string[]> {
  const files = onnxFileNames(out, Object.keys(models));
  for (const file of Object.values(files))
    if (!o.force && fs.existsSync(file))
      throw new GantryError(`--out ${file}: exists already (expected a new file, or --force to replace it)`);
  const translator = metadata.kind === 'image-to-image';
  const batchStatistics = translator && !(o.evalMode ?? false);
  const generators = (metadata.generators ?? {}) as Record<string, string>;
  const encoded = Object.entries(models).map(([net, model]) => {
    const labelled = model.inputs.length === 2;
    const inputs = translator ? ['image'] : labelled ? ['z', 'label'] : ['z'];
    const { generators: _, inference: __, ...common } = metadata;
    const props: Record<string, unknown> = {
      ...common,
      ...(net ? { net, direction: generators[net] ?? net } : {}),
      format: `ONNX opset ${OPSET}`,
      inputs: translator
        ? 'image: float32 [batch, channels, height, width], any height and width the strides divide'
        : `z: float32 [batch, ${metadata.latentDim}] standard normal${labelled ? '; label: int32 [batch, 1] class index' : ''}`,
      output: 'output: float32 [batch, channels, height, width] in [-1, 1]',
      layout: 'NCHW',
      mode: batchStatistics
        ? "test: batch norm on the batch's own statistics, dropout on (the reference's default test mode)"
        : 'eval: batch norm with its running statistics, no dropout',
    };
    if (translator) props.multiple = strideMultiple(model);
    const bytes = layersModelToOnnx(model, {
      batchStatistics,
      dynamicSize: translator,
      inputNames: inputs,
      outputName: 'output',
      metadata: Object.fromEntries(Object.entries(props).map(([k, v]) => [k, text(v)])),
      docString: `Gantry ${metadata.variant} generator${net ? ` ${net}` : ''}`,
    });
    return { file: files[net]!, bytes };
  });
  const written: { tmp: string; file: string }[] = [];
  try {
    for (const { file, bytes } of encoded) {
      const tmp = tempSibling(file);
      try {
        mkdirp(path.dirname(file));
        fs.writeFileSync(tmp, bytes);
      } catch (err) {
        throw writeError(file, err);
      }
      written.push({ tmp, file });
    }
    for (const { tmp, file } of written) {
      try {
        fs.renameSync(tmp, file);
      } catch (err) {
        throw writeError(file, err);
      }
    }
  } finally {
    for (const { tmp } of written) fs.rmSync(tmp, { force: true });
  }
  return encoded.map((e) => e.file);
}
