#!/usr/bin/env bash
# The GPU check, for whenever a machine with an NVIDIA GPU is at hand (a few minutes):
# the GPU suite (tests/test_gpu.py, pytest -m gpu) and the GPU benchmark (bench_gpu.py).
# Both logs go to $OUT (default gpu-check/); paste the benchmark's table into docs/gpu.md.
#
#   benchmarks/gpu_check.sh                 # from the repository root
#   PYTHON=.venv/bin/python OUT=/tmp/gpu benchmarks/gpu_check.sh --steps 30
#
# Extra arguments go to bench_gpu.py.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export OMP_WAIT_POLICY=PASSIVE PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: torch sees no CUDA device here; nothing to check" >&2
    exit 2
fi
nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt"
"$PYTHON" -m pytest -p no:cacheprovider -m gpu -rs tests/test_gpu.py 2>&1 | tee "$OUT/gpu-suite.txt"
suite=${PIPESTATUS[0]}
"$PYTHON" benchmarks/bench_gpu.py "$@" 2>&1 | tee "$OUT/bench_gpu.txt"
bench=${PIPESTATUS[0]}
echo "gpu_check: GPU suite exit $suite, benchmark exit $bench; logs in $OUT/"
exit $(( suite != 0 || bench != 0 ))
