"""GGUF import: llama.cpp blocks mapped exactly onto MLX groups; the real 270M end to end."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader, quants

from gemma_mlx.formats import gguf_quants
from gemma_mlx.formats.gguf import hf_name

BLOCK_BYTES = {"Q8_0": 34, "Q4_0": 18, "Q4_1": 20, "Q5_0": 22, "Q5_1": 24, "Q4_K": 144}
BLOCK_SIZE = {"Q4_K": 256}


def _random_blocks(kind: str, rows: int, cols: int, rng) -> np.ndarray:
    n_blocks = rows * cols // BLOCK_SIZE.get(kind, 32)
    raw = rng.integers(0, 256, size=(n_blocks, BLOCK_BYTES[kind]), dtype=np.uint8)
    n_half = 2 if kind == "Q4_K" else (2 if kind in ("Q4_1", "Q5_1") else 1)
    halves = rng.uniform(0.001, 0.1, size=(n_blocks, n_half)).astype(np.float16)
    raw[:, : 2 * n_half] = halves.view(np.uint8)  # valid fp16 scales, no NaN/inf
    return raw.reshape(rows, -1)


@pytest.mark.parametrize("kind", list(gguf_quants.EXACT))
def test_blocks_map_exactly_onto_mlx_groups(kind):
    rng = np.random.default_rng(0)
    rows, cols = 8, 512
    blocks = _random_blocks(kind, rows, cols, rng)
    ref = quants.dequantize(blocks, GGMLQuantizationType[kind]).reshape(rows, cols)
    q, scale, bias, bits = gguf_quants.EXACT[kind](blocks, rows)
    got = mx.dequantize(mx.array(gguf_quants.pack_bits(q, bits)), mx.array(scale),
                        mx.array(bias), group_size=32, bits=bits)
    np.testing.assert_allclose(np.array(got), ref, rtol=0, atol=1e-7 * np.abs(ref).max())


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
def test_bit_packing_matches_mlx_quantize(bits):
    rng = np.random.default_rng(bits)
    q = rng.integers(0, 2**bits, size=(4, 64))
    q[:, 0], q[:, 1], q[:, 32], q[:, 33] = 0, 2**bits - 1, 0, 2**bits - 1
    # mx.quantize of exact integers with a full range in every group reproduces q (or 2^b-1-q)
    wq, scales, _ = mx.quantize(mx.array(q.astype(np.float32)), group_size=32, bits=bits)
    flip = np.array(scales)[:, :1] < 0
    expect = np.where(np.repeat(flip, 64, 1), 2**bits - 1 - q, q)
    assert np.array_equal(gguf_quants.pack_bits(expect, bits), np.array(wq))


def test_names_map_to_hf():
    assert hf_name("blk.3.ffn_down.weight") == "model.layers.3.mlp.down_proj.weight"
    assert hf_name("blk.0.post_ffw_norm.weight") == (
        "model.layers.0.post_feedforward_layernorm.weight")
    assert hf_name("token_embd.weight") == "model.embed_tokens.weight"


@pytest.mark.slow
def test_real_270m_tensors_are_exact(gguf_270m, model_270m):
    """Every exactly-imported tensor dequantizes in MLX to what llama.cpp's format holds."""
    model, _ = model_270m
    params = dict(_flat(model.parameters()))
    reader = GGUFReader(gguf_270m)
    seen = set()
    for t in reader.tensors:
        kind = t.tensor_type.name
        if kind not in gguf_quants.EXACT or kind in seen:
            continue
        seen.add(kind)
        base = hf_name(t.name)[: -len(".weight")]
        shape = tuple(int(x) for x in reversed(t.shape))
        ref = quants.dequantize(t.data, t.tensor_type).reshape(shape)
        bits = 8 if kind == "Q8_0" else (5 if kind.startswith("Q5") else 4)
        got = mx.dequantize(params[base + ".weight"], params[base + ".scales"],
                            params[base + ".biases"], group_size=32, bits=bits)
        assert np.array_equal(np.array(got), ref), kind
    assert {"Q8_0", "Q5_0", "Q4_K"} <= seen


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _flat(v, f"{prefix}{k}.")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _flat(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], tree


@pytest.mark.slow
def test_real_270m_agrees_with_its_dequantized_float32_model(model_270m, model_270m_f32):
    """Over 600 tokens (past the 512 window): same top-1 token at >= 99.5% of positions."""
    model, tokenizer = model_270m
    text = " ".join(f"Sentence {i} tells that the {w} sat near the river." for i, w in
                    enumerate(["cat", "dog", "bird", "fox", "owl"] * 12))
    ids = mx.array([tokenizer.encode(text)[:600]])
    a = model(ids).astype(mx.float32)
    b = model_270m_f32(ids)
    agree = float(mx.mean(a.argmax(-1) == b.argmax(-1)))
    assert ids.shape[1] == 600 and agree >= 0.995
    # Q6_K tensors (ffn_down) are requantized to 8 bits, everything else is bit-exact:
    # logits move by ~0.05 on average (their spread is ~10).
    assert float(mx.abs(a - b).mean()) < 0.1


@pytest.mark.slow
def test_real_270m_matches_transformers_gguf_loader(model_270m, model_270m_f32):
    """Our float32 import vs transformers' own GGUF loader (tests/fixtures/gguf/)."""
    from .conftest import FIXTURES

    ref = np.load(FIXTURES / "gguf" / "hf_gguf_reference.npz")
    _, tokenizer = model_270m
    assert tokenizer.encode("The capital of France is") == ref["prompt_ids"].tolist()
    last = np.array(model_270m_f32(mx.array(ref["prompt_ids"][None]))[0, -1])
    assert np.abs(last - ref["prompt_logits_last"]).max() <= 2e-3
    logits = np.array(model_270m_f32(mx.array(ref["long_ids"][None]))[0])
    assert np.mean(logits.argmax(-1) == ref["long_argmax"]) >= 0.998
    assert np.abs(logits[-4:] - ref["long_logits_tail"]).max() <= 5e-3
