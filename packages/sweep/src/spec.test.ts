import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GantryError } from '@gantry/core';
import { describe, expect, it } from 'vitest';
import { prepareSweep } from './prepare.js';
import type { SweepMeta, TrialRow } from './queue.js';
import { rankRows, renderSweepReport, sweepTable } from './results.js';
import { expandTrials, parseSpec, readSpec } from './spec.js';
import { checkTrainArgs, loadVariant } from './variants.js';

const base = { variant: 'dcgan', metric: 'images.frechet' };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-spec-'));
const file = (name: string, text: string) => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
};

describe('sweep specs', () => {
  it('a grid gives every combination once per seed, holding the other flags', () => {
    const spec = parseSpec({
      ...base,
      flags: { steps: 10, 'batch-size': 8 },
      grid: { lr: [0.1, 0.2], ngf: [4, 8, 16] },
      seeds: [1, 2],
    });
    const trials = expandTrials(spec);
    expect(trials).toHaveLength(12);
    expect(trials.map((t) => t.id).slice(0, 3)).toEqual(['t01', 't02', 't03']);
    expect(new Set(trials.map((t) => JSON.stringify(t.settings))).size).toBe(12);
    expect(trials[0]!.settings).toEqual({ lr: 0.1, ngf: 4, seed: 1 });
    expect(trials[0]!.args).toEqual(['--steps=10', '--batch-size=8', '--lr=0.1', '--ngf=4', '--seed=1']);
    expect(trials[0]!.sources).toMatchObject({ lr: 'grid.lr', batchSize: 'flags.batch-size', seed: 'seeds' });
  });

  it('a list gives its settings in order; random draws are within bounds and the same each time', () => {
    const list = expandTrials(parseSpec({ ...base, list: [{ lr: 0.1 }, { lr: 0.3, ngf: 8 }] }));
    expect(list.map((t) => t.settings)).toEqual([{ lr: 0.1 }, { lr: 0.3, ngf: 8 }]);
    const doc = {
      ...base,
      random: {
        count: 50,
        flags: {
          lr: { 'log-uniform': [1e-4, 1e-2] },
          ngf: { choice: [4, 8] },
          beta1: { uniform: [0.1, 0.9] },
          'd-layers': { int: [1, 3] },
        },
      },
    };
    const a = expandTrials(parseSpec(doc));
    expect(a).toHaveLength(50);
    expect(expandTrials(parseSpec(doc))).toEqual(a);
    for (const t of a) {
      const s = t.settings as Record<string, number>;
      expect(s.lr).toBeGreaterThanOrEqual(1e-4);
      expect(s.lr).toBeLessThanOrEqual(1e-2);
      expect([4, 8]).toContain(s.ngf);
      expect(s.beta1).toBeGreaterThanOrEqual(0.1);
      expect(s.beta1).toBeLessThanOrEqual(0.9);
      expect([1, 2, 3]).toContain(s.dLayers);
    }
    expect(new Set(a.map((t) => t.settings.dLayers)).size).toBe(3);
    const other = expandTrials(parseSpec({ ...doc, random: { ...doc.random, seed: 7 } }));
    expect(other).not.toEqual(a);
  });

  it.each([
    [{ metric: 'x' }, 'variant: expected a variant name'],
    [{ ...base, metric: '' }, 'metric: expected a figure'],
    [{ ...base, goal: 'low' }, 'goal: expected min or max, got "low"'],
    [{ ...base, grid: { lr: [] } }, 'grid.lr: expected a non-empty list'],
    [{ ...base, grid: { lr: [{ a: 1 }] } }, 'grid.lr: expected a non-empty list'],
    [{ ...base, grid: { lr: [1] }, list: [{ lr: 1 }] }, 'list: expected one of grid, list or random'],
    [{ ...base, flags: { out: 'x' } }, 'flags.out: expected a flag other than --out (the worker sets it)'],
    [{ ...base, flags: { '--lr': 1 } }, 'flags.--lr: expected a flag name as on the command line'],
    [{ ...base, flags: { lr: 1 }, grid: { lr: [1, 2] } }, 'flags.lr: expected a flag that is not also varied'],
    [{ ...base, seeds: [1, 1] }, 'seeds: expected distinct seeds'],
    [{ ...base, seeds: [-1] }, 'seeds: expected a non-empty list of non-negative integers'],
    [{ ...base, flags: { seed: 3 }, seeds: [1] }, 'seeds: expected no seeds list when the seed is set in flags'],
    [{ ...base, random: { count: 0, flags: { lr: { uniform: [0, 1] } } } }, 'random.count: expected a positive'],
    [
      { ...base, random: { count: 2, flags: { lr: { uniform: [1, 0] } } } },
      'random.flags.lr.uniform: expected [lo, hi]',
    ],
    [{ ...base, random: { count: 2, flags: { lr: { normal: [0, 1] } } } }, 'random.flags.lr: expected {uniform'],
    [
      { ...base, random: { count: 2, flags: { lr: { 'log-uniform': [0, 1] } } } },
      'random.flags.lr.log-uniform: expected positive bounds',
    ],
    [{ ...base, evaluate: { json: 'x' } }, 'evaluate.json: expected a flag other than --json'],
    [{ ...base, name: 'a b' }, 'name: expected letters, digits'],
    [{ ...base, grids: {} }, 'grids: expected one of the fields'],
    [{ ...base, grid: { lr: Array(101).fill(1), ngf: Array(101).fill(1) } }, 'grid: expected at most 10000 trials'],
  ])('refuses %j with a one-line error naming the field', (doc, message) => {
    const err = (() => {
      try {
        parseSpec(doc, 'spec.yaml');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(GantryError);
    expect(err!.message).toContain(`spec.yaml: ${message}`);
    expect(err!.message).not.toContain('\n');
  });

  it('reads YAML and JSON files, named after the file unless the spec names itself', () => {
    expect(readSpec(file('a-b.yaml', 'variant: gan\nmetric: generated.frechet\n')).name).toBe('a-b');
    expect(readSpec(file('c.json', JSON.stringify({ ...base, name: 'x1' }))).name).toBe('x1');
    expect(() => readSpec(file('d.yaml', 'variant: [\n'))).toThrow(/d\.yaml: not valid YAML or JSON/);
    expect(() => readSpec(file('e.yaml', 'variant: gan\nvariant: dcgan\nmetric: x\n'))).toThrow(/not valid YAML/);
    expect(() => readSpec(path.join(tmp, 'missing.yaml'))).toThrow(/missing\.yaml: cannot read the sweep spec/);
  });

  it("checks every trial's flags with the variant's own checks, naming the spec field", async () => {
    const bad = async (text: string) => {
      try {
        await prepareSweep(file('p.yaml', text));
      } catch (e) {
        expect(e).toBeInstanceOf(GantryError);
        return (e as Error).message;
      }
      return 'accepted';
    };
    const head = 'variant: dcgan\nmetric: images.frechet\n';
    expect(await bad(`${head}grid:\n  lr: [0.1, 0]\n`)).toBe(
      `${path.join(tmp, 'p.yaml')}: grid.lr: --lr: expected a positive number, got '0'`,
    );
    expect(await bad(`${head}flags:\n  loss: l3\n`)).toContain(
      'flags.loss: --loss: expected one of bce, lsgan, wgan-gp, hinge',
    );
    expect(await bad(`${head}list:\n  - {ngf: 8}\n  - {ngff: 8}\n`)).toContain(
      'list[1].ngff: --ngff: not a flag of dcgan train',
    );
    expect(await bad(`${head}evaluate:\n  count: 0\n`)).toContain(
      'evaluate.count: --count: expected a positive integer',
    );
    expect(await bad(`${head}flags:\n  preset: fast\n`)).toContain('flags.preset:');
    expect(await bad(`variant: pix3pix\nmetric: x\n`)).toContain("variant: unknown variant 'pix3pix'");
    expect(await bad(`${head}grid:\n  lr: [0.1, 0.2]\nseeds: [1, 2]\n`)).toBe('accepted');
    // The worker's check refuses what the worker sets itself, however the job was made.
    await expect(checkTrainArgs(await loadVariant('dcgan'), ['--out=/tmp/x'])).rejects.toThrow(
      /--out: set by the worker/,
    );
    await expect(checkTrainArgs(await loadVariant('gan'), ['--lr', '0.1', 'extra'])).rejects.toThrow(/extra/);
  });
});

describe('sweep results', () => {
  const meta = (goal: 'min' | 'max'): SweepMeta => {
    const spec = parseSpec({ ...base, goal, grid: { lr: [0.1, 0.2, 0.4] } });
    return { spec, trials: expandTrials(spec), created: '2026-01-01T00:00:00Z' };
  };
  const row = (trial: string, lr: number, metric?: number, state = 'completed'): TrialRow => ({
    trial,
    settings: { lr },
    state,
    attempts: 1,
    result:
      metric === undefined
        ? undefined
        : { host: 'h', worker: 'h:1', run: `dcgan/sweep-x-${trial}`, step: 10, seconds: 1, figures: {}, metric },
    error: state === 'failed' ? 'boom' : undefined,
  });
  const rows = [row('t01', 0.1, 3), row('t02', 0.2, 1), row('t03', 0.4, undefined, 'failed')];

  it('ranks by the metric in the direction of the goal, unfinished trials last', () => {
    expect(rankRows(meta('min'), rows).map((r) => [r.trial, r.rank])).toEqual([
      ['t02', 1],
      ['t01', 2],
      ['t03', undefined],
    ]);
    expect(rankRows(meta('max'), rows).map((r) => r.trial)).toEqual(['t01', 't02', 't03']);
    const table = sweepTable(meta('min'), rows);
    expect(table.split('\n')[1]).toMatch(/^1\s+t02\s+0\.2\s+1\s/);
    expect(table).toContain('failed: boom');
    expect(table).toContain('2 of 3 trials done, 1 failed');
  });

  it('writes one self-contained page: the table and the metric against each varied setting', () => {
    const html = renderSweepReport(meta('min'), rows);
    expect(html.match(/<canvas id="plot-/g)).toHaveLength(1);
    expect(html.match(/<tr/g)).toHaveLength(4);
    expect(html).toContain('window.Chart');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
    const data = JSON.parse(/<script type="application\/json" id="sweep-data">(.*?)<\/script>/s.exec(html)![1]!);
    expect(data.plots[0].points).toEqual([
      { x: 0.2, y: 1, trial: 't02' },
      { x: 0.1, y: 3, trial: 't01' },
    ]);
  });
});
