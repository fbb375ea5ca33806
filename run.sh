#!/usr/bin/env bash
# Set up (once) and run gemma-mlx, e.g.: ./run.sh generate --prompt "The capital of France is"
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh default-model >&2
exec .venv/bin/gemma-mlx "$@"
