"""One rank of a pipeline-parallel generation, for tests/test_pipeline.py.

    pipeline_worker.py MODEL OUT_DIR [--prompt TEXT] [--tokens N] [--die-at K | --stop-at K]

Loads this rank's stage of MODEL, runs `run` (a full forward, then greedy generation with a
small prefill step) and writes OUT_DIR/rank<R>.json (layers, bytes held, peak memory after
loading, tokens, text); rank 0 also OUT_DIR/logits.npz. --die-at K: rank 1 SIGKILLs itself at
its K-th forward; --stop-at K: rank 1 SIGSTOPs itself there (a helper SIGCONTs it 6 s later).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import gemma_mlx  # noqa: F401  (first: binds MLX to OpenBLAS)

# isort: split
import mlx.core as mx
import numpy as np

from gemma_mlx.distributed import is_main, world
from gemma_mlx.errors import GemmaError
from gemma_mlx.generation.generate import stream_generate
from gemma_mlx.generation.pipeline import PipelineModel, load_pipeline

IDS = [2, 17, 5, 99, 3, 41, 250, 7, 7, 12, 480, 33, 9, 101, 64, 18, 2, 300, 21, 5]  # > window 8


def run(model, tokenizer, prompt: str | None, tokens: int) -> dict:
    """The run every rank makes (and the test makes on one process): the logits of a full
    forward over IDS (or the prompt), then each step's logits and the tokens of a greedy
    generation with a prefill step of 5 (ring caches wrap: the fixtures' window is 8)."""
    ids = tokenizer.encode(prompt) if prompt else IDS
    full = model(mx.array(ids)[None])
    steps, real = [], model.logits

    def logits(h):
        out = real(h)
        steps.append(np.array(out[0]))
        return out

    model.logits = logits
    out = list(stream_generate(model, tokenizer if prompt else None, prompt or ids,
                               max_tokens=tokens, temperature=0.0, prefill_step_size=5))
    del model.logits
    return {"full": np.array(full[0]), "steps": np.stack(steps), "tokens": [r.token for r in out],
            "text": "".join(r.text for r in out)}


def _hook(kind: str, at: int) -> None:
    """Rank 1 kills or stops itself at its at-th forward."""
    real, calls = PipelineModel.forward, [0]

    def forward(self, *a, **kw):
        calls[0] += 1
        if self.rank == 1 and calls[0] == at:
            print(f"rank 1: {kind} at forward {at}", flush=True)
            if kind == "stop":
                subprocess.Popen(["sh", "-c", f"sleep 6; kill -CONT {os.getpid()}"])
            os.kill(os.getpid(), signal.SIGKILL if kind == "die" else signal.SIGSTOP)
        return real(self, *a, **kw)

    PipelineModel.forward = PipelineModel.model = forward


def main() -> None:
    model_path, out = sys.argv[1], Path(sys.argv[2])
    opt = dict(zip(sys.argv[3::2], sys.argv[4::2], strict=True))
    for flag, kind in (("--die-at", "die"), ("--stop-at", "stop")):
        if flag in opt:
            _hook(kind, int(opt[flag]))
    try:
        group = world()
        if group.size() == 1:
            raise SystemExit("not started as a rank")
        model, tokenizer = load_pipeline(model_path, group)
        held = {"layers": list(model.layers), "nbytes": model.nbytes(),
                "peak_after_load": mx.get_peak_memory(),
                "embedding": "embed_tokens" in model.part.model}
        result = run(model, tokenizer, opt.get("--prompt"), int(opt.get("--tokens", 6)))
    except GemmaError as e:  # as the command line reports it
        raise SystemExit(f"gemma-mlx: error: {e}") from None
    record = {**held, "tokens": result["tokens"], "text": result["text"], "sent": model.sent}
    (out / f"rank{group.rank()}.json").write_text(json.dumps(record))
    if is_main(group):
        np.savez(out / "logits.npz", full=result["full"], steps=result["steps"])


if __name__ == "__main__":
    main()
