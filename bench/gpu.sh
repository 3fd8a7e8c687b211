#!/usr/bin/env bash
# The GPU checks of issue 15 in one run, sized for under 10 minutes on one H200:
#   1. kkt's iterations per second and peak memory at m = 1000 on CUDA (16 and 128 restarts in one batch)
#      against the machine's CPU (16 restarts), with full and reduced products (TF32 on CUDA, bfloat16 on
#      the CPU); and 16 restarts on CUDA with the iteration compiled (`compile: on`; `auto` keeps CUDA eager);
#   2. the papers' n = 500 pixel case (CIFAR-10 automobile vs cat, 250 per class, 3072-1000-1, the victim
#      trained by L-BFGS for 20 steps, the n = 100 hours' recipe) attacked with 64 restarts per bracket and 0.4 s per member, its
#      count of SSIM > 0.4 members printed next to Haim et al.'s, and its disjoint null at 0.3 of that budget
#      (estimated: ~3.5 minutes for step 1 (eight points of 10 s, each in a fresh process, two of them compiling
#      first), ~6 minutes for
#      step 2, of which 260 s of attack; the real victim's row is printed before the null starts, and step 2
#      is cut at 570 s from the start if it runs over).
#   The first run (2026-12-04, docs/scale.md "GPU") took 345 s with 16 restarts and the 6000-step GD victim.
#
#   bash bench/gpu.sh --prepare     on a machine with the package index, once: wheels a GPU image may lack
#                                   (pydantic and its needs, for Python 3.12) into .gpu/whl and the CIFAR-10
#                                   test split into .gpu/data
#   bash bench/gpu.sh               on the GPU machine, in a copy of the repository that includes .gpu/
#   GPU_TINY=1 bash bench/gpu.sh    here: the same commands at tiny sizes on the CPU (tests/test_scale_bench.py)
# Output goes to stdout and to $OUT/gpu.log ($GPU_OUT overrides $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

case "${1:-}" in
    ""|--prepare) ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/gpu.sh: unknown argument '$1'; give --prepare, --help, or nothing (the GPU run)" >&2; exit 2 ;;
esac

if [[ "${1:-}" == "--prepare" ]]; then
    mkdir -p .gpu/whl .gpu/data/cifar10
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
        -d .gpu/whl pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
    cp "${RECON_SHARED_DATA:-../shared/data}/cifar10/test-00000-of-00001.parquet" .gpu/data/cifar10/
    du -sh .gpu
    exit 0
fi

OUTDIR=${GPU_OUT:-${OUT:-/tmp/gpu-out}}
mkdir -p "$OUTDIR"

checks() {
    local start=$SECONDS
    if [[ -z "${GPU_TINY:-}" ]] && compgen -G ".gpu/whl/*.whl" > /dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
        export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
    fi
    export PYTHONPATH=$PWD:${PYTHONPATH:-} HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
    if [[ -d .gpu/data ]]; then export RECON_SHARED_DATA=$PWD/.gpu/data; fi
    local cost table limit m_said n_said
    if [[ -n "${GPU_TINY:-}" ]]; then
        cost=(--cost-ms 8 --cost-restarts 2 --devices cpu --cost-products full,reduced --cost-seconds 0.2 --threads 1)
        cost_cpu=()
        cost_compiled=(--cost-ms 8 --cost-restarts 2 --devices cpu --cost-products reduced --cost-compile on --cost-seconds 0.2 --threads 1)
        table=(--cases pixels --ns 4 --seconds-per-member 0.5 --null-share 0.5 --threads 1 --pixel-steps 200 --attack '{"restarts": 4}')
        limit=600
        m_said="8 (GPU_TINY; m = 1000 on the device)" n_said="4 (GPU_TINY; n = 500 on the device)"
    else
        m_said=1000 n_said=500
        cost=(--cost-ms 1000 --cost-restarts 16,128 --devices cuda --cost-products full,reduced --cost-seconds 10 --threads 16)
        cost_cpu=(--cost-ms 1000 --cost-restarts 16 --devices cpu --cost-products full,reduced --cost-seconds 10 --threads 16)
        cost_compiled=(--cost-ms 1000 --cost-restarts 16 --devices cuda --cost-products full,reduced --cost-compile on --cost-seconds 10 --threads 16)
        table=(--cases pixels --ns 500 --seconds-per-member 0.4 --null-share 0.3 --threads 16
               --pixel-optimizer lbfgs --pixel-steps 20 --attack '{"restarts": 64}')
        limit=570  # the device run's 600 s, less a margin for the log to come back
    fi
    "$PY" - <<'EOF2'
import importlib.util, sys
need = ("torch", "pydantic", "scipy", "skimage", "pyarrow", "PIL", "tqdm", "yaml")
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"bench/gpu.sh: python packages {missing} are missing here: run 'bash bench/gpu.sh --prepare' and carry .gpu")
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, cuda {torch.cuda.is_available()}"
      + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else ""))
EOF2
    nvidia-smi -L 2>/dev/null || true

    echo "== 1. kkt at m = ${m_said}: CUDA against the CPU ($(( SECONDS - start )) s in)"
    "$PY" bench/scale.py --part cost "${cost[@]}"
    if (( ${#cost_cpu[@]} )); then "$PY" bench/scale.py --part cost "${cost_cpu[@]}"; fi
    "$PY" bench/scale.py --part cost "${cost_compiled[@]}"

    local left=$(( limit - (SECONDS - start) ))
    echo "== 2. n = ${n_said} pixels, real victim and disjoint null ($(( SECONDS - start )) s in; cut at ${left} s from now)"
    if ! timeout "$left" "$PY" bench/scale.py --part table "${table[@]}"; then
        echo "bench/gpu.sh: the n = ${n_said} case did not finish within ${left} s (the times above say where they went:" \
             "the victim's build, with its oracle residual, then the attack)"
    fi
    echo "== bench/gpu.sh done in $(( SECONDS - start )) s"
}

checks 2>&1 | tee "$OUTDIR/gpu.log"
exit "${PIPESTATUS[0]}"
