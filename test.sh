#!/usr/bin/env bash
# Set up (once) and run the test suite; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh default-model,test
.venv/bin/ruff check gemma_mlx tests benchmarks examples
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -q "$@"
