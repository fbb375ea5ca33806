"""The text decoder against transformers' Gemma3ForCausalLM logits (float32, tiny checkpoints)."""

from __future__ import annotations

import shutil

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.formats.loading import load

from .conftest import FIXTURES, TEXT_CASES

TOL = 1e-4  # float32 end to end; observed max |diff| ~1.5e-5 on logits of magnitude ~40


def _reference(case: str):
    r = np.load(FIXTURES / "text" / case / "reference.npz")
    return r["input_ids"], r["logits"]


@pytest.mark.parametrize("case", TEXT_CASES + ["mm_hub", "mm_v5"])
def test_logits_match_transformers(case):
    model, _ = load(FIXTURES / "text" / case)
    ids, ref = _reference(case)
    out = np.array(model(mx.array(ids)))
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() <= TOL


@pytest.mark.parametrize("case", ["gqa", "layer_types"])
def test_v4_config_gives_the_same_logits(case, tmp_path):
    src = FIXTURES / "text" / case
    shutil.copy(src / "model.safetensors", tmp_path / "model.safetensors")
    shutil.copy(src / "config_v4.json", tmp_path / "config.json")
    model, _ = load(tmp_path)
    ids, ref = _reference(case)
    assert np.abs(np.array(model(mx.array(ids))) - ref).max() <= TOL


@pytest.mark.parametrize("case", TEXT_CASES)
@pytest.mark.parametrize("chunk", [1, 3, 8, 13])
def test_cached_chunked_prefill_then_decode_equals_full_forward(case, chunk):
    """Prefill in chunks (around the window of 8), then decode one token at a time."""
    model, _ = load(FIXTURES / "text" / case)
    ids, ref = _reference(case)
    cache = model.make_cache()
    prefill = 2 * chunk + 5
    outs = [np.array(model(mx.array(ids[:, s : min(s + chunk, prefill)]), cache=cache))
            for s in range(0, prefill, chunk)]
    outs += [np.array(model(mx.array(ids[:, s : s + 1]), cache=cache))
             for s in range(prefill, ids.shape[1])]
    assert np.abs(np.concatenate(outs, axis=1) - ref).max() <= TOL


def test_prefix_logits():
    model, _ = load(FIXTURES / "text" / "gqa")
    r = np.load(FIXTURES / "text" / "gqa" / "reference.npz")
    n = int(r["prefix_len"])
    out = np.array(model(mx.array(r["input_ids"][:, :n])))[:, -1]
    assert np.abs(out - r["logits_last"]).max() <= TOL


def test_dtype_is_kept_and_can_be_changed(tmp_path):
    src = FIXTURES / "text" / "mqa"
    weights = {k: v.astype(mx.bfloat16) for k, v in mx.load(str(src / "model.safetensors")).items()}
    mx.save_safetensors(str(tmp_path / "model.safetensors"), weights)
    shutil.copy(src / "config.json", tmp_path)
    model, _ = load(tmp_path)
    assert model.model.embed_tokens.weight.dtype == mx.bfloat16
    ids, ref = _reference("mqa")
    out_bf16 = model(mx.array(ids))
    assert out_bf16.dtype == mx.bfloat16
    model.set_dtype(mx.float32)
    out = np.array(model(mx.array(ids)))
    # bf16 weights lose ~3 significant digits; the ranking of the top token survives mostly
    assert np.mean(out.argmax(-1) == ref.argmax(-1)) > 0.9


def test_sanitize_is_idempotent():
    model, _ = load(FIXTURES / "text" / "mm_hub")
    weights = dict(mx.load(str(FIXTURES / "text" / "mm_hub" / "model.safetensors")))
    once = model.sanitize(weights)
    assert any(k.startswith("vision_tower.embeddings.") for k in once)  # vision_model. dropped
    assert not any(k.startswith("language_model.") or "vision_model." in k for k in once)
    assert once.keys() == model.sanitize(once).keys()
