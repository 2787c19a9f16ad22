/**
 * `import-torch`: a PyTorch state dict of the reference implementation's generator → a Gantry checkpoint
 * directory that translate, export and evaluate take like a trained one:
 *
 *   <out>/state.json                     variant, step 0, config (the variant's, from the architecture), imported
 *   <out>/<AtoB net>/{model.json,weights.bin}   the generator (e.g. pix2pix's generator, CycleGAN's G_A)
 *   <out>/<BtoA net>/…                          with --from-b, for a variant with a second generator
 *
 * Which networks and which config are the variant's to say (`ImportTarget`, its definition's `torch`).
 *
 * Nothing is written unless every file reads and fits: the directory is claimed as `train` claims a run directory
 * (new or empty, or --force; locked), built in a temporary sibling and moved in when complete (runs/output-dir.ts).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Options } from 'yargs';
import { initBackend } from '../backend/index.js';
import { GantryError } from '../errors.js';
import { countParams, type Norm } from '../nn/networks.js';
import { saveModel } from '../runs/checkpoint.js';
import { writeError } from '../runs/fsutil.js';
import { claimOutputDir, interrupts, type OutputDir } from '../runs/output-dir.js';
import { userPath } from '../runs/run.js';
import {
  type ArchFlags,
  describeArch,
  networkFromStateDict,
  StateDictError,
  TORCH_NET_G,
  type TorchArch,
} from './mapping.js';
import { looksLikeTorchFile, readStateDict, TorchFormatError } from './reader.js';

/** A generator of the reference implementation (not a discriminator). */
export type TorchGeneratorArch = Exclude<TorchArch, { kind: 'patchgan' }>;

/** What a variant makes of the reference's generators (its definition's `torch`). */
export interface TorchImport<C = Record<string, unknown>> {
  /** The networks the imported generators become: A → B, and B → A where the variant has two (--from-b). */
  nets: { AtoB: string; BtoA?: string };
  /**
   * The variant's config for a generator of architecture `arch` (as its train writes it; the rest at the
   * reference's defaults). Throws a one-line GantryError naming `file` if the variant cannot run it.
   */
  config(arch: TorchGeneratorArch, file: string): C;
  /**
   * Whether a U-Net imported without --dropout/--no-dropout has dropout layers (default true; CycleGAN's reference
   * model sets --no_dropout, so its imports match the network `train --init-from` builds).
   */
  unetDropout?: boolean;
  /** Published generators `import-torch --model NAME` downloads first (filled in by @gantry/datasets). */
  published?: PublishedModels;
}

/** Published generators to download and import: their flags, and the download into `args.from`/`args.fromB`. */
export interface PublishedModels {
  options: Record<string, Options>;
  /** Downloads what the parsed arguments `a` ask for and points `args` at the files (leaves them when none). */
  resolve(a: Record<string, unknown>, args: ImportTorchArgs): Promise<void>;
}

/** A variant's import: its name (the checkpoint's) and its `TorchImport`. */
export type ImportTarget = TorchImport<object> & { variant: string };

export interface ImportTorchArgs extends ArchFlags {
  /** The state dict file (the generator; for cyclegan G_A, A → B). */
  from: string;
  /** cyclegan: the B → A generator's file. */
  fromB?: string;
  /** The checkpoint directory to create. */
  out: string;
  /** Replace an existing `out`. */
  force?: boolean;
}

/** The yargs options of `import-torch` (the reference's test flags in kebab case). */
export function importTorchOptions(target: ImportTarget): Record<string, Options> {
  return {
    from: {
      type: 'string',
      describe: 'PyTorch state dict (.pth) of the generator, as torch.save(net.state_dict()) writes it',
      demandOption: false,
    },
    ...(target.nets.BtoA
      ? {
          'from-b': {
            type: 'string',
            describe: `state dict of the B → A generator (${target.nets.BtoA}); default: only ${target.nets.AtoB} is imported`,
          },
        }
      : {}),
    out: {
      type: 'string',
      demandOption: true,
      describe: 'checkpoint directory to create (then: translate --checkpoint <out>)',
    },
    force: { type: 'boolean', default: false, describe: 'replace an existing --out directory' },
    'net-g': {
      type: 'string',
      alias: ['netG'],
      choices: [...TORCH_NET_G],
      describe: "generator architecture, as train's --net-g (default: told from the file's names and shapes)",
    },
    ngf: { type: 'number', describe: 'generator width (default: from the file)' },
    norm: { type: 'string', choices: ['batch', 'instance'], describe: 'normalisation (default: from the file)' },
    dropout: {
      type: 'boolean',
      describe:
        "dropout layers (--no-dropout as the reference's --no_dropout; default: pix2pix's U-Net on, CycleGAN's off, a ResNet from the file)",
    },
    'input-nc': { type: 'number', describe: 'input channels (default: from the file)' },
    'output-nc': { type: 'number', describe: 'output channels (default: from the file)' },
  };
}

