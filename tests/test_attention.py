"""Banded (O(L*W)) and blocked-global attention against a dense masked reference."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.formats.loading import load
from gemma_mlx.kernels import local_attention as la

from .attention_reference import dense_reference as _dense_reference
from .conftest import FIXTURES, TEXT_CASES


@pytest.mark.parametrize("window", [16])
@pytest.mark.parametrize("lq", [15, 16, 17, 47, 64])  # W-1, W, W+1, several blocks
@pytest.mark.parametrize("before", [0, 5, 15, 16, 40])  # cached keys before the first query
@pytest.mark.parametrize("heads", [(4, 4), (4, 2), (4, 1)])  # MHA, GQA, MQA
def test_banded_attention_matches_dense(window, lq, before, heads):
    hq, hkv = heads
    rng = np.random.default_rng(lq * 100 + before)
    q = mx.array(rng.normal(size=(2, hq, lq, 8)).astype(np.float32))
    k = mx.array(rng.normal(size=(2, hkv, before + lq, 8)).astype(np.float32))
    v = mx.array(rng.normal(size=(2, hkv, before + lq, 8)).astype(np.float32))
    q_start = 100 + before
    args = dict(scale=0.35, q_start=q_start, k_start=100)
    ref = _dense_reference(q, k, v, 0.35, q_start, 100, window)
    got = la.banded_attention(q, k, v, window=window, **args)
    assert np.abs(np.array(got) - ref).max() < 1e-5
    glob = la.blocked_causal_attention(q, k, v, block=8, **args)
    assert np.abs(np.array(glob) - _dense_reference(q, k, v, 0.35, q_start, 100, 0)).max() < 1e-5


def test_banded_attention_is_differentiable():
    """The same path serves training: its gradient matches the dense one."""
    rng = np.random.default_rng(0)
    q, k, v = (mx.array(rng.normal(size=(1, 2, 40, 8)).astype(np.float32)) for _ in range(3))

    def loss(fn, q, k, v):
        return (fn(q, k, v) ** 2).sum()

    banded = lambda q, k, v: la.banded_attention(q, k, v, scale=0.3, q_start=0, k_start=0, window=8)  # noqa: E731
    dense = lambda q, k, v: la.dense_attention(q, k, v, scale=0.3, q_start=0, k_start=0, window=8)  # noqa: E731
    g1 = mx.grad(lambda *a: loss(banded, *a), argnums=(0, 1, 2))(q, k, v)
    g2 = mx.grad(lambda *a: loss(dense, *a), argnums=(0, 1, 2))(q, k, v)
    for a, b in zip(g1, g2, strict=True):
        assert np.abs(np.array(a) - np.array(b)).max() < 1e-4


@pytest.mark.parametrize("case", TEXT_CASES)
def test_model_on_the_banded_path_matches_transformers(case, monkeypatch):
    """Force the blocked paths (the fixtures are shorter than the dense threshold)."""
    monkeypatch.setattr(la, "DENSE_MAX_QUERIES", 0)
    monkeypatch.setattr(la, "GLOBAL_BLOCK", 16)
    model, _ = load(FIXTURES / "text" / case)
    r = np.load(FIXTURES / "text" / case / "reference.npz")
    out = np.array(model(mx.array(r["input_ids"])))
    assert np.abs(out - r["logits"]).max() <= 1e-4
