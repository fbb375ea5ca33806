"""`gemma-mlx batch`: records, error records, and resuming after a real kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gemma_mlx.errors import GemmaError
from gemma_mlx.generation.batch_job import recover_output, run_batch_job


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write_input(path, n: int) -> None:
    rows = [{"id": f"r{i}", "prompt": f"Item {i}: the number after {i} is"} for i in range(n)]
    rows.insert(2, "{broken")
    rows.insert(4, {"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 3})
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def test_recover_output_drops_a_partial_last_line(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": 1, "line": 1, "text": "a"}\n{"id": 2, "line": 3, "te')
    assert recover_output(out) == {1}
    assert out.read_text() == '{"id": 1, "line": 1, "text": "a"}\n'
    out.write_text("hello\n")
    with pytest.raises(GemmaError, match="not a record of gemma-mlx batch"):
        recover_output(out)


@pytest.mark.slow
def test_job_writes_every_record_once_with_errors_named(model_270m, tmp_path):
    model, tok = model_270m
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_input(src, 5)
    counts = run_batch_job(model, tok, src, out, batch_size=3, max_tokens=4, progress=False,
                           json_schema=None)
    recs = _lines(out)
    assert counts == {"written": 6, "errors": 1, "skipped": 0, "tokens": counts["tokens"]}
    assert sorted(r["line"] for r in recs) == list(range(1, 8))
    bad = next(r for r in recs if "error" in r)
    assert bad["line"] == 3 and bad["error"].startswith("line 3: not valid JSON")
    good = [r for r in recs if "error" not in r]
    assert all(r["finish_reason"] in ("stop", "length") and r["prompt_tokens"] > 0
               for r in good)
    assert {r["id"] for r in good} >= {"r0", "r1", "r4"}
    again = run_batch_job(model, tok, src, out, batch_size=3, max_tokens=4, progress=False)
    assert again["written"] == 0 and again["skipped"] == 7 and len(_lines(out)) == 7


@pytest.mark.slow
def test_kill_minus_9_then_resume(tmp_path):
    """A real SIGKILL partway: afterwards every record in the file is whole, and the same
    command completes the job with no record lost or duplicated."""
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_input(src, 14)
    cmd = [sys.executable, "-m", "gemma_mlx.cli", "batch", "--input", str(src), "--output",
           str(out), "--batch-size", "2", "--max-tokens", "6"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 4):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = out.read_text()
    assert 4 <= first.count("\n") < 16, "the kill did not land mid-job"
    done = recover_output(out)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    recs = _lines(out)
    assert sorted(x["line"] for x in recs) == list(range(1, 17))
    assert f"{len(done)} already done" in r.stderr
