#!/usr/bin/env bash
# The whole GPU check of bids_taskenc in one run (at most 8 minutes).
#
# What it does: benchmarks/gpu_check.py runs, each in its own process with its own
# time limit (a failure or time-out is recorded and the next step runs):
#   1 env                Python, torch, CUDA, GPU, package versions
#   2 cuda_tests         pytest -m cuda tests/cuda: GPU vs CPU ridge (fast / exact), bf16
#                        features vs fp32, LSA, the memory budget splitting voxel batches
#   3 ridge              benchmarks/ridge.py at W1, fast and exact, against himalaya torch_cuda
#   4 banded             benchmarks/banded.py at W1 (2 x 2,048 features), our 3 CV solvers,
#                        against himalaya MultipleKernelRidgeCV torch_cuda, and its floors
#   5 featurize          benchmarks/featurize.py, 21 encoders x 4,916 JPEGs
#   6 participant        one BOLD5000-sized synthetic participant, 21 random-weight
#                        Taskonomy encoders, end to end, time per step (its data is made
#                        in the background from the start: participant_data)
#   7 featurize_compile  step 5 with --compile, features compared with step 5's
# Results: $OUT/gpu_check.json (rewritten after each step), $OUT/gpu_check.log, and
# $OUT/cuda_tests.xml; OUT defaults to ./gpu_check_out.
#
#   bash benchmarks/gpu_check.sh --dry-run      # print the steps and commands, run nothing
#   bash benchmarks/gpu_check.sh --cpu-smoke    # every step at tiny sizes on the CPU
#   bash benchmarks/gpu_check.sh                # the real check (a CUDA GPU)
#
# The GPU machine (device tool, nvidia-h200) has Python 3.12 with torch, numpy, scipy,
# pandas, pillow, statsmodels, jinja2, matplotlib, scikit-learn, pytest, but not nibabel,
# nilearn, pybids, himalaya or this project, and no network. Before the run, on a machine
# with network, from the repository root, download the missing wheels (about 20 MB, all
# of them pure Python but sqlalchemy) into the git-ignored folder .whl/:
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl \
#     nibabel==5.4.2 nilearn==0.14.1 pybids==0.22.0 himalaya==0.4.11 sqlalchemy==2.1.9 \
#     bids-validator==1.14.7.post0 bidsschematools==2.0.1 acres==0.5.0 num2words==0.5.14 \
#     universal_pathlib==0.3.10 pathlib-abc==0.5.2 frozendict==2.5.1
#
# (pybids' own needs that the machine lacks; formulaic, click, fsspec, pyyaml, joblib,
# lxml and requests are there. docopt, which num2words names, is only for its command
# line and has no wheel, so it is left out.) Then run it there, carrying the wheels:
#
#   device run, carry [".whl"], timeout_s 540:  bash benchmarks/gpu_check.sh
#
# This script installs the wheels offline into $GPU_CHECK_SITE (default /tmp/gpu_check_site)
# with pip --no-index --no-deps --target, and puts that folder and the repository on
# PYTHONPATH (the project itself is not installed: it needs no build). Without .whl/ it
# installs nothing and uses what the interpreter has; --cpu-smoke installs nothing unless
# GPU_CHECK_INSTALL=1, and GPU_CHECK_INSTALL=0 never installs. Environment: PYTHON
# (default python3), OUT, GPU_CHECK_SITE, GPU_CHECK_INSTALL; options after
# the script's name go to benchmarks/gpu_check.py (--budget S, --work DIR, --out DIR).
set -u -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
SITE="${GPU_CHECK_SITE:-/tmp/gpu_check_site}"

dry=0
install="${GPU_CHECK_INSTALL:-1}"
for a in "$@"; do
  [ "$a" = "--dry-run" ] && dry=1
  [ "$a" = "--cpu-smoke" ] && install="${GPU_CHECK_INSTALL:-0}"
done

if [ "$install" = 0 ]; then
  echo "[gpu_check] installing no wheels (GPU_CHECK_INSTALL=0 or --cpu-smoke); using what $PYTHON has"
elif [ "$dry" = 1 ]; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    echo "would install: $(ls .whl/*.whl | wc -l) wheels ($(du -sk .whl | cut -f1) KiB) from .whl/ into $SITE (pip --no-index --no-deps)"
  else
    echo "would install: nothing (no .whl/ folder; using what $PYTHON has)"
  fi
elif compgen -G ".whl/*.whl" >/dev/null; then
  echo "[gpu_check] installing $(ls .whl/*.whl | wc -l) wheels from .whl/ into $SITE"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .whl/*.whl || { echo "[gpu_check] wheel install failed" >&2; exit 2; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" benchmarks/gpu_check.py --python "$PYTHON" "$@"
