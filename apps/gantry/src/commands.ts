/**
 * `gantry runs`, `gantry compare RUN RUN` and `gantry report [RUN…]`: what works across every variant's runs; and
 * sweeps (`gantry sweep SPEC`, `gantry worker`, `--sweep NAME` of runs and report: sweep.ts).
 */
import * as path from 'node:path';
import {
  compareRuns,
  comparisonTable,
  GantryError,
  listRuns,
  readRunData,
  resolveRun,
  runsRoot,
  runsTable,
  userPath,
  writeReport,
} from '@gantry/core';
import type { Argv } from 'yargs';
import {
  redisOptions,
  sweepCommand,
  sweepOptions,
  sweepReport,
  sweepRuns,
  workerCommand,
  workerOptions,
} from './sweep.js';

const rootOption = {
  root: { type: 'string', describe: 'where runs live (default: GANTRY_RUNS or <repo>/runs)' },
} as const;

const rootOf = (a: { root?: unknown }) => (a.root ? userPath(String(a.root)) : runsRoot());

export function gantryCommands(y: Argv): Argv {
  return y
    .usage(
      'Gantry: list, compare and report training runs of every variant; sweep settings over many machines.\n\nUsage: pnpm gantry <command> [options]',
    )
    .command(
      'runs',
      'list runs with their variant, steps, recent losses and evaluation figures',
      (c) =>
        c.options({
          ...rootOption,
          variant: { type: 'string', describe: 'only runs of this variant' },
          json: { type: 'boolean', default: false, describe: 'print JSON instead of a table' },
          sweep: { type: 'string', describe: "a sweep's trials ranked by its metric (from the queue's Redis)" },
          ...redisOptions,
        }),
      async (a) => {
        const root = rootOf(a);
        if (a.sweep !== undefined) return sweepRuns(a, root);
        if (a.redis !== undefined || a.local) throw new GantryError('--redis/--local: only with --sweep');
        const rows = listRuns(root, a.variant as string | undefined);
        if (a.json) {
          console.log(JSON.stringify(rows, null, 2));
          return;
        }
        if (!rows.length) {
          console.log(`no runs in ${root}${a.variant ? ` of ${a.variant}` : ''} (train one: pnpm --filter cgan train)`);
          return;
        }
        console.log(runsTable(rows));
        console.log(
          `\n${rows.length} run(s) in ${root}; open <run>/report.html for curves and samples (pnpm gantry report RUN rewrites it)`,
        );
      },
    )
    .command(
      'compare <a> <b>',
      'put two runs side by side: settings, recent losses, evaluation figures',
      (c) =>
        c
          .positional('a', {
            type: 'string',
            describe: 'a run: directory, <variant>/<stamp>, a stamp, a variant (its latest run) or latest',
          })
          .positional('b', { type: 'string', describe: 'the other run' })
          .options({
            ...rootOption,
            'per-class': { type: 'boolean', default: false, describe: 'include per-class figures' },
            json: { type: 'boolean', default: false, describe: 'print JSON instead of a table' },
          }),
      (a) => {
        const root = rootOf(a);
        const [da, db] = [resolveRun(String(a.a), root), resolveRun(String(a.b), root)];
        if (path.resolve(da) === path.resolve(db))
          throw new GantryError(`compare: '${a.a}' and '${a.b}' are the same run (${da})`);
        const c = compareRuns(readRunData(da, root), readRunData(db, root), { perClass: a.perClass as boolean });
        console.log(a.json ? JSON.stringify(c, null, 2) : comparisonTable(c));
      },
    )
    .command(
      'report [runs..]',
      "(re)write runs' report.html (training writes it as it goes; this also adds evaluation figures made later)",
      (c) =>
        c.positional('runs', { type: 'string', array: true, describe: 'runs (default: latest)' }).options({
          ...rootOption,
          all: { type: 'boolean', default: false, describe: 'every run under the root' },
          sweep: { type: 'string', describe: "write a sweep's report (<root>/sweeps/<name>/report.html) instead" },
          ...redisOptions,
        }),
      async (a) => {
        const root = rootOf(a);
        if (a.sweep !== undefined) return sweepReport(a, root);
        const named = (a.runs as string[] | undefined) ?? [];
        const dirs = a.all
          ? listRuns(root).map((r) => r.dir)
          : (named.length ? named : ['latest']).map((r) => resolveRun(r, root));
        for (const d of dirs) console.log(writeReport(d, { root }));
      },
    )
    .command(
      'sweep <spec>',
      'queue one trial per setting and seed of a sweep spec (YAML or JSON; docs/sweeps.md)',
      (c) =>
        c.positional('spec', { type: 'string', describe: 'the sweep spec file' }).options({
          ...rootOption,
          ...redisOptions,
          wait: { type: 'boolean', default: false, describe: 'wait for the trials, then print the ranked table' },
          ...sweepOptions,
        }),
      (a) => sweepCommand(a, rootOf(a)),
    )
    .command(
      'worker',
      'run trials from the queue until stopped (Ctrl-C: running trials are checkpointed and handed back)',
      (c) => c.options({ ...rootOption, ...redisOptions, ...workerOptions }),
      (a) => workerCommand(a, rootOf(a)),
    );
}
