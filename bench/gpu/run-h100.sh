#!/usr/bin/env bash
# One GPU session for issue 35, run once on a lent GPU machine (an H100 with 16 cores, minutes at a time):
#   1. what the machine offers for Vulkan (loader, NVIDIA's driver library, nvidia_icd.json; where the library is there
#      but the JSON is not, a JSON that points at it is written to a temporary directory and used);
#   2. Gantry on WebGPU: the paper-size training steps (pix2pix unet_256, CycleGAN ResNet-9, 256²) and the app
#      defaults, with the adapter named and the reads to the CPU per step counted;
#   3. the same networks and steps in PyTorch on CUDA (when this machine's torch has CUDA) and on Gantry's CPU path.
# Everything goes to $OUT (default bench/gpu/out-<date>): facts.md, the bench tables and JSON, and summary.md with
# the ratios the issue's targets name (≥ 30× Gantry's CPU step, within 3× of PyTorch CUDA, peak GPU memory).
#
#   bench/gpu/run-h100.sh                 the full run (about 10 minutes on an H100)
#   bench/gpu/run-h100.sh --tiny          the script's own check on a CPU-only machine: SwiftShader, quick rows
#
# Needs: node, pnpm install && pnpm build done; chromium (SwiftShader) only for --tiny.
set -uo pipefail
cd "$(dirname "$0")/../.."
TINY=0
[ "${1:-}" = "--tiny" ] && TINY=1
OUT="${OUT:-bench/gpu/out-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
FACTS="$OUT/facts.md"
say() { echo "run-h100: $*" >&2; }
section() { printf '\n## %s\n\n```\n' "$1" >>"$FACTS"; }
endsection() { printf '```\n' >>"$FACTS"; }
run_into_facts() { section "$1"; shift; (timeout 60 "$@" 2>&1 | head -80) >>"$FACTS" || true; endsection; }

# --- 1. Vulkan and GPU facts -----------------------------------------------------------------------------------
printf '# GPU machine facts (%s)\n' "$(date -u +%FT%TZ)" >"$FACTS"
run_into_facts 'uname, CPU' bash -c 'uname -a; nproc; grep -m1 "model name" /proc/cpuinfo; free -g'
run_into_facts 'nvidia-smi' nvidia-smi
run_into_facts 'Vulkan loader and driver libraries (ldconfig)' bash -c \
  'ldconfig -p | grep -E "libvulkan|libGLX_nvidia|libnvidia-glcore|libEGL_nvidia|vk_swiftshader" || echo "none found"'
run_into_facts 'ICD manifests' bash -c \
  'for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do echo "$d:"; ls -la "$d" 2>&1; for f in "$d"/*.json; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done; done'
run_into_facts 'Vulkan environment' bash -c 'env | grep -E "^(VK_|XDG_RUNTIME_DIR|NVIDIA_)" || echo "none set"'
run_into_facts 'vulkaninfo --summary' bash -c 'command -v vulkaninfo >/dev/null && vulkaninfo --summary || echo "vulkaninfo not installed"'

if [ "$TINY" = 1 ]; then
  export GANTRY_BACKEND_ARG=webgpu
  say "--tiny: SwiftShader, quick rows"
else
  # The mend: NVIDIA's Vulkan driver lives in libGLX_nvidia.so.0; without nvidia_icd.json the loader cannot find it.
  has_icd=0
  for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
    ls "$d"/nvidia_icd*.json >/dev/null 2>&1 && has_icd=1
  done
  nvlib=$(ldconfig -p | awk '/libGLX_nvidia.so.0/ {print $NF; exit}')
  if [ "$has_icd" = 0 ] && [ -n "$nvlib" ]; then
    icd="$OUT/nvidia_icd.json"
    printf '{ "file_format_version": "1.0.0", "ICD": { "library_path": "%s", "api_version": "1.3" } }\n' "$nvlib" >"$icd"
    export VK_ICD_FILENAMES="$PWD/$icd"
    printf '\nNo nvidia_icd.json; wrote %s pointing at %s and set VK_ICD_FILENAMES.\n' "$icd" "$nvlib" >>"$FACTS"
  fi
  [ -n "${XDG_RUNTIME_DIR:-}" ] || { export XDG_RUNTIME_DIR="/tmp/xdg-$(id -u)"; mkdir -p -m 700 "$XDG_RUNTIME_DIR"; }
  command -v vulkaninfo >/dev/null && run_into_facts 'vulkaninfo --summary (after the mend)' vulkaninfo --summary
fi

section 'Gantry: the WebGPU adapter'
node --input-type=module -e "
  const core = await import('./packages/core/dist/index.js');
  try { const b = await core.initBackend({ backend: 'webgpu', log: () => {} }); console.log(b.name + ': ' + b.detail); }
  catch (e) { console.log('FAILED: ' + e.message); process.exitCode = 2; }
" >>"$FACTS" 2>&1
webgpu_ok=$?
endsection

