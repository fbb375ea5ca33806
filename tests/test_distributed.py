"""Two local ring ranks: data-parallel LoRA equals one process on the whole batch; a killed
rank or a missing peer ends every rank with an error in bounded time; python -m parity."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.distributed import launch_local

from .test_lora import _checkpoint_with_tokenizer

WORKER = str(Path(__file__).with_name("distributed_worker.py"))
ROOT = Path(__file__).parents[1]


def _ranks(tmp_path: Path, argv: list[str], timeout: float = 3.0, **kw):
    """Start the ranks with a short peer timeout; their results, and the seconds it took."""
    env = {"GEMMA_MLX_DIST_TIMEOUT": str(timeout), "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    results = launch_local(2, argv, str(tmp_path / "hosts.json"), env, kill_after=90, **kw)
    return results, time.monotonic() - t0


def _ok(results) -> None:
    for r in results:
        assert r.returncode == 0, f"rank {r.rank} exited {r.returncode}:\n{r.stderr[-3000:]}"


def test_python_m_gemma_mlx_is_the_console_script(tmp_path):
    script = Path(sys.executable).with_name("gemma-mlx")
    for args in (["--help"], ["lora", "--train", "--model", str(tmp_path / "none")]):
        a = subprocess.run([sys.executable, "-m", "gemma_mlx", *args], capture_output=True,
                           text=True, timeout=60, cwd=tmp_path)
        b = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60,
                           cwd=tmp_path)
        assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)
    assert a.returncode == 1 and "gemma-mlx: error:" in a.stderr


def test_data_parallel_lora_equals_one_process_on_the_whole_batch(tmp_path):
    from .distributed_worker import run

    results, _ = _ranks(tmp_path, [sys.executable, WORKER, str(tmp_path)])
    _ok(results)
    assert "Training" in results[0].stderr and "valid loss" in results[0].stdout
    assert not results[1].stdout and "Training" not in results[1].stderr  # rank 0 alone prints
    dp = np.load(tmp_path / "run.npz")
    losses, weights = run(tmp_path / "single")
    np.testing.assert_allclose(dp["losses"], losses, rtol=1e-5)
    for k, w in weights.items():
        np.testing.assert_allclose(dp[k], w, rtol=1e-4, atol=1e-6, err_msg=k)


def test_cli_under_two_ranks_trains_resumes_and_matches_one_process(tmp_path):
    from gemma_mlx.cli import main

    model, data = _checkpoint_with_tokenizer(tmp_path)
    common = ["lora", "--train", "--model", str(model), "--data", str(data), "--batch-size", "4",
              "--num-layers", "2", "--learning-rate", "1e-3", "--save-every", "2"]
    lora = [sys.executable, "-m", "gemma_mlx", *common, "--adapter-path", str(tmp_path / "dp")]
    _ok(_ranks(tmp_path, [*lora, "--iters", "2"])[0])
    resumed, _ = _ranks(tmp_path, [*lora, "--iters", "4", "--resume-adapter-file",
                                   str(tmp_path / "dp" / "adapters.safetensors")])
    _ok(resumed)
    assert "data-parallel over 2 ranks" in resumed[0].stdout and not resumed[1].stdout
    assert main([*common, "--iters", "4", "--adapter-path", str(tmp_path / "one")]) == 0
    for name in ("0000002_adapters.safetensors", "adapters.safetensors"):
        dp, one = mx.load(str(tmp_path / "dp" / name)), mx.load(str(tmp_path / "one" / name))
        # Adam steps each weight by about the learning rate whatever the gradient's size, so
        # summation-order rounding on near-zero gradients (which differs between BLAS builds)
        # moves such weights by a fraction of lr: the bound is 0.1 lr, not float32 epsilon.
        for k in one:
            diff = mx.abs(dp[k] - one[k]).max().item()
            assert mx.allclose(dp[k], one[k], rtol=1e-3, atol=1e-4).item(), (name, k, diff)
    assert not [p for p in (tmp_path / "dp").iterdir() if p.name.startswith(".tmp")]

    uneven, _ = _ranks(tmp_path, [*lora, "--iters", "1", "--batch-size", "3"])
    for r in uneven:
        assert r.returncode == 1 and "not divisible by the 2 ranks" in r.stderr


def test_a_rank_killed_mid_run_ends_the_other_with_an_error(tmp_path):
    results, took = _ranks(tmp_path, [sys.executable, WORKER, str(tmp_path), "--die-at", "2"])
    assert results[1].returncode == -9
    assert results[0].returncode == 1, results[0].stderr[-3000:]
    assert "rank 0 of 2: lost the other ranks while all-reducing" in results[0].stderr
    assert "Traceback" not in results[0].stderr
    assert took < 60


@pytest.mark.parametrize("present", [0, 1], ids=["only-rank-0", "only-rank-1"])
def test_a_missing_peer_ends_the_rank_within_the_timeout(tmp_path, present):
    results, took = _ranks(tmp_path, [sys.executable, WORKER, str(tmp_path)], ranks=[present])
    (r,) = results
    assert r.returncode != 0
    assert "no word from the other ranks for 3 s while connecting" in r.stderr, r.stderr[-3000:]
    assert took < 30  # the 3 s timeout, imports and the watchdog's SIGTERM; never the 90 s kill
