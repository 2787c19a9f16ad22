/**
 * The run report as one self-contained HTML file: Chart.js (its UMD build, inlined from node_modules) draws the
 * loss and metric curves, sample grids are inlined as data: URIs, and settings and evaluation figures are plain
 * tables. Nothing is fetched, so the file opens offline from anywhere (mail it, attach it to an issue).
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { RunData } from './data.js';

export type RunStatus = 'running' | 'finished' | 'stopped';

export interface ReportOptions {
  /** 'running' makes the page reload itself every `refreshSeconds`. Default: inferred from the run's files. */
  status?: RunStatus;
  refreshSeconds?: number;
  /** At most this many sample images are inlined (evenly spaced over the run, first and last always). */
  maxSamples?: number;
  /** …and at most this many bytes of them (fewer images are picked when they are large). */
  sampleBytes?: number;
  /** Curves are averaged down to at most this many points per series. */
  maxPoints?: number;
  now?: Date;
}

let chartJs: string | undefined;

/** Chart.js' minified UMD build (sets `window.Chart`), read once from the installed package. */
export function chartJsSource(): string {
  if (chartJs === undefined) {
    const require = createRequire(import.meta.url);
    const dist = path.dirname(require.resolve('chart.js'));
    const file = ['chart.umd.min.js', 'chart.umd.js'].map((n) => path.join(dist, n)).find((f) => fs.existsSync(f));
    if (!file) throw new Error(`chart.js: no UMD build in ${dist}`);
    chartJs = fs
      .readFileSync(file, 'utf8')
      .replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n')
      .replace(/<\/script/gi, '<\\/script');
  }
  return chartJs;
}

const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A number for a table: integers as they are, others with 4 significant digits. */
export function formatFigure(v: unknown): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : Number(v.toPrecision(4)).toString();
  }
  if (v === null || v === undefined) return '–';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const isScalar = (v: unknown) => v === null || ['number', 'string', 'boolean'].includes(typeof v);
const isPlainObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

function kvTable(entries: [string, unknown][], cls = 'kv'): string {
  if (!entries.length) return '';
  return `<table class="${cls}"><tbody>${entries.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(formatFigure(v))}</td></tr>`).join('')}</tbody></table>`;
}

function objectsTable(rows: Record<string, unknown>[]): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r).filter((k) => isScalar(r[k]))))];
  const head = `<tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  const body = rows.map((r) => `<tr>${cols.map((c) => `<td>${esc(formatFigure(r[c]))}</td>`).join('')}</tr>`).join('');
  return `<table class="grid"><thead>${head}</thead><tbody>${body}</tbody></table>`;
}

/**
 * Evaluation figures of any variant as tables: scalars as key/value rows; sibling objects of figures (generated
 * vs real, model vs baseline) side by side; arrays of objects (per-class figures) as tables of their own.
 */
export function figuresHtml(value: unknown, title = ''): string {
  const h = (t: string) => (t ? `<h4>${esc(t)}</h4>` : '');
  if (Array.isArray(value)) {
    if (value.length && value.every(isPlainObject)) return h(title) + objectsTable(value as Record<string, unknown>[]);
    return h(title) + kvTable(value.map((v, i) => [String(i), v]));
  }
  if (!isPlainObject(value)) return h(title) + kvTable([[title || 'value', value]]);
  const entries = Object.entries(value);
  const scalars = entries.filter(([, v]) => isScalar(v));
  const objects = entries.filter(([, v]) => isPlainObject(v)) as [string, Record<string, unknown>][];
  const arrays = entries.filter(([, v]) => Array.isArray(v));
  let out = h(title) + kvTable(scalars);
  const sub = (k: string) => (title ? `${title} · ${k}` : k);
  if (objects.length >= 2 || (objects.length === 1 && !scalars.length && !arrays.length)) {
    // Side by side: rows are the scalar figures the objects have, columns the objects.
    const names = objects.map(([k]) => k);
    const keys = [...new Set(objects.flatMap(([, o]) => Object.keys(o).filter((k) => isScalar(o[k]))))];
    if (keys.length) {
      const head = `<tr><th></th>${names.map((n) => `<th>${esc(n)}</th>`).join('')}</tr>`;
      const body = keys
        .map(
          (k) => `<tr><th>${esc(k)}</th>${objects.map(([, o]) => `<td>${esc(formatFigure(o[k]))}</td>`).join('')}</tr>`,
        )
        .join('');
      out += `<table class="grid"><thead>${head}</thead><tbody>${body}</tbody></table>`;
    }
    for (const [k, o] of objects) {
      const rest = Object.fromEntries(Object.entries(o).filter(([, v]) => !isScalar(v)));
      if (Object.keys(rest).length) out += figuresHtml(rest, sub(k));
    }
  } else {
    for (const [k, o] of objects) out += figuresHtml(o, sub(k));
  }
  for (const [k, a] of arrays) out += figuresHtml(a, sub(k));
  return out;
}

