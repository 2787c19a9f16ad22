import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compareRuns, comparisonTable, listRuns, readRunData, resolveRun, runsTable } from '@gantry/core';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gantry-runs-'));
const root = path.join(tmp, 'runs');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function fakeRun(
  id: string,
  o: { created: string; steps: number; total?: number; lr: number; D: number; evaluation?: object },
): string {
  const dir = path.join(root, id);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'run.json'),
    JSON.stringify({
      variant: id.split('/')[0],
      backend: 'wasm',
      created: o.created,
      options: { steps: o.total ?? o.steps, lr: o.lr, ngf: 8 },
    }),
  );
  const lines = Array.from({ length: o.steps }, (_, i) =>
    JSON.stringify({ step: i + 1, epoch: i / 10, D: o.D, G: 2 * o.D, time: 1000 + i * 10 }),
  );
  fs.writeFileSync(path.join(dir, 'losses.jsonl'), `${lines.join('\n')}\n`);
  if (o.evaluation) fs.writeFileSync(path.join(dir, 'evaluation.json'), JSON.stringify(o.evaluation));
  // Old enough not to look like a live run.
  const old = new Date(Date.now() - 3_600_000);
  fs.utimesSync(path.join(dir, 'losses.jsonl'), old, old);
  return dir;
}

const a = fakeRun('cgan/2026-01-01_10-00-00', {
  created: '2026-01-01T10:00:00Z',
  steps: 100,
  lr: 2e-4,
  D: 0.5,
  evaluation: {
    generated: { frechet: 12, meanAccuracy: 0.9, perClass: [{ label: 0, accuracy: 0.8 }] },
    real: { frechet: 1 },
  },
});
const b = fakeRun('cgan/2026-01-02_10-00-00', {
  created: '2026-01-02T10:00:00Z',
  steps: 50,
  total: 80,
  lr: 1e-4,
  D: 0.25,
});
const c = fakeRun('dcgan/2026-01-03_10-00-00', { created: '2026-01-03T10:00:00Z', steps: 10, lr: 2e-4, D: 1 });

describe('gantry runs', () => {
  it('lists runs oldest first with variant, steps, recent losses and headline metrics', () => {
    const rows = listRuns(root);
    expect(rows.map((r) => r.id)).toEqual([
      'cgan/2026-01-01_10-00-00',
      'cgan/2026-01-02_10-00-00',
      'dcgan/2026-01-03_10-00-00',
    ]);
    expect(rows[0]).toMatchObject({
      variant: 'cgan',
      status: 'finished',
      step: 100,
      steps: 100,
      losses: { D: 0.5, G: 1 },
      metrics: { 'generated.frechet': 12 },
    });
    expect(listRuns(root, 'dcgan').map((r) => r.id)).toEqual(['dcgan/2026-01-03_10-00-00']);
    const table = runsTable(rows).split('\n');
    expect(table[0]).toMatch(/^RUN +VARIANT +STATUS +STEPS +BACKEND +LOSSES/);
    expect(table[1]).toContain('100/100');
    expect(table[1]).toContain('D 0.5 G 1');
    expect(table[1]).toContain('frechet 12 meanAccuracy 0.9');
  });

  it('finds a run by directory, id, stamp, variant (latest) or "latest"', () => {
    expect(resolveRun(a, root)).toBe(a);
    expect(resolveRun('cgan/2026-01-02_10-00-00', root)).toBe(b);
    expect(resolveRun('2026-01-01_10-00-00', root)).toBe(a);
    expect(resolveRun('cgan', root)).toBe(b);
    expect(resolveRun('latest', root)).toBe(c);
    expect(() => resolveRun('nope', root)).toThrow(/run 'nope': not a run directory/);
    expect(() => resolveRun('10-00-00', root)).toThrow(/ambiguous/);
  });
});

describe('gantry compare', () => {
  it('puts settings, losses and figures side by side and marks differences', () => {
    const cmp = compareRuns(readRunData(a, root), readRunData(b, root));
    const row = (key: string) => cmp.rows.find((r) => r.key === key)!;
    expect(row('lr')).toMatchObject({ section: 'settings', values: ['2.000e-4', '1.000e-4'], differs: true });
    expect(row('ngf').differs).toBe(false);
    expect(row('D')).toMatchObject({ values: ['0.5', '0.25'] });
    expect(row('generated.frechet').values).toEqual(['12', '–']);
    expect(cmp.rows.some((r) => r.key.includes('['))).toBe(false);
    expect(
      compareRuns(readRunData(a, root), readRunData(b, root), { perClass: true }).rows.some(
        (r) => r.key === 'generated.perClass[0].accuracy',
      ),
    ).toBe(true);
    const text = comparisonTable(cmp);
    expect(text).toMatch(/^ +cgan\/2026-01-01_10-00-00 +cgan\/2026-01-02_10-00-00/);
    expect(text).toMatch(/ {2}lr +2\.000e-4 +1\.000e-4 +\*/);
  });
});

const cli = path.resolve(import.meta.dirname, '..', 'dist', 'cli.js');
describe.skipIf(!fs.existsSync(cli))('the built CLI', () => {
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [cli, ...args], {
      encoding: 'utf8',
      env: { ...process.env, GANTRY_RUNS: root, INIT_CWD: tmp },
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  it('runs, compare and report', () => {
    const list = run(['runs']);
    expect(list.code, list.err).toBe(0);
    expect(list.out).toContain('dcgan/2026-01-03_10-00-00');
    expect(JSON.parse(run(['runs', '--json', '--variant', 'cgan']).out)).toHaveLength(2);
    const cmp = run(['compare', '2026-01-01_10-00-00', 'cgan']);
    expect(cmp.code, cmp.err).toBe(0);
    expect(cmp.out).toContain('[settings]');
    const rep = run(['report', 'cgan']);
    expect(rep.code, rep.err).toBe(0);
    expect(rep.out.trim()).toBe(path.join(b, 'report.html'));
    expect(
      fs.readFileSync(path.join(b, 'report.html'), 'utf8').includes('stopped at step 50'),
      'stopped at step 50',
    ).toBe(true);
  });

  it('fails in one line with exit code 2 on a bad run name or the same run twice', () => {
    const bad = run(['compare', 'nope', 'cgan']);
    expect(bad.code).toBe(2);
    expect(bad.err.trim()).toBe(
      `gantry: error: run 'nope': not a run directory, nor a run under ${root} (see \`pnpm gantry runs\`)`,
    );
    expect(run(['compare', 'cgan', 'cgan/2026-01-02_10-00-00']).err).toMatch(/same run/);
  });
});
