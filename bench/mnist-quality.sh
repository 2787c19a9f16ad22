#!/bin/bash
# One MNIST quality measurement, as docs/results/2026-12-01-gan-dcgan-tuning.md reports them: train a variant
# with the given flags, draw 10,000 samples, and score them with the outside classifier
# (bench/mnist-external-check.py, PyTorch) and with the project's own (`evaluate`).
#
#   bench/mnist-quality.sh VARIANT OUT_DIR [train flags…]      e.g. bench/mnist-quality.sh gan /tmp/q/gan --epochs 12
#
# GANTRY_THREADS defaults to 1 here, so that two measurements can share a 2-core machine (the figures depend on
# the steps, not on the time; time a default run on its own, with every core, for the minutes it takes).
# Needs `pnpm build` and Debian's python3-torch, python3-numpy and python3-pil.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '5p' "$0"
  exit 2
fi
variant=$1
out=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
export GANTRY_THREADS=${GANTRY_THREADS:-1}
if [ -e "$out" ]; then
  echo "mnist-quality: $out exists (a run directory belongs to one run): pick another" >&2
  exit 2
fi
cli="$root/apps/$variant/dist/cli.js"
echo "== $variant $*"
# The app reports on stderr; a run that prints nothing but step lines must not stop the script (pipefail).
/usr/bin/time -f "train: %e s wall, %U+%S s CPU, %M KB peak" node "$cli" train --out "$out" --no-progress "$@" 2>&1 |
  { grep -v '^step' || true; } | tail -5
# 10,000 samples: a conditional generator's --count is per class.
count=10000
if [ "$variant" = cgan ]; then count=1000; fi
node "$cli" generate --checkpoint "$out" --count "$count" --seed 7 --out "$out-samples" | tail -1
OMP_NUM_THREADS=1 /usr/bin/python3 "$root/bench/mnist-external-check.py" --samples "$out-samples"
node "$cli" evaluate --checkpoint "$out" | tail -13
if [ "$variant" = gan ]; then node "$cli" evaluate --checkpoint "$out" --parzen | tail -3; fi