/** Model files above this size are refused before reading (unet_256 at ngf 64 in float64 is 436 MB). */
export const MAX_MODEL_FILE_BYTES = 2 ** 31 - 1;

/**
 * Reads a model file: a regular file only (a FIFO would block forever, /dev/zero never ends), opened without
 * blocking so that a FIFO is refused rather than waited on.
 */
export function readModelFile(file: string, flag: string): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new GantryError(
      `${flag} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory, expected a .pth file' : `cannot read (${code})`}`,
    );
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new GantryError(`${flag} ${file}: a directory, expected a .pth file`);
    if (!st.isFile()) {
      const kind = st.isFIFO()
        ? 'a named pipe'
        : st.isCharacterDevice() || st.isBlockDevice()
          ? 'a device'
          : st.isSocket()
            ? 'a socket'
            : 'not a regular file';
      throw new GantryError(`${flag} ${file}: ${kind}, expected a .pth file`);
    }
    if (st.size > MAX_MODEL_FILE_BYTES)
      throw new GantryError(
        `${flag} ${file}: ${st.size} bytes, more than a model file may have (${MAX_MODEL_FILE_BYTES})`,
      );
    // Anything else (a 2 GB video, a disk image) is refused from its first bytes, before the rest is read.
    const head = new Uint8Array(Math.min(512, st.size));
    fs.readSync(fd, head, 0, head.length, 0);
    if (!looksLikeTorchFile(head)) {
      try {
        readStateDict(head);
      } catch (err) {
        if (err instanceof TorchFormatError) throw new GantryError(`${flag} ${file}: ${err.message}`);
        throw err;
      }
    }
    return fs.readFileSync(fd);
  } catch (err) {
    if (err instanceof GantryError) throw err;
    throw new GantryError(
      `${flag} ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads and converts one state dict file; every problem is a GantryError naming the file. */
export function importGenerator(
  file: string,
  flags: ArchFlags,
  name: string,
  flag = '--from',
): { arch: TorchArch; model: tf.LayersModel; sha256: string } {
  const bytes = readModelFile(file, flag);
  try {
    const sd = readStateDict(bytes);
    const { arch, model } = networkFromStateDict(sd, flags, name);
    return { arch, model, sha256: createHash('sha256').update(bytes).digest('hex') };
  } catch (err) {
    if (err instanceof TorchFormatError || err instanceof StateDictError)
      throw new GantryError(`${flag} ${file}: ${err.message}`);
    throw err;
  }
}

function variantConfig(target: ImportTarget, arch: TorchArch, file: string): object {
  if (arch.kind === 'patchgan') throw new GantryError(`${file}: a discriminator, expected a generator`);
  if (arch.inChannels !== arch.outChannels || (arch.inChannels !== 1 && arch.inChannels !== 3)) {
    throw new GantryError(
      `${file}: ${describeArch(arch)}; Gantry's ${target.variant} takes 1 or 3 channels in and the same number out`,
    );
  }
  return target.config(arch, file);
}

