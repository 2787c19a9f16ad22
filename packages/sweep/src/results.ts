/**
 * A sweep's results: the trials ranked by the spec's metric as a text table (`gantry runs --sweep NAME`) and as
 * one self-contained HTML page (the table, and per varied setting a plot of the metric against it; Chart.js is
 * inlined from node_modules as in the run report).
 */
import { atomicWrite, chartJsSource, formatFigure, textTable } from '@gantry/core';
import type { SweepMeta, TrialRow } from './queue.js';
import type { Scalar } from './spec.js';

/** Trials with the metric first (best first), then the others in trial order. */
export function rankRows(meta: SweepMeta, rows: TrialRow[]): (TrialRow & { rank?: number })[] {
  const sign = meta.spec.goal === 'max' ? -1 : 1;
  const scored = rows.filter((r) => typeof r.result?.metric === 'number');
  scored.sort((a, b) => sign * (a.result!.metric! - b.result!.metric!) || a.trial.localeCompare(b.trial));
  const rest = rows.filter((r) => typeof r.result?.metric !== 'number');
  return [...scored.map((r, i) => ({ ...r, rank: i + 1 })), ...rest];
}

/** The names of the settings that vary between trials (seed last). */
export function variedNames(meta: SweepMeta): string[] {
  const names = [...new Set(meta.trials.flatMap((t) => Object.keys(t.settings)))];
  return names.sort((a, b) => (a === 'seed' ? 1 : b === 'seed' ? -1 : 0));
}

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function stateText(r: TrialRow): string {
  if (r.state === 'failed') return `failed: ${r.error ?? ''}`;
  if (r.state === 'completed' && r.result?.metric === undefined) return 'done (no metric)';
  return r.state === 'completed' ? 'done' : r.state;
}

export function sweepTable(meta: SweepMeta, rows: TrialRow[]): string {
  const names = variedNames(meta);
  const ranked = rankRows(meta, rows);
  const header = ['#', 'TRIAL', ...names.map(kebab), meta.spec.metric, 'STEPS', 'STATE', 'RUN'];
  const body = ranked.map((r) => [
    r.rank !== undefined ? String(r.rank) : '–',
    r.trial,
    ...names.map((n) => (r.settings[n] === undefined ? '–' : String(r.settings[n]))),
    r.result?.metric !== undefined ? formatFigure(r.result.metric) : '–',
    r.result
      ? String(r.result.step) + (r.result.resumedFrom !== undefined ? ` (resumed at ${r.result.resumedFrom})` : '')
      : '–',
    stateText(r),
    r.result ? `${r.result.host}:${r.result.run}` : '',
  ]);
  const numeric = [true, false, ...names.map(() => false), true, false, false, false];
  const done = rows.filter((r) => r.state === 'completed').length;
  const failed = rows.filter((r) => r.state === 'failed').length;
  return `${textTable([header, ...body], numeric)}\n\nsweep ${meta.spec.name} (${meta.spec.variant}): ${done} of ${rows.length} trials done${failed ? `, ${failed} failed` : ''}; ranked by ${meta.spec.metric} (${meta.spec.goal === 'max' ? 'higher' : 'lower'} is better)`;
}

