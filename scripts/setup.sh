#!/usr/bin/env bash
# Idempotent set-up for a fresh Linux or macOS machine: OpenBLAS (Linux), .venv, the package.
# Usage: scripts/setup.sh [extras]   e.g. scripts/setup.sh default-model,test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-default-model}"

have_openblas() {
  ls /usr/lib/*-linux-gnu/openblas-*/libopenblas.so.0 /usr/lib64/libopenblas.so.0 \
     /usr/lib/libopenblas.so.0 >/dev/null 2>&1 || ldconfig -p 2>/dev/null | grep -q libopenblas
}

# MLX's Linux CPU wheel bundles a reference BLAS that is 10-30x slower; gemma-mlx binds to
# OpenBLAS at import when the system has it.
if [ "$(uname -s)" = Linux ] && ! have_openblas; then
  if command -v apt-get >/dev/null; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
    if $sudo true 2>/dev/null; then
      echo "Installing OpenBLAS (libopenblas0-pthread) for fast CPU matrix products..."
      $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libopenblas0-pthread >/dev/null
    else
      echo "warning: install OpenBLAS for 10-30x faster CPU inference: sudo apt-get install libopenblas0-pthread" >&2
    fi
  else
    echo "warning: no OpenBLAS found; install your distribution's OpenBLAS package for faster CPU inference" >&2
  fi
fi

# The chat page's browser test drives Debian's Chromium (headless) through Playwright.
if [[ ",$extras," == *",test,"* ]] && [ "$(uname -s)" = Linux ] && ! command -v chromium >/dev/null \
   && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
  if $sudo true 2>/dev/null; then
    echo "Installing Chromium for the chat page's browser test..."
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: the chat page's browser test needs Chromium: sudo apt-get install chromium" >&2
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=".venv/.gemma-mlx-$(cat pyproject.toml | cksum | cut -d' ' -f1)-${extras//,/_}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[${extras}]"
  touch "$stamp"
fi

# The fast CPU quantized matmul (cpu_kernels/, an MLX extension): built once per source and
# mlx version; without it gemma-mlx says so and uses MLX's own (slower) op.
if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ]; then
  mlx_version=$(.venv/bin/python -c "import mlx.core as mx; print(mx.__version__)")
  kstamp=".venv/.cpu-kernels-$(cat cpu_kernels/* | cksum | cut -d' ' -f1)-$mlx_version"
  if [ ! -f "$kstamp" ] || ! ls gemma_mlx/_cpu_qmm*.so >/dev/null 2>&1; then
    echo "Building the CPU quantized-matmul extension (cpu_kernels/)..."
    if scripts/build_cpu_kernels.sh .venv/bin/python; then
      touch "$kstamp"
    else
      echo "warning: the CPU kernel did not build; gemma-mlx will use MLX's slower op" >&2
    fi
  fi
fi
