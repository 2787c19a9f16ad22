/** What every command shares: the flags every command of every app has, and the shape of one command. */
import type { Options } from 'yargs';
import { flag, readFlags } from '../flags.js';

/** Flags every command of every app has. */
export const COMMON_FLAGS = {
  backend: flag.string(
    'compute backend: node-gpu, webgpu, node, wasm or cpu; default: the first that starts, in that order (webgpu only on a hardware GPU adapter); env GANTRY_BACKEND',
    { transient: true },
  ),
  verbose: flag.boolean('print stack traces on errors', { default: false, transient: true }),
};

/** The --backend a command was given. */
export const backendOf = (a: Record<string, unknown>): string | undefined => readFlags(COMMON_FLAGS, a).backend;

/** One command of an app: its name, help line, yargs options (from typed flags) and what it does. */
export interface Command {
  name: string;
  describe: string;
  options: Record<string, Options>;
  run(args: Record<string, unknown>): Promise<unknown> | unknown;
}

/** The --checkpoint flag of the commands that use a trained model. */
export const checkpointFlag = (variant: string) => ({
  checkpoint: flag.string(`run or checkpoint directory (default: the latest ${variant} run)`, { transient: true }),
});
