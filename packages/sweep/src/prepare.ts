/**
 * A spec file → its trials, every trial's flags checked as the variant's command line checks them. A refused value
 * is a one-line error naming the spec field it came from (`grid.lr: --lr: expected a positive number, got '-1'`).
 */
import { GantryError } from '@gantry/core';
import { expandTrials, flagTokens, readSpec, type SweepSpec, type Trial } from './spec.js';
import { checkEvaluateArgs, checkTrainArgs, fieldOf, loadVariant } from './variants.js';

export async function prepareSweep(file: string): Promise<{ spec: SweepSpec; trials: Trial[] }> {
  const spec = readSpec(file);
  const def = await loadVariant(spec.variant).catch((err) => {
    throw err instanceof GantryError ? new GantryError(`${file}: ${err.message}`) : err;
  });
  const trials = expandTrials(spec);
  try {
    await checkEvaluateArgs(def, flagTokens(spec.evaluate));
  } catch (err) {
    if (!(err instanceof GantryError)) throw err;
    const field = fieldOf(err.message, { sources: {} }, true) ?? 'evaluate';
    throw new GantryError(`${file}: ${field}: ${err.message}`);
  }
  for (const t of trials) {
    try {
      await checkTrainArgs(def, t.args);
    } catch (err) {
      if (!(err instanceof GantryError)) throw err;
      const field = fieldOf(err.message, t) ?? `trial ${t.id}`;
      throw new GantryError(`${file}: ${field}: ${err.message}`);
    }
  }
  return { spec, trials };
}
