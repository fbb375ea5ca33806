"""Crash safety: a real SIGKILL partway through convert, fuse, a LoRA save, a batch job and a
prompt-cache save leaves the output absent or whole, and the rerun or resume completes it."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import mlx.core as mx
import pytest

from gemma_mlx.cache import load_prompt_cache
from gemma_mlx.formats.loading import load
from gemma_mlx.generation.batch_job import recover_output

from .conftest import FIXTURES
from .crash_harness import MARKER
from .test_tokenizer import _tiny_tokenizer_json

HARNESS = Path(__file__).with_name("crash_harness.py")
SOURCE = FIXTURES / "text" / "mqa"  # the smallest checkpoint: every subprocess stays quick
SHARD_BYTES = "150000"  # four shards of mqa, so there is a "between shards"


def _env(**crash: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRASH_")}
    return {**env, "CRASH_SHARD_BYTES": SHARD_BYTES, **crash}


def _run(args: list, cwd: Path, trace: bool = False) -> list[str]:
    """Run the harness to the end (the command must succeed); the kinds of its writes."""
    trace_file = cwd / ".trace.json"
    env = _env(CRASH_TRACE=str(trace_file)) if trace else _env()
    r = subprocess.run([sys.executable, HARNESS, *map(str, args)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(trace_file.read_text()) if trace else []


def _kill_at(args: list, cwd: Path, at: str) -> None:
    """Start the harness stopping at `at` ("kind:n:fraction"), and SIGKILL it there."""
    err = cwd / ".stderr"
    with open(err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, HARNESS, *map(str, args)], cwd=cwd,
                                env=_env(CRASH_AT=at), stdout=subprocess.PIPE, stderr=stderr,
                                text=True)
    guard = threading.Timer(120, proc.kill)  # a harness that never gets there fails, not hangs
    guard.start()
    try:
        reached = any(line.strip() == MARKER for line in proc.stdout)  # stops at the marker
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        guard.cancel()
        proc.stdout.close()
    assert reached, f"never reached {at}: {err.read_text()[-3000:]}"
    assert proc.returncode == -signal.SIGKILL


def _random_point(trace: list[str], seed: int) -> str:
    """A seeded choice of one write of an uninterrupted run, and how much of it happens."""
    rng = random.Random(seed)
    i = rng.randrange(len(trace))
    kind = trace[i]
    return f"{kind}:{trace[: i + 1].count(kind)}:{rng.choice([0.0, rng.random(), 1.0]):.3f}"


def _points(fixed: dict[str, str], seeds: tuple[int, ...]) -> list:
    return ([pytest.param(at, id=name) for name, at in fixed.items()]
            + [pytest.param(f"random:{s}", id=f"random-{s}") for s in seeds])


def _point(at: str, trace: list[str]) -> str:
    return _random_point(trace, int(at.split(":")[1])) if at.startswith("random:") else at


def _content(path: Path):
    """A file's bytes; for safetensors its metadata and tensors, whatever their order."""
    data = path.read_bytes()
    if path.suffix != ".safetensors":
        return data
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    meta = header.pop("__metadata__", None)
    return meta, {k: (v["dtype"], v["shape"], body[slice(*v["data_offsets"])])
                  for k, v in header.items()}


def _tree(path: Path) -> dict:
    return {str(p.relative_to(path)): _content(p) for p in sorted(path.rglob("*"))
            if p.is_file()}


def _visible(directory: Path) -> list[str]:
    """What a user or a loader sees: the names not hidden as temporary."""
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """mqa with a tiny tokenizer.json, as the LoRA, fuse and batch commands need one."""
    path = tmp_path_factory.mktemp("checkpoint") / "model"
    shutil.copytree(SOURCE, path, ignore=shutil.ignore_patterns("reference.npz", "config_v4*"))
    _tiny_tokenizer_json(path)
    return path


# --- convert -------------------------------------------------------------------------------

CONVERT = {"first-shard": "save_safetensors:1:0.5", "between-shards": "save_safetensors:2:1",
           "naming-shards": "replace:2:0", "index": "write_text:1:0.5",
           "config": "write_text:2:0.5", "tokenizer-copy": "copy2:1:0.5",
           "final-rename": "replace:5:0"}
# --force over an older conversion (bfloat16): the old output goes aside, the new one in.
CONVERT_FORCE = {"before-old-aside": "replace:5:0", "between-renames": "replace:5:1",
                 "deleting-old": "rmtree:1:0.5"}


def _convert_args(out: Path, *extra: str) -> list:
    return ["convert", "--hf-path", SOURCE, "--mlx-path", out, *extra]


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[dict, dict, list[str]]:
    """Uninterrupted conversions, float32 and bfloat16, and the writes of the first."""
    d = tmp_path_factory.mktemp("convert")
    trace = _run(_convert_args(d / "f32"), d, trace=True)
    _run(_convert_args(d / "bf16", "--dtype", "bfloat16"), d)
    load(d / "f32")  # the reference itself is valid
    return _tree(d / "f32"), _tree(d / "bf16"), trace