export interface Curve {
  name: string;
  /** [step, value] pairs, averaged down to the point budget. */
  raw: [number, number][];
  /** Debiased exponential moving average of the same series. */
  smooth: [number, number][];
}

/** Downsamples one series of `entries[name]` by bucket means and adds a smoothed copy. */
export function curve(entries: Record<string, number>[], name: string, maxPoints = 1000): Curve {
  const pts = entries
    .filter((e) => typeof e[name] === 'number' && Number.isFinite(e[name]))
    .map((e) => [e.step!, e[name]!] as [number, number]);
  const span = Math.max(1, Math.round(pts.length / 40));
  const alpha = 2 / (span + 1);
  let ema = 0;
  let weight = 0;
  const smoothFull = pts.map(([s, v]): [number, number] => {
    ema = (1 - alpha) * ema + alpha * v;
    weight = (1 - alpha) * weight + alpha;
    return [s, ema / weight];
  });
  const down = (xs: [number, number][]): [number, number][] => {
    if (xs.length <= maxPoints) return xs;
    const out: [number, number][] = [];
    const per = xs.length / maxPoints;
    for (let b = 0; b < maxPoints; b++) {
      const chunk = xs.slice(Math.floor(b * per), Math.floor((b + 1) * per));
      if (!chunk.length) continue;
      out.push([chunk.at(-1)![0], chunk.reduce((a, [, v]) => a + v, 0) / chunk.length]);
    }
    return out;
  };
  const round = (xs: [number, number][]) => xs.map(([s, v]): [number, number] => [s, Number(v.toPrecision(5))]);
  return { name, raw: round(down(pts)), smooth: round(down(smoothFull)) };
}

