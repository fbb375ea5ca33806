"""Loading checkpoints: layouts, shards, MLX (mlx-lm) quantized directories, bad input."""

from __future__ import annotations

import json
import shutil

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.errors import GemmaError
from gemma_mlx.formats.loading import load

from .conftest import FIXTURES

GQA = FIXTURES / "text" / "gqa"


def _ids_ref():
    r = np.load(GQA / "reference.npz")
    return mx.array(r["input_ids"]), r["logits"]


def test_sharded_checkpoint_with_index(tmp_path):
    weights = mx.load(str(GQA / "model.safetensors"))
    names = sorted(weights)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half],
              "model-00002-of-00002.safetensors": names[half:]}
    for file, keys in shards.items():
        mx.save_safetensors(str(tmp_path / file), {k: weights[k] for k in keys})
    index = {"weight_map": {k: f for f, ks in shards.items() for k in ks}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    shutil.copy(GQA / "config.json", tmp_path)
    model, tokenizer = load(tmp_path)
    assert tokenizer is None  # no tokenizer files: still loads
    ids, ref = _ids_ref()
    assert np.abs(np.array(model(ids)) - ref).max() <= 1e-4
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(GemmaError, match="missing"):
        load(tmp_path)


def test_mlx_lm_quantized_directory_loads_and_matches_mlx_lm(tmp_path):
    """A directory written by mlx-lm's convert (4-bit) loads and gives mlx-lm's logits."""
    from mlx_lm import convert
    from mlx_lm import load as lm_load

    out = tmp_path / "q4"
    convert(str(GQA), mlx_path=str(out), quantize=True, q_bits=4, q_group_size=32)
    ours, _ = load(out)
    theirs, _ = lm_load(str(out))
    ids, ref = _ids_ref()
    a, b = np.array(ours(ids)), np.array(theirs(ids))
    # mlx-lm rounds the embedding scale sqrt(hidden) to bf16 even in float32 (transformers
    # does not), which moves these logits by ~3e-3; everything else is the same computation.
    assert np.abs(a - b).max() <= 1e-2
    assert np.mean(a.argmax(-1) == ref.argmax(-1)) > 0.8  # 4-bit of a random model


def test_missing_path_is_named():
    with pytest.raises(GemmaError, match="no such file or directory"):
        load("./does/not/exist")


def test_truncated_safetensors_is_named(tmp_path):
    data = (GQA / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    shutil.copy(GQA / "config.json", tmp_path)
    with pytest.raises(GemmaError, match="model.safetensors"):
        load(tmp_path)


def test_missing_config_is_named(tmp_path):
    shutil.copy(GQA / "model.safetensors", tmp_path)
    with pytest.raises(GemmaError, match="config.json: no such file"):
        load(tmp_path)


def test_shape_mismatch_is_named(tmp_path):
    shutil.copy(GQA / "model.safetensors", tmp_path)
    cfg = json.loads((GQA / "config.json").read_text())
    cfg["intermediate_size"] *= 2
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(GemmaError, match="do not fit the config"):
        load(tmp_path)


def test_offline_repo_id_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(GemmaError, match="Hugging Face Hub could not provide it"):
        load("google/gemma-3-270m-not-here")


def test_save_then_load_round_trip(tmp_path):
    from gemma_mlx.formats.loading import save

    weights = dict(mx.load(str(GQA / "model.safetensors")))
    config = json.loads((GQA / "config.json").read_text())
    save(tmp_path / "out", weights, config)
    with pytest.raises(GemmaError, match="already exists"):
        save(tmp_path / "out", weights, config)
    model, _ = load(tmp_path / "out")
    ids, ref = _ids_ref()
    assert np.abs(np.array(model(ids)) - ref).max() <= 1e-4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_atomic_directory_cleans_up_after_killed_runs_and_follows_the_umask(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    from gemma_mlx.formats.loading import atomic_directory

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    prefix = f".out.partial-{socket.gethostname()}-"
    stale = tmp_path / f"{prefix}{dead}-abc"
    (stale / "sub").mkdir(parents=True)
    live = tmp_path / f"{prefix}{os.getpid()}-xyz"
    live.mkdir()
    old_umask = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "out") as tmp:
            (tmp / "f").write_text("x")
    finally:
        os.umask(old_umask)
    assert not stale.exists() and live.exists()  # only the dead process's leftovers go
    assert (tmp_path / "out" / "f").read_text() == "x"
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