@pytest.mark.parametrize("at", _points(CONVERT, (1, 2)))
def test_convert_killed(converted, tmp_path, at):
    f32, _, trace = converted
    out = tmp_path / "out"
    _kill_at(_convert_args(out), tmp_path, _point(at, trace))
    assert not out.exists() or _tree(out) == f32
    assert _visible(tmp_path) in ([], ["out"])  # the temporary directory stays hidden
    _run(_convert_args(out, "--force"), tmp_path)
    assert _tree(out) == f32


@pytest.mark.parametrize("at", _points(CONVERT_FORCE, (3,)))
def test_convert_force_killed(converted, tmp_path, at):
    f32, bf16, trace = converted
    out = tmp_path / "out"
    _run(_convert_args(out, "--dtype", "bfloat16"), tmp_path)
    _kill_at(_convert_args(out, "--force"), tmp_path, _point(at, trace + ["replace", "rmtree"]))
    assert not out.exists() or _tree(out) in (f32, bf16)
    _run(_convert_args(out, "--force"), tmp_path)
    assert _tree(out) == f32


# --- LoRA checkpoint saves ---------------------------------------------------------------------

# Saves at steps 2 and 4, each: adapter_config.json, the step copy, the optimizer state,
# adapters.safetensors (write_text/save_safetensors, then a replace per file).
LORA = {"first-save": "save_safetensors:2:0.5", "step-copy": "save_safetensors:4:0.5",
        "state": "save_safetensors:5:0.5", "adapters": "save_safetensors:6:0.5",
        "before-adapters-rename": "replace:8:0", "config": "write_text:2:0.5"}


