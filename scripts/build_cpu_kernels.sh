#!/usr/bin/env bash
# Build the CPU extension (quantized matmul, quantization search) into gemma_mlx/ (Linux
# x86_64, macOS; optional: without it gemma-mlx runs MLX's own ops). Usage:
# scripts/build_cpu_kernels.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-.venv/bin/python}
build=build/cpu_kernels
"$python" -m pip install -q -r cpu_kernels/requirements.txt
cmake=$("$python" -c "import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, 'cmake'))")
"$cmake" -S cpu_kernels -B "$build" -DPython_EXECUTABLE="$("$python" -c 'import sys; print(sys.executable)')" >/dev/null
"$cmake" --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
for so in "$build"/_cpu_qmm*.so; do
  # A new file renamed over the old one: running processes keep the one they have mapped
  # (cp onto it would rewrite their code under them).
  name=$(basename "$so")
  cp "$so" "gemma_mlx/.$name.tmp" && mv -f "gemma_mlx/.$name.tmp" "gemma_mlx/$name"
done
"$python" -c "from gemma_mlx.kernels.cpu_qmm import check_extension; check_extension()"
