/** Learning-rate schedules: functions from the epoch (0-based, fractional allowed) to a multiplier of the base rate. */
export type LrSchedule = (epoch: number) => number;

export const constantLr: LrSchedule = () => 1;

/**
 * The pix2pix/CycleGAN schedule: the base rate for `constant` epochs, then linearly down to zero over `decay`
 * more epochs (the reference's lambda_rule, made continuous because Gantry updates the rate every step).
 */
export function linearDecay(constant: number, decay: number): LrSchedule {
  return (epoch) => (decay <= 0 || epoch < constant ? 1 : Math.max(0, 1 - (epoch - constant) / decay));
}

/** `linearDecay` fitted to a run of `totalEpochs`: the last `decayEpochs` of it (at most all of it) decay to zero. */
export function decayOverLast(totalEpochs: number, decayEpochs: number): LrSchedule {
  const decay = Math.min(decayEpochs, totalEpochs);
  return linearDecay(totalEpochs - decay, decay);
}