def _lora_args(model: Path, adapters: Path, *extra) -> list:
    """The training command (its data written beside the model the first time)."""
    data = model.parent / "data"
    if not data.is_dir():
        data.mkdir()
        rows = [{"prompt": f"hello {'a' * (i % 5)}", "completion": "bonsoir"} for i in range(8)]
        (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ["lora", "--train", "--model", model, "--data", data, "--adapter-path", adapters,
            "--iters", "4", "--save-every", "2", "--batch-size", "2", "--num-layers", "2",
            "--learning-rate", "1e-3", *extra]


@pytest.fixture(scope="module")
def trained(checkpoint, tmp_path_factory) -> tuple[Path, list[str]]:
    """Adapters of an uninterrupted run, and its writes."""
    d = tmp_path_factory.mktemp("lora")
    trace = _run(_lora_args(checkpoint, d / "adapters"), d, trace=True)
    return d / "adapters", trace


def _step(path: Path) -> int:
    return int(mx.load(str(path), return_metadata=True)[1]["step"])


def _check_adapter_dir(adapters: Path, reference: Path) -> None:
    """Every visible file is whole and is what the uninterrupted run wrote at its step."""
    for name in _visible(adapters):
        if name == "adapters.safetensors":
            want = reference / f"{_step(adapters / name):07d}_adapters.safetensors"
            assert _content(adapters / name) == _content(want)
        elif name != "training_state.safetensors":  # a step copy or adapter_config.json
            assert _content(adapters / name) == _content(reference / name), name
    if (adapters / "training_state.safetensors").exists():
        mx.load(str(adapters / "training_state.safetensors"))


@pytest.mark.parametrize("at", _points(LORA, (4, 5)))
def test_lora_save_killed_then_resumed(checkpoint, trained, tmp_path, at):
    reference, trace = trained
    adapters = tmp_path / "adapters"
    _kill_at(_lora_args(checkpoint, adapters), tmp_path, _point(at, trace))
    _check_adapter_dir(adapters, reference)
    latest = adapters / "adapters.safetensors"
    _run(_lora_args(checkpoint, adapters, *(["--resume-adapter-file", latest]
                                            if latest.exists() else [])), tmp_path)
    assert _tree(adapters) == _tree(reference)  # also: no .tmp.* file left behind


def test_resume_refuses_adapters_and_state_of_different_steps(checkpoint, trained, tmp_path):
    """Resuming from an older step copy beside a newer optimizer state would mix steps."""
    reference, _ = trained
    adapters = tmp_path / "adapters"
    shutil.copytree(reference, adapters)
    r = subprocess.run([sys.executable, HARNESS, *map(str, _lora_args(
        checkpoint, adapters, "--resume-adapter-file", adapters / "0000002_adapters.safetensors"))],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "from step 2" in r.stderr and "from step 4" in r.stderr


# --- fuse ------------------------------------------------------------------------------------

FUSE = {"weights": "save_safetensors:1:0.5", "config": "write_text:1:0.5",
        "generation-config": "write_text:2:0.5", "final-rename": "replace:1:0"}
FUSE_FORCE = {"between-renames": "replace:1:1", "deleting-old": "rmtree:1:0.5"}


def _fuse_args(model: Path, adapters: Path, out: Path, *extra) -> list:
    return ["fuse", "--model", model, "--adapter-path", adapters, "--save-path", out, *extra]


@pytest.fixture(scope="module")
def fused(checkpoint, trained, tmp_path_factory) -> tuple[dict, list[str]]:
    d = tmp_path_factory.mktemp("fuse")
    trace = _run(_fuse_args(checkpoint, trained[0], d / "fused"), d, trace=True)
    load(d / "fused")
    return _tree(d / "fused"), trace


@pytest.mark.parametrize("at", _points(FUSE, (6,)))
def test_fuse_killed(checkpoint, trained, fused, tmp_path, at):
    reference, trace = fused
    out = tmp_path / "fused"
    _kill_at(_fuse_args(checkpoint, trained[0], out), tmp_path, _point(at, trace))
    assert not out.exists() or _tree(out) == reference
    _run(_fuse_args(checkpoint, trained[0], out, "--force"), tmp_path)
    assert _tree(out) == reference


@pytest.mark.parametrize("at", _points(FUSE_FORCE, ()))
def test_fuse_force_killed(checkpoint, trained, fused, tmp_path, at):
    """Overwriting an older fused model (here: a plain conversion of the base)."""
    reference, _ = fused
    out = tmp_path / "fused"
    _run(_convert_args(out), tmp_path)
    old = _tree(out)
    _kill_at(_fuse_args(checkpoint, trained[0], out, "--force"), tmp_path, at)
    assert not out.exists() or _tree(out) in (old, reference)
    _run(_fuse_args(checkpoint, trained[0], out, "--force"), tmp_path)
    assert _tree(out) == reference


# --- gemma-mlx batch ---------------------------------------------------------------------------

BATCH = {"first-record": "write:1:0.5", "mid-record": "write:4:0.5",
         "whole-record": "write:4:1", "last-record": "write:8:0.9"}


def _batch_args(model: Path, d: Path) -> list:
    src = d / "in.jsonl"
    if not src.exists():
        rows = [json.dumps({"id": f"r{i}", "prompt": f"hello {'a' * i}"}) for i in range(7)]
        rows.insert(3, "{broken")  # an error record is output too
        src.write_text("".join(r + "\n" for r in rows))
    return ["batch", "--model", model, "--input", src, "--output", d / "out.jsonl",
            "--batch-size", "2", "--max-tokens", "4"]


def _records(path: Path) -> dict[int, dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    by_line = {r["line"]: r for r in records}
    assert len(by_line) == len(records), "a record written twice"
    return by_line


@pytest.fixture(scope="module")
def batch_output(checkpoint, tmp_path_factory) -> tuple[dict, list[str]]:
    d = tmp_path_factory.mktemp("batch")
    trace = _run(_batch_args(checkpoint, d), d, trace=True)
    return _records(d / "out.jsonl"), trace


@pytest.mark.parametrize("at", _points(BATCH, (7, 8)))
def test_batch_killed_then_resumed(checkpoint, batch_output, tmp_path, at):
    reference, trace = batch_output
    out = tmp_path / "out.jsonl"
    at = _point(at, trace)
    _kill_at(_batch_args(checkpoint, tmp_path), tmp_path, at)
    whole, _, torn = out.read_bytes().rpartition(b"\n")  # after the last newline: a cut record
    assert bool(torn) == (0 < float(at.split(":")[2]) < 1)
    for line in whole.splitlines():
        record = json.loads(line)
        assert record == reference[record["line"]]
    done = recover_output(out)
    _run(_batch_args(checkpoint, tmp_path), tmp_path)
    assert _records(out) == reference
    assert len(done) < len(reference)


# --- prompt cache ------------------------------------------------------------------------------

PROMPT_CACHE = {"half": "save_safetensors:1:0.5", "before-rename": "replace:1:0",
                "after-rename": "replace:1:1"}


@pytest.fixture(scope="module")
def prompt_caches(tmp_path_factory) -> tuple[bytes, bytes, list[str]]:
    """The saved file for 12 tokens (the one killed), for 7 (an older one), and the writes."""
    d = tmp_path_factory.mktemp("cache")
    trace = _run(["prompt-cache", SOURCE, d / "new.safetensors", 12], d, trace=True)
    _run(["prompt-cache", SOURCE, d / "old.safetensors", 7], d)
    return (d / "new.safetensors").read_bytes(), (d / "old.safetensors").read_bytes(), trace


@pytest.mark.parametrize("over_old", [False, True], ids=["new-file", "over-old"])
@pytest.mark.parametrize("at", _points(PROMPT_CACHE, (9,)))
def test_prompt_cache_save_killed(prompt_caches, tmp_path, at, over_old):
    new, old, trace = prompt_caches
    out = tmp_path / "p.safetensors"
    if over_old:
        out.write_bytes(old)
    _kill_at(["prompt-cache", SOURCE, out, 12], tmp_path, _point(at, trace))
    if out.exists():
        assert out.read_bytes() in (old, new)
        load_prompt_cache(out)
    stale = [p.name for p in tmp_path.iterdir() if ".tmp." in p.name]
    _run(["prompt-cache", SOURCE, out, 12], tmp_path)
    assert out.read_bytes() == new
    caches, meta = load_prompt_cache(out)
    assert len(meta["tokens"]) == 12 and all(c.offset == 12 for c in caches)
    # the next save used a temporary file of its own, not the stale one
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp." in p.name) == stale
