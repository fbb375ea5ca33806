"""LoRA training step: tokens/s and peak memory, gemma-mlx vs mlx-lm, on the same weights.

    .venv/bin/python benchmarks/lora_vs_mlx_lm.py [--lengths 512,2048,8192] [--steps 2]

Weights: the embedded 270M dequantized to float32 (benchmarks/generate_vs_mlx_lm.py), loaded
by each library. Settings for both: batch 1, one random sequence of the given length with the
loss on every token, LoRA rank 8, scale 20, on all seven projections of the last 16 layers,
Adam. Each (engine, length) runs in a child process so peak memory is its own; the first step
(warm-up) is not timed. mlx-lm: its LoRA layers and `default_loss` (full logits); gemma-mlx:
its trainer's loss (chunked cross-entropy) and O(L*W) attention.
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from generate_vs_mlx_lm import float32_270m

KEYS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def step_fn(engine: str, path: str):
    """(model, loss function of (model, ids)) for the engine, adapters applied."""
    if engine == "gemma-mlx":
        from gemma_mlx.formats.loading import load
        from gemma_mlx.lora.layers import apply_lora
        from gemma_mlx.lora.loss import lm_loss, training_head

        model, _ = load(path)
        apply_lora(model, 16, 8, 20.0, 0.0, tuple(KEYS))
        head = training_head(model)
        return model, lambda m, ids: lm_loss(m, ids, np.ones((1, ids.shape[1] - 1), bool),
                                             head)[0]
    from mlx_lm.tuner.trainer import default_loss
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load_model

    model, _ = load_model(Path(path))
    model.freeze()
    linear_to_lora_layers(model, 16, {"rank": 8, "scale": 20.0, "dropout": 0.0, "keys": KEYS})
    return model, lambda m, ids: default_loss(m, ids, mx.array([[1, ids.shape[1] - 1]]))[0]


def child(engine: str, length: int, steps: int) -> None:
    model, loss = step_fn(engine, str(float32_270m()))
    optimizer = optim.Adam(learning_rate=1e-5)
    loss_and_grad = nn.value_and_grad(model, loss)
    ids = mx.array(np.random.default_rng(0).integers(3, 262000, (1, length)).astype(np.int32))
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        value, grads = loss_and_grad(model, ids)
        optimizer.update(model, grads)
        mx.eval(value, model.trainable_parameters(), optimizer.state)
        times.append(time.perf_counter() - t)
    print(json.dumps({"tok_s": (length - 1) / float(np.mean(times[1:])),
                      "peak_gb": mx.get_peak_memory() / 1e9, "loss": value.item()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="512,2048,8192")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]), args.steps)
    float32_270m()
    print(f"{'length':>6} {'engine':10} {'tok/s':>8} {'peak GB':>8} {'loss':>7}")
    for length in map(int, args.lengths.split(",")):
        rows = {}
        for engine in ("gemma-mlx", "mlx-lm"):
            out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps),
                                  "--child", engine, str(length)], capture_output=True, text=True)
            if out.returncode:
                why = (out.stderr.strip().splitlines() or [f"killed (signal {-out.returncode}"
                                                           ", out of memory?)"])[-1]
                print(f"{length:6} {engine:10} failed: {why}")
                continue
            rows[engine] = r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{length:6} {engine:10} {r['tok_s']:8.1f} {r['peak_gb']:8.2f} {r['loss']:7.3f}",
                  flush=True)
        if len(rows) == 2:
            a, b = rows["gemma-mlx"], rows["mlx-lm"]
            print(f"{length:6} {'ratio':10} {a['tok_s'] / b['tok_s']:8.2f}x "
                  f"{a['peak_gb'] / b['peak_gb']:7.2f}x")


if __name__ == "__main__":
    main()
