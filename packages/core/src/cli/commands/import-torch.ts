/** `import-torch` (variants with a `torch` hook): a generator of the reference implementation → a checkpoint. */
import { type ImportTarget, importTorchFromArgs, importTorchOptions, type TorchImport } from '../../torch/import.js';
import type { Command } from './common.js';

export function importTorchCommand(def: { name: string; torch: TorchImport<object> }): Command {
  const target: ImportTarget = { variant: def.name, ...def.torch };
  return {
    name: 'import-torch',
    describe: `import a PyTorch state dict of the reference implementation (--from FILE${def.torch.published ? ', or --model NAME to download a published one' : ''}) as a checkpoint`,
    options: { ...importTorchOptions(target), ...def.torch.published?.options },
    run: (a) => importTorchFromArgs(target, a),
  };
}
