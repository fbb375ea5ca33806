"""Samplers against a numpy statement of top-k / min-p / top-p, and their draws against it."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.generation.sampling import make_sampler


def _reference(lp: np.ndarray, temperature: float, top_k: int, top_p: float, min_p: float):
    """The distribution transformers' warpers define (no ties in these inputs)."""
    lp = lp.astype(np.float64).copy()
    if 0 < top_k < lp.size:
        lp[lp < np.sort(lp)[-top_k]] = -np.inf
    if min_p:
        lp[lp < lp.max() + np.log(min_p)] = -np.inf
    if top_p < 1:
        order = np.argsort(-lp)
        p = np.exp(lp[order] - np.logaddexp.reduce(lp[order]))
        lp[order[(np.cumsum(p) - p) >= top_p]] = -np.inf
    z = lp / temperature
    return np.exp(z - np.logaddexp.reduce(z))


@pytest.mark.parametrize("temperature,top_k,top_p,min_p", [
    (1.0, 64, 0.95, 0.0), (0.7, 64, 1.0, 0.0), (1.0, 0, 0.9, 0.0), (1.3, 40, 0.8, 0.05),
    (1.0, 0, 1.0, 0.1), (1.0, 5000, 0.5, 0.0)])
def test_transform_is_the_reference_distribution(temperature, top_k, top_p, min_p):
    rng = np.random.default_rng(top_k + int(100 * top_p))
    logits = rng.normal(size=(2, 4096)) * 3
    lp = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    sampler = make_sampler(temperature, top_p, top_k, min_p)
    got = np.array(mx.softmax(sampler.transform(mx.array(lp, mx.float32)), axis=-1))
    for row in range(2):
        want = _reference(lp[row], temperature, top_k, top_p, min_p)
        assert np.array_equal(got[row] > 0, want > 0)
        np.testing.assert_allclose(got[row], want, atol=2e-6)


def test_draws_among_the_top_k_follow_the_distribution():
    """The top-k path draws among k candidates instead of the whole vocabulary: 20,000 draws
    land on each kept token as often as the reference says (5 sigma)."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=1000) * 2
    lp = logits - np.logaddexp.reduce(logits)
    want = _reference(lp, 1.0, 8, 0.9, 0.0)
    sampler = make_sampler(1.0, 0.9, 8, seed=11)
    batch = mx.array(np.repeat(lp[None], 20_000, axis=0), mx.float32)
    counts = np.bincount(np.array(sampler(batch)), minlength=1000)
    n = counts.sum()
    assert set(np.flatnonzero(counts)) <= set(np.flatnonzero(want))
    sigma = np.sqrt(n * want * (1 - want))
    assert np.all(np.abs(counts - n * want) <= 5 * sigma + 1)


def test_a_seed_repeats_its_draws():
    lp = mx.log(mx.softmax(mx.random.normal((3, 2000)) * 2, axis=-1))
    a, b = make_sampler(1.0, 0.95, 64, seed=5), make_sampler(1.0, 0.95, 64, seed=5)
    assert [a(lp).tolist() for _ in range(4)] == [b(lp).tolist() for _ in range(4)]