/** Runs `import-torch` for a variant; returns the checkpoint directory. */
export async function importTorchCommand(
  target: ImportTarget,
  a: ImportTorchArgs,
  log: (line: string) => void = (l) => console.log(l),
): Promise<string> {
  if (!a.from)
    throw new GantryError(
      '--from: the PyTorch state dict to import is required (or --model NAME to download a published one)',
    );
  const from = userPath(a.from);
  const out = userPath(a.out);
  const flags: ArchFlags = {
    netG: a.netG,
    ngf: a.ngf,
    norm: a.norm as Norm | undefined,
    dropout: a.dropout,
    inputNc: a.inputNc,
    outputNc: a.outputNc,
    unetDropoutDefault: target.unetDropout ?? true,
  };
  for (const [k, v] of Object.entries({ ngf: a.ngf, 'input-nc': a.inputNc, 'output-nc': a.outputNc })) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 1))
      throw new GantryError(`--${k} ${v}: expected a positive integer`);
  }
  // The folder is checked and locked before anything slow; Ctrl-C and SIGTERM are honoured between the steps.
  const signals = interrupts('import-torch');
  const nets: Record<string, tf.LayersModel> = {};
  const imported: Record<string, unknown>[] = [];
  let dir: OutputDir | undefined;
  try {
    dir = claimOutputDir(out, {
      force: a.force,
      what: 'import-torch',
      log,
      inputs: [from, ...(a.fromB !== undefined ? [userPath(a.fromB)] : [])],
    });
    await signals.check();
    const { variant } = target;
    const { AtoB, BtoA } = target.nets;
    const main = importGenerator(from, flags, AtoB);
    nets[AtoB] = main.model;
    const config = variantConfig(target, main.arch, from);
    imported.push({ net: AtoB, from, sha256: main.sha256, arch: main.arch });
    await signals.check();
    if (a.fromB !== undefined) {
      if (!BtoA) throw new GantryError(`--from-b: ${variant} has one generator (A → B)`);
      const fromB = userPath(a.fromB);
      const b = importGenerator(fromB, flags, BtoA, '--from-b');
      nets[BtoA] = b.model;
      if (JSON.stringify(variantConfig(target, b.arch, fromB)) !== JSON.stringify(config)) {
        throw new GantryError(
          `--from-b ${fromB}: ${describeArch(b.arch)} differs from --from's ${describeArch(main.arch)}`,
        );
      }
      imported.push({ net: BtoA, from: fromB, sha256: b.sha256, arch: b.arch });
      await signals.check();
    }
    const state = { variant, step: 0, epoch: 0, config, imported, savedAt: new Date().toISOString() };
    try {
      for (const [name, model] of Object.entries(nets)) {
        await saveModel(model, path.join(dir.tmp, name));
        await signals.check();
      }
      fs.writeFileSync(path.join(dir.tmp, 'state.json'), JSON.stringify(state, null, 2));
    } catch (err) {
      throw err instanceof GantryError ? err : writeError(out, err);
    }
    await signals.check();
    dir.commit();
    dir = undefined;
    // Trainable parameters, as the reference's print_networks counts them (running statistics left out).
    const params = Object.values(nets).reduce((n, m) => n + countParams(m), 0);
    log(
      `imported ${describeArch(main.arch)} from ${from}${a.fromB !== undefined ? ` and ${BtoA} from ${userPath(a.fromB)}` : ''}: ${params.toLocaleString('en-US')} parameters → ${out}`,
    );
    log(
      `translate with: pnpm --filter ${target.variant} translate --checkpoint ${out} --input <photo> --output <file>`,
    );
    return out;
  } finally {
    dir?.abort();
    signals.dispose();
    for (const m of Object.values(nets)) m.dispose();
  }
}

/** `import-torch` from parsed arguments: the flags checked, the backend started, published files fetched, imported. */
export async function importTorchFromArgs(target: ImportTarget, a: Record<string, unknown>): Promise<string> {
  const str = (k: string) => (typeof a[k] === 'string' ? a[k] : undefined);
  const num = (k: string) => (a[k] === undefined ? undefined : Number(a[k]));
  const args: ImportTorchArgs = {
    from: str('from') ?? '',
    fromB: str('fromB'),
    out: str('out') ?? '',
    force: a.force === true,
    netG: str('netG'),
    ngf: num('ngf'),
    norm: str('norm') as Norm | undefined,
    dropout: typeof a.dropout === 'boolean' ? a.dropout : undefined,
    inputNc: num('inputNc'),
    outputNc: num('outputNc'),
  };
  await initBackend({ backend: typeof a.backend === 'string' ? a.backend : undefined });
  await target.published?.resolve(a, args);
  return importTorchCommand(target, args);
}
