"""Caches: ring wrap-around, rollback, quantized storage, save/load, against the full forward."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.cache import load_prompt_cache, save_prompt_cache
from gemma_mlx.formats.loading import load

from .conftest import FIXTURES


def _model_and_reference(case="gqa"):
    model, _ = load(FIXTURES / "text" / case)
    r = np.load(FIXTURES / "text" / case / "reference.npz")
    return model, r["input_ids"], r["logits"]


def _run(model, ids, cache, chunks):
    """Feed ids in the given chunk sizes, then one token at a time; return all logits."""
    outs, s = [], 0
    for c in chunks:
        outs.append(np.array(model(mx.array(ids[:, s : s + c]), cache=cache)))
        s += c
    for t in range(s, ids.shape[1]):
        outs.append(np.array(model(mx.array(ids[:, t : t + 1]), cache=cache)))
    return np.concatenate(outs, axis=1)


@pytest.mark.parametrize("slack", [0, 3, 8])
def test_cached_generation_over_several_window_wraps(slack):
    """40 tokens through rings of 8 (+ slack): 5 wraps, equal to transformers' full forward."""
    model, ids, ref = _model_and_reference()
    out = _run(model, ids, model.make_cache(slack=slack), [6, 9])
    assert np.abs(out - ref).max() <= 1e-4


@pytest.mark.parametrize("slack", [4, 8])
def test_rollback_then_regenerate_equals_full_forward(slack):
    model, ids, ref = _model_and_reference()
    cache = model.make_cache(slack=slack)
    _run(model, ids[:, :30], cache, [10])
    # feed 4 wrong tokens, roll them back, continue with the right ones
    model(mx.array(ids[:, :4]) * 0 + 7, cache=cache)
    assert all(c.trim(4) == 4 for c in cache)
    outs = [np.array(model(mx.array(ids[:, s : s + 1]), cache=cache)) for s in range(30, 40)]
    assert np.abs(np.concatenate(outs, axis=1) - ref[:, 30:]).max() <= 1e-4


def test_rollback_is_refused_beyond_the_slack():
    model, ids, _ = _model_and_reference()
    cache = model.make_cache(slack=2)
    _run(model, ids[:, :30], cache, [30])
    sliding = [c for c in cache if hasattr(c, "window")]
    assert all(c.trim(5) == 2 for c in sliding)


@pytest.mark.parametrize("bits, tol", [(8, 0.3), (4, 3.0)])
def test_quantized_kv_caches_stay_close(bits, tol):
    """8-bit and 4-bit keys/values (logits span about +-40 here; 8-bit moves them ~0.15)."""
    model, ids, ref = _model_and_reference()
    out = _run(model, ids, model.make_cache(kv_bits=bits), [6, 9])  # groups of 32 (head_dim)
    assert np.abs(out - ref).max() <= tol
    assert np.mean(out.argmax(-1) == ref.argmax(-1)) >= (0.95 if bits == 8 else 0.8)


def test_prompt_cache_save_and_load(tmp_path):
    model, ids, ref = _model_and_reference()
    cache = model.make_cache(slack=2)
    _run(model, ids[:, :25], cache, [25])
    save_prompt_cache(tmp_path / "p.safetensors", cache, {"model": "gqa"})
    loaded, meta = load_prompt_cache(tmp_path / "p.safetensors")
    assert meta == {"model": "gqa"} and [c.offset for c in loaded] == [25] * len(cache)
    outs = [np.array(model(mx.array(ids[:, s : s + 1]), cache=loaded)) for s in range(25, 40)]
    assert np.abs(np.concatenate(outs, axis=1) - ref[:, 25:]).max() <= 1e-4
