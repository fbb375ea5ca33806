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