const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The sweep report as one HTML document (no network needed to open it). */
export function renderSweepReport(meta: SweepMeta, rows: TrialRow[], now = new Date()): string {
  const names = variedNames(meta);
  const ranked = rankRows(meta, rows);
  const metric = meta.spec.metric;
  // One plot per varied setting: each finished trial as a point (setting, metric); strings are categories.
  const plots = names.map((n, i) => {
    const points = ranked
      .filter((r) => r.result?.metric !== undefined && r.settings[n] !== undefined)
      .map((r) => ({ x: r.settings[n] as Scalar, y: r.result!.metric!, trial: r.trial }));
    // Seeds are names, not quantities: one column each.
    const numeric = n !== 'seed' && points.every((p) => typeof p.x === 'number');
    const xs = points.map((p) => p.x as number);
    const log = numeric && xs.length > 1 && Math.min(...xs) > 0 && Math.max(...xs) / Math.min(...xs) >= 20;
    return { id: `plot-${i}`, name: kebab(n), numeric, log, points };
  });
  const payload = JSON.stringify({ metric, plots }).replace(/</g, '\\u003c');
  const head = ['#', 'trial', ...names.map(kebab), metric, 'steps', 'state', 'run'];
  const body = ranked
    .map(
      (r) =>
        `<tr${r.rank === 1 ? ' class="best"' : ''}><td>${r.rank ?? '–'}</td><td>${esc(r.trial)}</td>${names
          .map((n) => `<td>${esc(r.settings[n] ?? '–')}</td>`)
          .join(
            '',
          )}<td>${r.result?.metric !== undefined ? esc(formatFigure(r.result.metric)) : '–'}</td><td>${r.result ? `${r.result.step}${r.result.resumedFrom !== undefined ? ` (resumed at ${r.result.resumedFrom})` : ''}` : '–'}</td><td>${esc(stateText(r))}</td><td class="run">${r.result ? esc(`${r.result.host}:${r.result.run}`) : ''}</td></tr>`,
    )
    .join('\n');
  const spec = meta.spec;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sweep ${esc(spec.name)} · Gantry</title>
<style>
:root{color-scheme:light dark;--fg:#1d2430;--muted:#667085;--bg:#fff;--card:#f6f7f9;--line:#d9dde3}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--muted:#9aa4b2;--bg:#12151a;--card:#1b2028;--line:#2c333d}}
body{margin:0;font:14px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:20px 28px 12px;border-bottom:1px solid var(--line)}h1{margin:0 0 4px;font-size:22px}h2{font-size:16px;margin:0 0 12px}
.sub{color:var(--muted)}main{padding:16px 28px 40px;display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px;max-width:1500px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px}section.wide{grid-column:1/-1;overflow-x:auto}
.chart{position:relative;height:280px}table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 14px 3px 0;text-align:left;border-bottom:1px solid var(--line)}th{color:var(--muted);font-weight:500}
tr.best td{font-weight:600}td.run{color:var(--muted);font-size:12px}
</style>
</head>
<body>
<header><h1>Sweep ${esc(spec.name)} <span class="sub">${esc(spec.variant)}</span></h1>
<div class="sub">${rows.filter((r) => r.state === 'completed').length} of ${rows.length} trials done · ranked by ${esc(metric)} (${spec.goal === 'max' ? 'higher' : 'lower'} is better) · submitted ${esc(meta.created)} · report written ${esc(now.toISOString())}</div></header>
<main>
<section class="wide"><h2>Trials</h2><table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>
${body}
</tbody></table></section>
${plots.map((p) => `<section><h2>${esc(metric)} against ${esc(p.name)}</h2><div class="chart"><canvas id="${p.id}" role="img" aria-label="${esc(metric)} against ${esc(p.name)}"></canvas></div></section>`).join('\n')}
<section class="wide"><h2>Spec</h2><pre>${esc(JSON.stringify(spec, (_, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [kebab(k), x])) : v), 2))}</pre></section>
</main>
<script type="application/json" id="sweep-data">${payload}</script>
<script>${chartJsSource()}</script>
<script>
(function(){
  var data = JSON.parse(document.getElementById('sweep-data').textContent);
  if (window.Chart) data.plots.forEach(function(p){
    var el = document.getElementById(p.id); if (!el) return;
    var cats = p.numeric ? null : Array.from(new Set(p.points.map(function(q){ return String(q.x); })));
    new Chart(el, {
      type: 'scatter',
      data: { datasets: [{ label: data.metric, data: p.points.map(function(q){ return { x: p.numeric ? q.x : String(q.x), y: q.y, trial: q.trial }; }), backgroundColor: '#2563eb', pointRadius: 4 }] },
      options: {
        animation: false, maintainAspectRatio: false,
        scales: {
          x: p.numeric ? { type: p.log ? 'logarithmic' : 'linear', grace: '8%', title: { display: true, text: p.name } } : { type: 'category', labels: cats, offset: true, title: { display: true, text: p.name } },
          y: { title: { display: true, text: data.metric } }
        },
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: function(c){ return c.raw.trial + ': ' + p.name + ' ' + c.raw.x + ', ' + data.metric + ' ' + c.raw.y; } } } }
      }
    });
  });
  document.documentElement.setAttribute('data-rendered', 'true');
})();
</script>
</body>
</html>
`;
}

export function writeSweepReport(file: string, meta: SweepMeta, rows: TrialRow[]): string {
  atomicWrite(file, renderSweepReport(meta, rows));
  return file;
}
