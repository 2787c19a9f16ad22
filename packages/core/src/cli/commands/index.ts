/**
 * The app's commands, one file each, made from the variant definition: train, generate or translate, evaluate,
 * the variant's own commands (import-torch), export, runs.
 */
import type { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { registerKeyMigrations } from '../../runs/checkpoint.js';
import type { AnyVariant, VariantData, VariantDefinition } from '../../variant.js';
import { runCli } from '../cli.js';
import type { FlagSpecs } from '../flags.js';
import type { Command } from './common.js';
import { evaluateCommand } from './evaluate.js';
import { exportCommand } from './export.js';
import { generateCommand } from './generate.js';
import { importTorchCommand } from './import-torch.js';
import { runsCommand } from './runs.js';
import { trainCommand } from './train.js';
import { translateCommand } from './translate.js';

/** The commands of a variant's app, in the order `--help` lists them. */
export function commandsOf<F extends FlagSpecs, C extends object, D extends VariantData, E extends FlagSpecs>(
  def: VariantDefinition<F, C, D, E>,
  argv: readonly string[],
): Command[] {
  registerKeyMigrations(def);
  const inference = def.inference;
  return [
    trainCommand(def, argv),
    inference.kind === 'latent' ? generateCommand(def, inference) : translateCommand(def, inference),
    ...(def.evaluate ? [evaluateCommand(def, def.evaluate)] : []),
    ...(def.torch ? [importTorchCommand({ name: def.name, torch: def.torch })] : []),
    ...(def.commands ?? []),
    exportCommand(def, inference),
    runsCommand(def.name),
  ];
}

/** The app's commands, built from the variant definition. */
export function variantCommands<F extends FlagSpecs, C extends object, D extends VariantData, E extends FlagSpecs>(
  def: VariantDefinition<F, C, D, E>,
  argv: readonly string[] = hideBin(process.argv),
): (y: Argv) => Argv {
  return (y: Argv) => {
    let out = y.usage(`Gantry ${def.name}: ${def.title}.\n\nUsage: pnpm --filter ${def.name} <command> [options]`);
    for (const c of commandsOf(def, argv))
      out = out.command(
        c.name,
        c.describe,
        (b: Argv) => b.options(c.options),
        async (a: Record<string, unknown>) => {
          await c.run(a);
        },
      );
    return out;
  };
}

/** An app's whole program: `await runVariant(definition)`. */
export async function runVariant(def: AnyVariant, argv: string[] = hideBin(process.argv)): Promise<void> {
  await runCli(def.name, variantCommands(def, argv), argv);
}
