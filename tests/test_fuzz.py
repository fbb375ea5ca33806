"""Bounded fuzzing of every input surface (tests/fuzzing.py); scripts/fuzz.py runs it longer."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from .fuzzing import SURFACES, close, run_case

# Examples per surface: about 5-15 s each on two shared cores. Derandomized, so CI runs the
# same cases every time; the long script draws new ones.
EXAMPLES = {"gguf": 1000, "safetensors": 1000, "config": 1000, "tokenizer": 1000, "template": 150,
            "image": 1000, "jsonl": 1000, "server": 150}


@pytest.fixture(scope="module", autouse=True)
def _stop_server():
    yield
    close()


@pytest.mark.parametrize("name", list(SURFACES))
def test_fuzz(name, tmp_path):
    surface = SURFACES[name]

    @settings(max_examples=EXAMPLES[name], deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(surface.strategy())
    def case(data):
        run_case(surface, data, tmp_path)

    case()
