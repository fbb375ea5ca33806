#!/usr/bin/env bash
# Build the CPU quantized-matmul extension into gemma_mlx/ (Linux x86_64; optional: without
# it gemma-mlx runs on MLX's own op). Usage: scripts/build_cpu_kernels.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-.venv/bin/python}
build=build/cpu_kernels
"$python" -m pip install -q -r cpu_kernels/requirements.txt
cmake=$("$python" -c "import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, 'cmake'))")
"$cmake" -S cpu_kernels -B "$build" -DPython_EXECUTABLE="$("$python" -c 'import sys; print(sys.executable)')" >/dev/null
"$cmake" --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
cp "$build"/_cpu_qmm*.so gemma_mlx/
"$python" -c "from gemma_mlx.kernels.cpu_qmm import check_extension; check_extension()"