section 'PyTorch'
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
timeout 120 "$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.cuda.is_available(), torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' >>"$FACTS" 2>&1 || echo "no torch" >>"$FACTS"
endsection
say "facts in $FACTS"
[ "$webgpu_ok" = 0 ] || say "WebGPU did not start (see $FACTS); the CPU rows still run"

# --- 2, 3. the benchmarks ----------------------------------------------------------------------------------------
ROWS=pix2pix-256,cyclegan-256,dcgan,cgan,pix2pix-128,cyclegan-128
QUICK=()
STEPS=()
if [ "$TINY" = 1 ]; then
  ROWS=pix2pix-256,cyclegan-128
  QUICK=(--quick)
  STEPS=(--steps 1)
fi
bench() { # name, args…
  local name=$1
  shift
  say "bench $name: $*"
  timeout 900 node bench/run.mjs --out "$OUT/$name" "${QUICK[@]}" "${STEPS[@]}" "$@" >"$OUT/$name.log" 2>&1
  echo "exit $?" >>"$OUT/$name.log"
}
if [ "$webgpu_ok" = 0 ]; then
  # GPU memory in use every half second while the WebGPU rows run (the paper presets' target: ≤ 8 GB).
  mempid=""
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$OUT/gpu-memory-mib.txt" 2>/dev/null &
    mempid=$!
  fi
  bench webgpu --backend webgpu --only "$ROWS" --no-torch
  [ -n "$mempid" ] && kill "$mempid" 2>/dev/null
fi
# PyTorch's step is run beside Gantry's CPU step by bench/run.mjs (on the CPU); on CUDA by the reference scripts.
bench cpu --backend auto --only "$ROWS" --threads all --no-torch
if [ "$TINY" = 0 ] && timeout 60 "$PY" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  mkdir -p "$OUT/torch-cuda"
  for row in pix2pix-256 cyclegan-256; do
    node --input-type=module -e "
      const { FULL_ROWS } = await import('./bench/configs.mjs');
      process.stdout.write(JSON.stringify(FULL_ROWS.find((r) => r.id === '$row')));" >"$OUT/torch-cuda/$row.row.json"
    variant=${row%-*}
    say "PyTorch CUDA $row"
    timeout 600 "$PY" "bench/reference/$variant.py" --row "$(cat "$OUT/torch-cuda/$row.row.json")" \
      --json-out "$OUT/torch-cuda/$row.json" --device cuda >"$OUT/torch-cuda/$row.log" 2>&1 ||
      echo "failed: see $OUT/torch-cuda/$row.log" >>"$OUT/torch-cuda/$row.log"
  done
fi

# --- summary ---------------------------------------------------------------------------------------------------
node --input-type=module - "$OUT" >"$OUT/summary.md" <<'EOF'
import * as fs from 'node:fs';
const out = process.argv[2];
const load = (p) => (fs.existsSync(p) ? JSON.parse(fs.readFileSync(p, 'utf8')) : null);
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[s.length >> 1] : NaN; };
const rows = (j) => Object.fromEntries((j?.rows ?? []).map((r) => [r.id, r]));
const gpu = rows(load(`${out}/webgpu/latest.json`));
const cpu = rows(load(`${out}/cpu/latest.json`));
const lines = [`# WebGPU vs Gantry CPU vs PyTorch CUDA (${new Date().toISOString()})`, '',
  '| row | WebGPU ms/step | reads/step | Gantry CPU ms/step | CPU / WebGPU (target ≥ 30×) | PyTorch CUDA ms/step | WebGPU / PyTorch (target ≤ 3×) |',
  '| --- | --- | --- | --- | --- | --- | --- |'];
for (const id of new Set([...Object.keys(gpu), ...Object.keys(cpu)])) {
  const g = gpu[id]?.gantry; const c = cpu[id]?.gantry;
  const t = load(`${out}/torch-cuda/${id}.json`);
  const gMs = g?.msPerStep?.median; const cMs = c?.msPerStep?.median; const tMs = t?.stepMs ? med(t.stepMs) : undefined;
  const f = (x) => (x == null || !Number.isFinite(x) ? '–' : x.toFixed(1));
  lines.push(`| ${id} | ${f(gMs)} | ${g?.transfersPerStep ?? '–'} | ${f(cMs)} | ${gMs && cMs ? f(cMs / gMs) : '–'} | ${f(tMs)} | ${gMs && tMs ? f(gMs / tMs) : '–'} |`);
}
const mem = fs.existsSync(`${out}/gpu-memory-mib.txt`)
  ? Math.max(...fs.readFileSync(`${out}/gpu-memory-mib.txt`, 'utf8').split(/\s+/).filter(Boolean).map(Number))
  : null;
lines.push('', `Peak GPU memory in use during the WebGPU rows (whole GPU, nvidia-smi): ${mem != null && Number.isFinite(mem) ? `${mem} MiB` : 'not measured'} (target for the paper presets: ≤ 8 GB).`);
console.log(lines.join('\n'));
EOF
cat "$OUT/summary.md"
say "done: $OUT"
