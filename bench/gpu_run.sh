#!/usr/bin/env bash
# The benchmarks on a GPU machine, in calls of at most ~6 minutes each.
#
#   bash bench/gpu_run.sh                  # the whole matrix in one call (~6 min; the time limit cuts what is slowest and last)
#   PART=device bash bench/gpu_run.sh      # fused, eager GPU reference, torch.compile, copy, mask-growth baselines (~3 min)
#   PART=cpu bash bench/gpu_run.sh         # the original code on the CPU with all threads (~4 min)
#   PART=diffusers bash bench/gpu_run.sh   # bench/bench_diffusers.py (needs diffusers; ~2 min)
#   bash bench/gpu_run.sh --case 'b16x*' --case 1536x640-g12   # extra arguments go to `inpaint-fused bench`
#
# Every GPU provider runs with cuDNN autotuning on and untimed warm-ups; each record holds the
# whole-call time (CUDA events) and the GPU time alone (CUDA-graph replay) with bytes moved, GB/s
# and the share of the run's copy bandwidth. Order inside a call: device-side providers, then
# torch.compile (VAE-input outputs first), then the CPU reference (cheapest first), so a cut loses
# the slowest baselines (the CPU's 257x257 convolutions of WAS +-128 take tens of seconds each).
# If the one-call run reports skips "time limit", PART=device and PART=cpu measure the whole matrix
# and `inpaint-fused report` merges their files.
#
# Writes, flat under $OUT (default bench/results): bench-<gpu>-<commit>-<part>.json (the results,
# rewritten after every measurement, so a stopped run keeps what it measured), bench-<part>.log
# (environment, one line per measurement, tables), bench-<part>.md (markdown tables) and, when
# matplotlib is importable, bench-<part>.png; PART=diffusers writes bench-diffusers-<gpu>-<commit>.json
# and bench-diffusers.log. Then, on any machine with the files:
#   inpaint-fused report bench/results/bench-<gpu>-<commit>-all.json --plot bench/results/bench-<gpu>.png \
#       --readme README.md --demo-summary inpaint_fused/data/gpu_reference.json
#   inpaint-fused report --diffusers bench/results/bench-diffusers-<gpu>-<commit>.json --readme README.md
# Needs python3 with torch and triton only (PART=diffusers: diffusers and pytest-benchmark too);
# tqdm, Pillow, matplotlib and kornia are optional, and kornia wheels placed in .whl/ (git-ignored:
# carry it) are installed offline first.
# Knobs: PART (all, device, cpu, diffusers), INPAINT_FUSED_COMMIT (default: git rev-parse HEAD, for a
# work tree without .git), BENCH_TIME_LIMIT (s, default 300: no measurement starts after it),
# BENCH_TIMEOUT (s, default 390: hard stop; a CPU measurement started just before the limit may
# take 50 s), PYTHON (default python3).
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-bench/results}
PYTHON=${PYTHON:-python3}
PART=${PART:-all}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export INPAINT_FUSED_COMMIT=${INPAINT_FUSED_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
unset TRITON_INTERPRET
case "$PART" in
    all) providers=() ;;
    device) providers=(--providers fused,reference-gpu,torch.compile,copy,conv2d,max_pool2d,kornia) ;;
    cpu) providers=(--providers reference-cpu) ;;
    diffusers) ;;
    *) echo "PART must be all, device, cpu or diffusers, got $PART" >&2; exit 2 ;;
esac
log="$OUT/bench-$PART.log"

{
    echo "== $(date -u +%FT%TZ) commit $INPAINT_FUSED_COMMIT part $PART"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1
    "$PYTHON" -c 'import sys, torch, triton; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "triton", triton.__version__, "cpu threads", torch.get_num_threads())'
} >"$log" 2>&1
gpu=$("$PYTHON" -c 'import torch; print(torch.cuda.get_device_name().lower().replace(" ", "-") if torch.cuda.is_available() else "no-gpu")')

if [ "$PART" = diffusers ]; then
    json="$OUT/bench-diffusers-${gpu}-${INPAINT_FUSED_COMMIT:0:10}.json"
    timeout --signal=INT --kill-after=15 "${BENCH_TIMEOUT:-390}" \
        "$PYTHON" -m pytest bench/bench_diffusers.py -q -p no:cacheprovider --benchmark-json "$json" >>"$log" 2>&1
    status=$?
    echo "== pytest exit status $status" >>"$log"
    "$PYTHON" -m inpaint_fused report --diffusers "$json" 2>&1 | tee -a "$log"
    ls -l "$OUT"
    exit "$status"
fi

if [ -d .whl ] && [ "$PART" != cpu ]; then
    "$PYTHON" -m pip install --quiet --no-index --find-links .whl kornia >>"$log" 2>&1 \
        || echo "no kornia in .whl: the kornia provider will be skipped" >>"$log"
fi
json="$OUT/bench-${gpu}-${INPAINT_FUSED_COMMIT:0:10}-$PART.json"
timeout --signal=INT --kill-after=15 "${BENCH_TIMEOUT:-390}" \
    "$PYTHON" -m inpaint_fused bench --json "$json" --markdown "$OUT/bench-$PART.md" \
    --time-limit "${BENCH_TIME_LIMIT:-300}" --progress lines "${providers[@]}" "$@" >>"$log" 2>&1
status=$?
echo "== $(date -u +%FT%TZ) bench exit status $status" >>"$log"

if "$PYTHON" -c 'import matplotlib' 2>/dev/null; then
    "$PYTHON" -m inpaint_fused report "$json" --plot "$OUT/bench-$PART.png" >/dev/null 2>>"$log"
fi
"$PYTHON" -m inpaint_fused report "$json" 2>&1 | tee -a "$log"
ls -l "$OUT"
exit "$status"
