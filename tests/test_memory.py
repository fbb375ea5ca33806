"""Memory preflight: estimates against the real arrays of the fixtures, and the CLI refusal."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import mlx.core as mx
import mlx.nn as nn
import pytest
from mlx.utils import tree_flatten

from gemma_mlx.config import ModelConfig
from gemma_mlx.errors import GemmaError
from gemma_mlx.formats import gguf, gguf_quants, memory, memory_lora
from gemma_mlx.formats import memory_sizes as sizes
from gemma_mlx.formats.loading import load, save
from gemma_mlx.generation.generate import generate_step

from .conftest import FIXTURES, TEXT_CASES

CASES = [*TEXT_CASES, "mm_hub", "mm_v5"]


def _nbytes(model: nn.Module) -> int:
    return sum(v.nbytes for _, v in tree_flatten(model.parameters()))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [None, mx.bfloat16])
def test_weights_bytes_equal_the_loaded_arrays(case, dtype):
    path = FIXTURES / "text" / case
    model, _ = load(path, dtype=dtype)
    assert sizes.weights_bytes(path, dtype) == _nbytes(model)


def _quantized_checkpoint(tmp_path: Path) -> Path:
    """The gqa fixture with 4-bit layers and an 8-bit embedding (packed U32 weights)."""
    model, _ = load(FIXTURES / "text" / "gqa")
    nn.quantize(model, 32, 4, class_predicate=lambda p, m: isinstance(m, nn.Linear))
    nn.quantize(model.model, 32, 8, class_predicate=lambda p, m: p == "embed_tokens")
    config = {**ModelConfig.from_file(FIXTURES / "text" / "gqa" / "config.json").raw,
              "quantization": {"group_size": 32, "bits": 4,
                               "model.embed_tokens": {"group_size": 32, "bits": 8}}}
    return save(tmp_path / "q", dict(tree_flatten(model.parameters())), config)


def test_weights_bytes_of_a_quantized_checkpoint(tmp_path):
    path = _quantized_checkpoint(tmp_path)
    model, _ = load(path)
    assert sizes.is_quantized(path)
    assert sizes.weights_bytes(path) == _nbytes(model)
    assert sizes.weights_bytes(path, mx.float16) == _nbytes(load(path, dtype=mx.float16)[0])


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    from .fuzzing import tiny_gguf as tiny_bytes

    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    path.write_bytes(tiny_bytes())  # F32, F16, Q8_0, Q4_0 and Q5_1 tensors, a tokenizer
    return path


def test_weights_bytes_of_a_gguf_equal_the_import(tiny_gguf):
    model, _ = load(tiny_gguf)
    assert sizes.weights_bytes(tiny_gguf) == _nbytes(model)
    assert sizes.activation_bytes(tiny_gguf) == 4 and sizes.is_quantized(tiny_gguf)


def test_gguf_type_rules_with_a_fake_header(tmp_path, monkeypatch):
    assert set(sizes.GGUF_EXACT_BITS) == set(gguf_quants.EXACT)
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"\0" * 1000)
    t = SimpleNamespace
    tensors = [t(name="a", shape=(64, 128), type="Q4_K", nbytes=0),  # exact: 4 + 2 x 32 / 32
               t(name="b", shape=(64, 128), type="Q6_K", nbytes=0),  # requantized to 8 bits
               t(name="c", shape=(128,), type="BF16", nbytes=0),  # float32 after the import
               t(name="d", shape=(64, 48), type="Q8_0", nbytes=0)]  # rows not in groups of 32
    monkeypatch.setattr(gguf, "read_header", lambda p: SimpleNamespace(tensors=tensors))
    n = 64 * 128
    assert sizes.weights_bytes(path) == (n // 2 + n // 4) + (n + n // 4) + 128 * 4 + (
        64 * 48 + 64 * 48 // 4)
    monkeypatch.delattr(gguf, "read_header")  # an older reader: the file's size
    sizes._read_gguf.cache_clear()
    assert sizes.weights_bytes(path) == 1000


def _filled_caches(model, n: int, kv_bits: int | None, slack: int) -> list:
    """Caches after generating as generate_step does: a prompt, then decode steps."""
    cache = model.make_cache(kv_bits=kv_bits, slack=slack)
    prompt = mx.array([2] + [5 + i % 90 for i in range(n - 4)])
    for _ in generate_step(prompt, model, max_tokens=3, cache=cache):
        pass
    return cache


@pytest.mark.parametrize("case", ["gqa", "mqa", "layer_types", "mm_hub"])
@pytest.mark.parametrize("n, kv_bits, slack", [(5, None, 0), (300, None, 4), (300, 4, 0),
                                               (20, 8, 2), (600, 8, 0)])
def test_kv_bytes_equal_a_filled_cache(case, n, kv_bits, slack):
    path = FIXTURES / "text" / case
    model, _ = load(path)
    cache = _filled_caches(model, n, kv_bits, slack)
    real = sum(a.nbytes for c in cache for a in c.k.data + c.v.data)
    cfg = sizes.model_config(path)
    assert sizes.kv_cache_bytes(cfg, n, dtype_bytes=4, kv_bits=kv_bits, slack=slack) == real
    assert sizes.kv_cache_bytes(cfg, n, kv_bits=kv_bits, slack=slack, batch=3) == 3 * real


def test_kv_bytes_follow_the_dtype_and_the_growth():
    path = FIXTURES / "text" / "gqa"
    model, _ = load(path, dtype=mx.bfloat16)
    cache = _filled_caches(model, 40, None, 0)
    cfg = sizes.model_config(path)
    real = sum(a.nbytes for c in cache for a in c.k.data + c.v.data)
    assert sizes.kv_cache_bytes(cfg, 40, dtype_bytes=sizes.activation_bytes(path, mx.bfloat16)) \
        == real
    # reserved 256, then doubling: a global layer holds 1,024 slots for 600 tokens
    grown = sizes.kv_cache_bytes(cfg, 600, reserved=100) - sizes.kv_cache_bytes(cfg, 600)
    assert grown == (1024 - 768) * 2 * cfg.num_key_value_heads * cfg.head_dim * 4


def test_lora_parameter_count_equals_the_adapters():
    from gemma_mlx.lora.layers import apply_lora

    model, _ = load(FIXTURES / "text" / "gqa")
    targets = ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj")
    apply_lora(model, 3, 4, 2.0, 0.0, targets)
    real = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    cfg = sizes.model_config(FIXTURES / "text" / "gqa")
    assert memory_lora.lora_parameter_count(cfg, 3, 4, targets) == real
    parts = dict(memory_lora.lora_bytes(cfg, batch=2, seq=64, num_layers=3, rank=4,
                                        targets=targets))
    assert parts["adapters, gradients and Adam state"] == 16 * real
    checkpointed = memory_lora.lora_bytes(cfg, batch=2, seq=64, num_layers=3, rank=4,
                                    targets=targets, grad_checkpoint=True)
    assert sum(n for _, n in checkpointed) < sum(parts.values())


def test_available_memory(monkeypatch):
    monkeypatch.setenv(memory.AVAILABLE_ENV, "11")
    assert memory.available_memory() == (11_000_000_000, "$GEMMA_MLX_AVAILABLE_GB")
    monkeypatch.setenv(memory.AVAILABLE_ENV, "lots")
    with pytest.raises(GemmaError, match="expected a number of GB"):
        memory.available_memory()
    monkeypatch.delenv(memory.AVAILABLE_ENV)
    n, source = memory.available_memory()
    if sys.platform == "linux":
        assert source == "MemAvailable" and n > 0


def test_available_memory_on_macos(monkeypatch):
    monkeypatch.delenv(memory.AVAILABLE_ENV, raising=False)
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    monkeypatch.setattr(mx.metal, "is_available", lambda: True)
    monkeypatch.setattr(mx, "device_info", lambda d=None: {
        "max_recommended_working_set_size": 123_000})
    assert memory.available_memory() == (123_000, "Metal's recommended working set")
    monkeypatch.setattr(mx.metal, "is_available", lambda: False)
    monkeypatch.setattr(memory.subprocess, "run", lambda *a, **k: SimpleNamespace(
        stdout="17179869184\n"))
    assert memory.available_memory() == (17179869184, "hw.memsize")


def test_preflight_message_names_the_parts(monkeypatch, capsys):
    est = memory.Estimate("gemma-3-27b", [("weights", 15_100_000_000),
                                          ("KV cache for 8,192 tokens", 2_100_000_000)])
    monkeypatch.setenv(memory.AVAILABLE_ENV, "11")
    with pytest.raises(GemmaError) as e:
        memory.preflight(est, hint="lower --max-tokens")
    assert str(e.value) == (
        "gemma-3-27b: needs 17.2 GB (weights 15.1 GB + KV cache for 8,192 tokens 2.1 GB), "
        "11.0 GB available ($GEMMA_MLX_AVAILABLE_GB); use --force to try anyway, or lower "
        "--max-tokens")
    memory.preflight(est, force=True)
    assert "going on (--force)" in capsys.readouterr().err
    monkeypatch.setenv(memory.AVAILABLE_ENV, "18")
    memory.preflight(est)  # fits: silent
    # loading transients count on top of the weights only
    est.add("GGUF import", 3_000_000_000, loading=True)
    assert est.total == 18_100_000_000


def test_cli_refuses_with_the_numbers_and_no_traceback(tiny_gguf):
    env = {**__import__("os").environ, memory.AVAILABLE_ENV: "0.00001"}
    r = subprocess.run([sys.executable, "-m", "gemma_mlx.cli", "generate", "--model",
                        str(tiny_gguf), "--max-tokens", "4"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "tiny.gguf: needs" in r.stderr and "10 KB available" in r.stderr
    for part in ("weights", "KV cache for", "use --force", "--max-tokens"):
        assert part in r.stderr


def test_cli_force_goes_on(tiny_gguf, monkeypatch, capsys):
    from gemma_mlx.cli import main

    monkeypatch.setenv(memory.AVAILABLE_ENV, "0.00001")
    assert main(["generate", "--model", str(tiny_gguf), "--max-tokens", "3", "--force"]) == 0
    out = capsys.readouterr()
    assert "going on (--force)" in out.err and "Generation:" in out.out
    monkeypatch.setenv(memory.AVAILABLE_ENV, "100")
    assert main(["generate", "--model", str(tiny_gguf), "--max-tokens", "3"]) == 0


@pytest.mark.parametrize("args, part", [
    (["batch", "--input", "in.jsonl", "--output", "out.jsonl", "--batch-size", "4"],
     "KV cache for 4 x"),
    (["serve", "--max-concurrency", "2"], "prefix cache (--cache-gb)"),
    (["chat"], "KV cache for"),
])
def test_cli_other_commands_refuse(tiny_gguf, monkeypatch, capsys, args, part):
    from gemma_mlx.cli import main

    monkeypatch.setenv(memory.AVAILABLE_ENV, "0.00001")
    assert main([*args, "--model", str(tiny_gguf)]) == 1
    err = capsys.readouterr().err
    assert part in err and "use --force" in err


def test_cli_lora_refuses_then_trains_with_force(tmp_path, monkeypatch, capsys):
    from gemma_mlx.cli import main

    from .test_lora import _checkpoint_with_tokenizer

    model_dir, data = _checkpoint_with_tokenizer(tmp_path)
    args = ["lora", "--train", "--model", str(model_dir), "--data", str(data), "--iters", "1",
            "--batch-size", "2", "--adapter-path", str(tmp_path / "adapters")]
    monkeypatch.setenv(memory.AVAILABLE_ENV, "0.00001")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "activations for 2 x" in err and "adapters, gradients and Adam state" in err
    assert "--grad-checkpoint" in err
    assert main([*args, "--force"]) == 0
    assert (tmp_path / "adapters" / "adapters.safetensors").is_file()


def test_unknown_sizes_are_skipped(tmp_path):
    shutil.copytree(FIXTURES / "text" / "gqa", tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"junk")
    assert sizes.weights_bytes(tmp_path / "m") is None
    est = memory.estimate(tmp_path / "m", context=100)
    assert [label for label, _ in est.parts][0].startswith("KV cache")
    assert memory.estimate(tmp_path / "nothing", context=100).parts == []