/** Losses grouped for charts: the discriminator's, the generator's, and the other terms (L1, cycle, identity…). */
export function lossGroups(names: string[]): { title: string; names: string[] }[] {
  const d = names.filter((n) => /^D(_|$|[A-Z(])/.test(n));
  const g = names.filter((n) => /^G(_|$|[A-Z(])/.test(n));
  const rest = names.filter((n) => !d.includes(n) && !g.includes(n));
  return [
    { title: 'Discriminator loss', names: d },
    { title: 'Generator loss', names: g },
    { title: 'Other loss terms', names: rest },
  ].filter((x) => x.names.length);
}

function mimeOf(file: string): string {
  const ext = path.extname(file).toLowerCase();
  return ext === '.jpg' || ext === '.jpeg' ? 'image/jpeg' : ext === '.webp' ? 'image/webp' : 'image/png';
}

/** Evenly spaced picks of the samples within the count and byte budgets, first and last always kept. */
function pickSamples(
  run: RunData,
  maxSamples: number,
  maxBytes: number,
): { step: number; final: boolean; file: string; src: string }[] {
  const all = run.samples;
  const sizes = all.map((s) => {
    try {
      return fs.statSync(path.join(run.dir, s.file)).size;
    } catch {
      return -1;
    }
  });
  const ok = all.map((_, i) => i).filter((i) => sizes[i]! > 0);
  const evenly = (n: number) => {
    if (ok.length <= n) return ok;
    if (n <= 1) return ok.slice(-1);
    return [...new Set(Array.from({ length: n }, (_, k) => ok[Math.round((k * (ok.length - 1)) / (n - 1))]!))];
  };
  let n = Math.min(maxSamples, ok.length);
  let picked = evenly(n);
  while (n > 1 && picked.reduce((a, i) => a + sizes[i]!, 0) > maxBytes) picked = evenly(--n);
  const out: { step: number; final: boolean; file: string; src: string }[] = [];
  for (const i of picked) {
    const s = all[i]!;
    try {
      const data = fs.readFileSync(path.join(run.dir, s.file));
      out.push({
        step: s.step,
        final: s.final,
        file: s.file,
        src: `data:${mimeOf(s.file)};base64,${data.toString('base64')}`,
      });
    } catch {
      // Removed between listing and reading: leave it out.
    }
  }
  return out;
}

/** From the files alone: finished (final samples or all steps logged), running (logged lately) or stopped. */
export function inferStatus(run: RunData, now = Date.now()): RunStatus {
  if (run.samples.some((s) => s.final) || (run.totalSteps !== undefined && run.lastStep >= run.totalSteps))
    return 'finished';
  return now - run.updated < 120_000 ? 'running' : 'stopped';
}

function duration(seconds: number): string {
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(2)} h`;
}

const CSS = `
:root{color-scheme:light dark;--fg:#1d2430;--muted:#667085;--bg:#fff;--card:#f6f7f9;--line:#d9dde3;--accent:#2563eb}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--muted:#9aa4b2;--bg:#12151a;--card:#1b2028;--line:#2c333d;--accent:#60a5fa}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:20px 28px 12px;border-bottom:1px solid var(--line)}h1{margin:0 0 4px;font-size:22px}h2{font-size:16px;margin:0 0 12px}
h4{margin:14px 0 6px;font-size:13px;color:var(--muted);font-weight:600}
.sub{color:var(--muted)}.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;margin-left:8px;vertical-align:middle}
.badge.running{background:#fef3c7;color:#92400e}.badge.finished{background:#dcfce7;color:#166534}.badge.stopped{background:#fee2e2;color:#991b1b}
main{padding:16px 28px 40px;display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px;max-width:1500px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px}section.wide{grid-column:1/-1}
.chart{position:relative;height:260px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin-bottom:6px}th,td{padding:3px 10px 3px 0;text-align:left;vertical-align:top}
table.kv th{color:var(--muted);font-weight:500;white-space:nowrap}table.grid th,table.grid td{border-bottom:1px solid var(--line);padding-right:14px}
table.grid td{text-align:right}table.grid thead th{text-align:right}table.grid tbody th{color:var(--muted);font-weight:500}
.samples{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start}.samples .big{width:min(100%,480px)}
.big img{width:100%;image-rendering:pixelated;border-radius:6px;border:1px solid var(--line);background:#000}
.thumbs{display:flex;gap:6px;flex-wrap:wrap;margin-top:10px}.thumbs button{padding:0;border:2px solid transparent;border-radius:5px;background:none;cursor:pointer}
.thumbs button.on{border-color:var(--accent)}.thumbs img{height:56px;display:block;image-rendering:pixelated;border-radius:3px}
input[type=range]{width:100%}.empty{color:var(--muted);font-style:italic}details{margin-top:8px}summary{cursor:pointer;color:var(--muted)}
footer{padding:0 28px 24px;color:var(--muted);font-size:12px}
`;

/** The client side: draws the charts and wires the sample slider. Runs after Chart.js' UMD script. */
const CLIENT = `
(function(){
  var data = JSON.parse(document.getElementById('gantry-data').textContent);
  var palette = ['#2563eb','#dc2626','#16a34a','#d97706','#7c3aed','#0891b2','#db2777','#4b5563'];
  var dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  if (window.Chart) {
    Chart.defaults.color = dark ? '#9aa4b2' : '#667085';
    Chart.defaults.borderColor = dark ? '#2c333d' : '#e5e7eb';
    Chart.defaults.font.family = 'system-ui, sans-serif';
  }
  function alpha(hex, a){ var n=parseInt(hex.slice(1),16); return 'rgba('+(n>>16)+','+((n>>8)&255)+','+(n&255)+','+a+')'; }
  function quantile(xs, q){ if(!xs.length) return 0; var s=xs.slice().sort(function(a,b){return a-b}); return s[Math.min(s.length-1, Math.max(0, Math.round(q*(s.length-1))))]; }
  (data.charts || []).forEach(function(c){
    var el = document.getElementById(c.id);
    if (!el || !window.Chart) return;
    var sets = [];
    var all = [];
    var lastX = 0;
    c.curves.forEach(function(cv){ cv.raw.forEach(function(p){ if (p[0] > lastX) lastX = p[0]; }); });
    c.curves.forEach(function(cv, i){
      var col = palette[i % palette.length];
      var many = cv.raw.length > 30;
      if (many) sets.push({ label: cv.name + ' (raw)', data: cv.raw.map(function(p){return {x:p[0],y:p[1]}}), borderColor: alpha(col,0.25), borderWidth: 1, pointRadius: 0, tension: 0 });
      sets.push({ label: cv.name, data: (many ? cv.smooth : cv.raw).map(function(p){return {x:p[0],y:p[1]}}), borderColor: col, backgroundColor: col, borderWidth: 2, pointRadius: many ? 0 : 2, tension: 0 });
      cv.raw.forEach(function(p){ all.push(p[1]); });
    });
    // Early spikes would flatten the rest of the curve: clip the y range to the bulk of the values.
    var lo = quantile(all, 0.01), hi = quantile(all, 0.99), pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
    var yScale = { title: { display: true, text: c.yLabel || 'value' } };
    if (Math.max.apply(null, all) - Math.min.apply(null, all) > 3 * (hi - lo) && hi > lo) { yScale.min = lo - pad; yScale.max = hi + pad; }
    new Chart(el, {
      type: 'line',
      data: { datasets: sets },
      options: {
        animation: false, parsing: false, normalized: true, maintainAspectRatio: false,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        scales: { x: { type: 'linear', min: 0, max: lastX, title: { display: true, text: 'step' } }, y: yScale },
        plugins: {
          legend: { labels: { boxHeight: 3, filter: function(item){ return !/ \\(raw\\)$/.test(item.text); } } },
          tooltip: { filter: function(item){ return !/ \\(raw\\)$/.test(item.dataset.label); } }
        }
      }
    });
  });
  var samples = data.samples || [];
  var big = document.getElementById('sample-big');
  var cap = document.getElementById('sample-caption');
  var slider = document.getElementById('sample-slider');
  var thumbs = document.querySelectorAll('.thumbs button');
  function show(i){
    var s = samples[i]; if (!s || !big) return;
    big.src = s.src; cap.textContent = (s.final ? 'final (step ' + s.step + ')' : 'step ' + s.step) + ' · ' + (i + 1) + ' of ' + samples.length;
    if (slider) slider.value = String(i);
    thumbs.forEach(function(b, j){ b.classList.toggle('on', j === i); });
    try { sessionStorage.setItem('gantry-sample-' + data.id, String(i)); } catch (e) {}
  }
  if (slider) slider.addEventListener('input', function(){ show(Number(slider.value)); });
  thumbs.forEach(function(b, j){ b.addEventListener('click', function(){ show(j); }); });
  var saved = null; try { saved = sessionStorage.getItem('gantry-sample-' + data.id); } catch (e) {}
  show(saved !== null && Number(saved) < samples.length ? Number(saved) : samples.length - 1);
  // Keep the scroll position across the auto-refresh of a running report.
  try {
    var y = sessionStorage.getItem('gantry-scroll-' + data.id); if (y) window.scrollTo(0, Number(y));
    window.addEventListener('beforeunload', function(){ sessionStorage.setItem('gantry-scroll-' + data.id, String(window.scrollY)); });
  } catch (e) {}
  document.documentElement.setAttribute('data-rendered', 'true');
})();
`;

/** The report of `run` as one HTML document. */
export function renderReport(run: RunData, o: ReportOptions = {}): string {
  const now = o.now ?? new Date();
  const status = o.status ?? inferStatus(run, now.getTime());
  const info = run.info;
  const options = (info?.options ?? {}) as Record<string, unknown>;
  const maxPoints = o.maxPoints ?? 1000;

  const charts: { id: string; title: string; yLabel: string; curves: Curve[] }[] = [];
  for (const g of lossGroups(run.lossNames)) {
    charts.push({
      id: `chart-${charts.length}`,
      title: g.title,
      yLabel: 'loss',
      curves: g.names.map((n) => curve(run.losses, n, maxPoints)),
    });
  }
  for (const n of run.metricNames) {
    charts.push({
      id: `chart-${charts.length}`,
      title: `Metric: ${n}`,
      yLabel: n,
      curves: [curve(run.metrics, n, maxPoints)],
    });
  }
  const samples = pickSamples(run, o.maxSamples ?? 16, o.sampleBytes ?? 6_000_000);

  const last = run.losses.at(-1) ?? {};
  const stepsText = run.totalSteps !== undefined ? `${run.lastStep} of ${run.totalSteps}` : String(run.lastStep);
  const summary: [string, unknown][] = [
    ['variant', run.variant],
    ['backend', info?.backend ?? '–'],
    ['started', info?.created ?? '–'],
    ['steps', stepsText],
    ['epoch', typeof last.epoch === 'number' ? last.epoch.toFixed(2) : '–'],
    ['training time', run.seconds !== undefined ? duration(run.seconds) : '–'],
    ['steps/s', run.seconds ? (run.lastStep > 1 ? ((run.losses.length - 1) / run.seconds).toFixed(2) : '–') : '–'],
    ...run.lossNames.map((n): [string, unknown] => [`last ${n}`, last[n]]),
  ];
  const extra = Object.entries(info ?? {}).filter(
    ([k]) => !['variant', 'backend', 'created', 'options', 'args'].includes(k),
  );

  const statusText =
    status === 'running'
      ? `running · refreshes every ${o.refreshSeconds ?? 30} s`
      : status === 'finished'
        ? 'finished'
        : `stopped at step ${run.lastStep}`;
  const refresh = status === 'running' ? `<meta http-equiv="refresh" content="${o.refreshSeconds ?? 30}">` : '';
  const payload = {
    id: run.id,
    charts,
    samples: samples.map((s) => ({ step: s.step, final: s.final, src: s.src })),
  };
  const json = JSON.stringify(payload)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

  const chartSections = charts.length
    ? charts
        .map(
          (c) =>
            `<section><h2>${esc(c.title)}</h2><div class="chart"><canvas id="${c.id}" role="img" aria-label="${esc(c.title)}"></canvas></div></section>`,
        )
        .join('\n')
    : '<section><h2>Losses</h2><p class="empty">No steps logged yet.</p></section>';

  const samplesSection = samples.length
    ? `<section class="wide"><h2>Samples as training went on</h2>
<div class="samples"><div class="big"><img id="sample-big" alt="sample grid" src="${samples.at(-1)!.src}"><div id="sample-caption" class="sub"></div>
${samples.length > 1 ? `<input id="sample-slider" type="range" min="0" max="${samples.length - 1}" value="${samples.length - 1}" aria-label="sample step">` : ''}</div></div>
<div class="thumbs">${samples.map((s) => `<button type="button" title="${s.final ? 'final' : `step ${s.step}`}"><img alt="step ${s.step}" src="${s.src}"></button>`).join('')}</div>
${run.samples.length > samples.length ? `<p class="sub">${samples.length} of ${run.samples.length} sample images shown; all are in <code>samples/</code>.</p>` : ''}</section>`
    : '<section class="wide"><h2>Samples</h2><p class="empty">No sample images yet.</p></section>';

  const evaluationSection = run.evaluation
    ? `<section class="wide"><h2>Evaluation</h2>${figuresHtml(run.evaluation)}</section>`
    : `<section class="wide"><h2>Evaluation</h2><p class="empty">Not evaluated yet: run <code>pnpm --filter ${esc(run.variant)} evaluate --checkpoint ${esc(run.dir)}</code>.</p></section>`;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh}
<title>${esc(run.variant)} · ${esc(run.id)} · Gantry report</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${esc(run.variant)} <span class="sub">${esc(run.id)}</span><span class="badge ${status}">${esc(statusText)}</span></h1>
<div class="sub">${esc(run.dir)} · report written ${esc(now.toISOString())}</div>
</header>
<main>
<section><h2>Run</h2>${kvTable(summary)}${extra.length ? kvTable(extra) : ''}</section>
<section><h2>Settings</h2>${Object.keys(options).length ? kvTable(Object.entries(options)) : '<p class="empty">No run.json.</p>'}
${info?.args ? `<details><summary>command-line arguments</summary>${kvTable(Object.entries(info.args as Record<string, unknown>))}</details>` : ''}</section>
${chartSections}
${samplesSection}
${evaluationSection}
</main>
<footer>Gantry training report · charts by Chart.js (inlined) · the page needs no network.</footer>
<script type="application/json" id="gantry-data">${json}</script>
<script>${chartJsSource()}</script>
<script>${CLIENT}</script>
</body>
</html>
`;
}
