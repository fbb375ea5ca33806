"""Conversion: layouts, dtypes, quantization settings, shards, atomic output, bad input."""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.cli import main
from gemma_mlx.errors import GemmaError
from gemma_mlx.formats.convert import convert
from gemma_mlx.formats.loading import load
from gemma_mlx.formats.quantize import Spec, quantize_tensor

from .conftest import FIXTURES


def _logits(path, case="gqa"):
    model, _ = load(path)
    r = np.load(FIXTURES / "text" / case / "reference.npz")
    return np.array(model(mx.array(r["input_ids"])).astype(mx.float32)), r["logits"]


def test_float_round_trip_in_bfloat16(tmp_path):
    src = FIXTURES / "text" / "gqa"
    out = convert(src, tmp_path / "bf16", dtype="bfloat16")["path"]
    before, after = mx.load(str(src / "model.safetensors")), mx.load(str(out / "model.safetensors"))
    assert before.keys() == after.keys()
    assert all(mx.array_equal(after[k], before[k].astype(mx.bfloat16)) for k in before)
    got, ref = _logits(out)
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max()  # bfloat16 arithmetic


def _relative_error(src, out, bits, group) -> float:
    """Worst relative RMS error of a quantized matrix against its source."""
    before, after = mx.load(str(src / "model.safetensors")), mx.load(str(out / "model.safetensors"))
    worst = 0.0
    for k in [k for k in after if k.endswith(".scales")]:
        base = k[: -len(".scales")]
        back = mx.dequantize(after[base + ".weight"], after[k], after[base + ".biases"],
                             group, bits)
        w = before[base + ".weight"]
        worst = max(worst, float(mx.sqrt(((back - w) ** 2).mean() / (w**2).mean())))
    return worst


# Uniform quantization of a near-Gaussian matrix: RMS error ~ range / (2^bits * sqrt(12)).
@pytest.mark.parametrize("bits, group, tol", [(8, 32, 0.005), (4, 32, 0.09)])
def test_quantized_conversion_loads_in_gemma_mlx_and_mlx_lm(tmp_path, bits, group, tol):
    from mlx_lm.utils import load_model

    src = FIXTURES / "text" / "gqa"
    out = convert(src, tmp_path / "q", quantize=True, q_bits=bits, q_group_size=group)["path"]
    config = json.loads((out / "config.json").read_text())
    assert config["quantization"] == {"group_size": group, "bits": bits, "mode": "affine"}
    assert _relative_error(src, out, bits, group) < tol
    ours, _ = _logits(out)
    theirs_model, _ = load_model(out)
    r = np.load(FIXTURES / "text" / "gqa" / "reference.npz")
    theirs = np.array(theirs_model(mx.array(r["input_ids"])))
    # The same weights in either runtime; mlx-lm rounds the embedding scale to bfloat16.
    assert np.abs(ours - theirs).max() < 1e-2


def test_mixed_recipe_writes_per_module_settings(tmp_path, monkeypatch):
    from mlx_lm.utils import load_model

    from gemma_mlx.formats import quantize

    monkeypatch.setitem(quantize.RECIPES, "test-mixed", quantize.Recipe(
        "8-bit embedding, 4-bit elsewhere",
        quantize._mixed(Spec(4, 32), embed=Spec(8, 32), down_proj=None)))
    out = convert(FIXTURES / "text" / "gqa", tmp_path / "m", quant_recipe="test-mixed",
                  q_bits=4, q_group_size=32)["path"]
    q = json.loads((out / "config.json").read_text())["quantization"]
    assert q["model.embed_tokens"] == {"group_size": 32, "bits": 8}
    assert "model.layers.0.mlp.down_proj" not in q  # kept in float
    weights = mx.load(str(out / "model.safetensors"))
    assert "model.layers.0.mlp.down_proj.scales" not in weights
    ours, _ = _logits(out)
    theirs_model, _ = load_model(out)
    r = np.load(FIXTURES / "text" / "gqa" / "reference.npz")
    assert np.abs(ours - np.array(theirs_model(mx.array(r["input_ids"])))).max() < 1e-2


