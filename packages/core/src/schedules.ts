/** Learning-rate schedules: functions from the epoch (0-based, fractional allowed) to a multiplier of the base rate. */
export type LrSchedule = (epoch: number) => number;

export const constantLr: LrSchedule = () => 1;

/**
 * The pix2pix/CycleGAN schedule: the base rate for `constant` epochs, then linearly down to zero over
 * `decay` more epochs (the reference's lambda_rule with epoch_count 1).
 */
export function linearDecay(constant: number, decay: number): LrSchedule {
  return (epoch) => {
    if (decay <= 0) return 1;
    return Math.max(0, 1 - Math.max(0, epoch + 1 - constant) / (decay + 1));
  };
}
