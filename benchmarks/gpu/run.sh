#!/usr/bin/env bash
# GPU check + benchmark of hubcls's CUDA kernels on one Hopper machine, in under 5 minutes.
# Needs: python3 with numpy, torch (CUDA), torchvision, optionally CuPy; nvcc, cmake, pybind11.
# Does NOT need Paddle (hubcls.ops never imports it) nor network access.
#
#   bash benchmarks/gpu/run.sh            # from the repository root
#
# 1. builds hubcls._C with CUDA (sm_90) into build/gpu and drops it into ./hubcls (source tree import)
# 2. checks every CUDA kernel against the CPU kernel (tests/test_ops_cuda.py if pytest exists,
#    plus the built-in checks of bench_gpu.py)
# 3. prints images/s of hubcls vs torchvision.transforms.v2 on CUDA for the eval and train
#    transforms, and the HBM floor of the eval transform.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
BUILD=build/gpu
mkdir -p build
JOBS=$(nproc 2>/dev/null || echo 8)

echo "== build (CUDA) =="
PYBIND11_DIR=$($PY -m pybind11 --cmakedir)
cmake -S . -B "$BUILD" -DHUBCLS_CUDA=ON -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
      -Dpybind11_DIR="$PYBIND11_DIR" -DPython_EXECUTABLE="$(command -v $PY)" > "$BUILD.cmake.log" 2>&1 \
  || { tail -30 "$BUILD.cmake.log"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" > "$BUILD.build.log" 2>&1 || { tail -40 "$BUILD.build.log"; exit 1; }
cp "$BUILD"/_C*.so hubcls/
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
$PY - <<'PYEOF'
import sys
import hubcls.ops, hubcls._C as C
info = C.build_info()
print("hubcls core:", info)
assert info["cuda_compiled"], "built without CUDA"
assert "paddle" not in sys.modules, "hubcls.ops imported paddle"
print("CUDA devices:", C.cuda_device_count())
PYEOF

echo "== correctness: CUDA vs CPU =="
status=0
if $PY -c "import pytest" 2>/dev/null; then
  # keep going to the benchmark on failures, but report them in the exit status
  $PY -m pytest -q -p no:cacheprovider -o addopts="" tests/test_ops_cuda.py || { status=1; echo "!! CUDA/CPU MISMATCHES ABOVE"; }
else
  echo "(pytest not installed: relying on bench_gpu.py's checks)"
fi

echo "== benchmark =="
$PY benchmarks/gpu/bench_gpu.py "$@" || status=1
exit $status