def test_multimodal_v5_layout_is_written_in_hub_layout(tmp_path):
    src = FIXTURES / "text" / "mm_v5"
    out = convert(src, tmp_path / "mm", quantize=True, q_group_size=32)["path"]
    before = mx.load(str(src / "model.safetensors"))
    after = mx.load(str(out / "model.safetensors"))
    assert not any(k.startswith("model.") for k in after)
    vision = [k for k in before if "vision_tower" in k or "multi_modal_projector" in k]
    assert vision  # passes through unquantized, renamed to the hub layout
    for k in vision:
        new = k.replace("model.", "", 1)
        assert mx.array_equal(after[new], before[k])
    model, _ = load(out)
    assert model.model.layers[0].mlp.up_proj.bits == 4


def test_shards_and_index(tmp_path):
    out = convert(FIXTURES / "text" / "gqa", tmp_path / "s", max_shard_bytes=200_000)
    index = json.loads((out["path"] / "model.safetensors.index.json").read_text())
    assert out["shards"] > 2
    assert len(set(index["weight_map"].values())) == out["shards"]
    got, ref = _logits(out["path"])
    assert np.abs(got - ref).max() <= 1e-4


def test_dequantize_restores_float_weights(tmp_path):
    q = convert(FIXTURES / "text" / "gqa", tmp_path / "q", quantize=True, q_bits=8,
                q_group_size=32)["path"]
    f = convert(q, tmp_path / "f", dequantize=True)["path"]
    assert not any(k.endswith(".scales") for k in mx.load(str(f / "model.safetensors")))
    assert "quantization" not in json.loads((f / "config.json").read_text())
    a, _ = _logits(q)
    b, _ = _logits(f)
    assert np.abs(a - b).max() < 1e-4


def test_output_is_atomic_and_not_overwritten(tmp_path):
    out = tmp_path / "o"
    convert(FIXTURES / "text" / "gqa", out)
    with pytest.raises(GemmaError, match="already exists"):
        convert(FIXTURES / "text" / "gqa", out)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((FIXTURES / "text" / "gqa" / "config.json").read_text())
    data = (FIXTURES / "text" / "gqa" / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(GemmaError, match="model.safetensors"):
        convert(bad, tmp_path / "never")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "o"]  # no partial output


def test_convert_cli_errors_are_one_line(tmp_path, capsys):
    cfg = tmp_path / "src"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert main(["convert", "--hf-path", str(cfg), "--mlx-path", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "is not a Gemma 3 model" in err and "Traceback" not in err


def test_search_recovers_a_coarser_grid_and_beats_min_max():
    rng = np.random.default_rng(0)
    d = np.abs(rng.normal(size=(64, 20, 1))).astype(np.float32) * 0.01
    q = rng.integers(0, 32, size=(64, 20, 32)).astype(np.float32)
    w = mx.array((d * (q - 16)).reshape(64, 640))  # a Q5_0-like symmetric 5-bit grid
    for search, exact in [(True, True), (False, False)]:
        t = quantize_tensor("x", w, Spec(5, 32), search=search)
        back = mx.dequantize(t["x.weight"], t["x.scales"], t["x.biases"], 32, 5)
        assert (float(mx.abs(back - w).max()) < 1e-6) == exact
    g = mx.array(rng.normal(size=(256, 512)).astype(np.float32))
    errs = []
    for search in (True, False):
        t = quantize_tensor("x", g, Spec(4, 64), search=search)
        errs.append(float(((mx.dequantize(t["x.weight"], t["x.scales"], t["x.biases"], 64, 4)
                            - g) ** 2).mean()))
    assert errs[0] < 0.9 * errs[1]


def test_qat_recipe_keeps_the_q4_0_grid():
    """QAT weights are trained for Q4_0 (d = -absmax/8): the recipe quantizes onto that grid."""
    from gemma_mlx.formats.quantize import recipe

    rng = np.random.default_rng(1)
    d = np.abs(rng.normal(size=(64, 20, 1))).astype(np.float32) * 0.01
    q = rng.integers(0, 16, size=(64, 20, 32)).astype(np.float32)
    q[:, :, 0] = 0  # the group's extreme sits at level 0, as Q4_0 puts it
    w = mx.array((d * (q - 8)).reshape(64, 640))
    spec = recipe("qat").policy("model.layers.0.mlp.up_proj")
    t = quantize_tensor("x", w, spec)
    back = mx.dequantize(t["x.weight"], t["x.scales"], t["x.biases"], 32, 4)
    assert spec.bpw == 5.0 and mx.abs(back - w).max().item() < 1e-6
