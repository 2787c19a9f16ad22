/** `evaluate`: the variant's figures for a trained model, saved beside its checkpoint as evaluation.json. */
import { initBackend } from '../../backend/index.js';
import { saveEvaluation } from '../../runs/export.js';
import type { EvaluateCommand } from '../../variant.js';
import { type FlagSpecs, flag, readFlags, yargsOptions } from '../flags.js';
import { backendOf, type Command, checkpointFlag } from './common.js';
import { loadTrained, type TrainedOf } from './trained.js';

export function evaluateCommand<C extends object, E extends FlagSpecs>(
  def: TrainedOf<C>,
  ev: EvaluateCommand<C, E>,
): Command {
  const ownFlags = {
    ...checkpointFlag(def.name),
    json: flag.string('also write the figures as JSON to this file', { transient: true }),
  };
  const load = (checkpoint: string | undefined) => loadTrained<C>(def, checkpoint);
  return {
    name: 'evaluate',
    describe: ev.describe,
    options: yargsOptions({ ...ownFlags, ...ev.flags }),
    async run(a) {
      const v = readFlags(ownFlags, a);
      await initBackend({ backend: backendOf(a) });
      const trained = await load(v.checkpoint);
      const figures = await ev.run(trained, readFlags(ev.flags, a), { loadTrained: load });
      saveEvaluation(trained.checkpoint, { checkpoint: trained.checkpoint, ...figures }, v.json);
    },
  };
}
