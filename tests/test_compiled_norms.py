"""The CPU decode path's compiled RMSNorm and RoPE equal MLX's fast ops bit for bit."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.config import RopeConfig
from gemma_mlx.formats.loading import load
from gemma_mlx.models import layers

from .conftest import FIXTURES


@pytest.fixture
def plain(monkeypatch):
    """Call it to switch the compiled versions off for the rest of the test."""
    return lambda: monkeypatch.setattr(layers, "COMPILED_MAX_ROWS", 0)


def _both(fn, plain):
    compiled = np.array(fn())
    plain()
    return compiled, np.array(fn())


@pytest.mark.parametrize("shape", [(1, 1, 640), (16, 1, 640), (1, 4, 1, 256), (3, 8, 1, 72)])
@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16])
def test_rms_norm(shape, dtype, plain):
    norm = layers.RMSNorm(shape[-1])
    norm.weight = (mx.random.normal((shape[-1],)) * 0.3).astype(dtype)
    x = (mx.random.normal(shape) * 4).astype(dtype)
    a, b = _both(lambda: norm(x).astype(mx.float32), plain)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("offset", [0, 37, 31999, "array"])
@pytest.mark.parametrize("factor", [1.0, 8.0])
def test_rope(offset, factor, plain):
    rope = RopeConfig(rope_theta=1_000_000.0, factor=factor)
    x = mx.random.normal((5, 4, 1, 256))
    off = mx.array([3, 9, 100, 4000, 7]) if offset == "array" else offset
    a, b = _both(lambda: layers.apply_rope(x, rope, off), plain)
    assert np.array_equal(a, b)


def test_decode_logits_of_a_model(plain):
    """A 19-token prefill and 4 decode steps, compiled == plain."""
    model, _ = load(FIXTURES / "text" / "gqa")
    ids = np.load(FIXTURES / "text" / "gqa" / "reference.npz")["input_ids"][0, :23].tolist()

    def run():
        cache = model.make_cache()
        out = [model(mx.array([ids[:19]]), cache)[0, -1]]
        out += [model(mx.array([[t]]), cache)[0, -1] for t in ids[19:]]
        return mx.stack(out)

    a, b = _both(run, plain)
    assert np.array_equal(a, b)
