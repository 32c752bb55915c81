#!/usr/bin/env bash
# One-command GPU acceptance of genenkf_hpc (docs/benchmarks.md, "GPU check").
#
#   tools/gpu_check.sh [--out DIR]
#
# On a machine with one or more CUDA GPUs, in at most 5 minutes: DDP training through torchrun
# with NCCL (fp32 and bf16), the Generative EnKF on CUDA against the CPU, and the sampling and
# training benchmarks on CUDA. One JSON object per line on stdout; exit 0 when every check is
# ok, 1 when one failed, 2 (one `error:` line) without CUDA. Runs this checkout's code with the
# repository's .venv (or $GENENKF_PYTHON, or python3).
# GENENKF_GPU_CHECK_DEVICE=cpu runs the same steps on the CPU with gloo at tiny sizes: a smoke
# test of the script where there is no GPU (its figures mean nothing).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${GENENKF_PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$repo/.venv/bin/python" ]]; then
        python="$repo/.venv/bin/python"
    else
        python="$(command -v python3 || true)"
    fi
fi
if [[ -z "$python" ]]; then
    echo "error: no Python found: run \`make setup\` or set GENENKF_PYTHON" >&2
    exit 2
fi
cd "$repo"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" "$repo/tools/gpu_check.py" "$@"
