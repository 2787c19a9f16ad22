/** `runs`: the variant's runs with their steps, recent losses and evaluation figures. */
import { listRuns, runsTable } from '../../report/runs.js';
import { runsRoot } from '../../runs/run.js';
import type { Command } from './common.js';

export function runsCommand(variant: string): Command {
  return {
    name: 'runs',
    describe: `list ${variant} runs with their steps, recent losses and evaluation figures`,
    options: {},
    run() {
      const root = runsRoot();
      const rows = listRuns(root, variant);
      console.log(
        rows.length ? runsTable(rows) : `no ${variant} runs in ${root} (train one: pnpm --filter ${variant} train)`,
      );
    },
  };
}
