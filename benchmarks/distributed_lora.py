"""Data-parallel LoRA: all-reduce time per step and tokens/s, 1 rank against 2 local ring ranks,
and what 2 Macs over Thunderbolt would give, from the bytes all-reduced per step.

    .venv/bin/python benchmarks/distributed_lora.py [--batch 4] [--length 128] [--steps 3]

Weights: the embedded 270M dequantized to float32 (benchmarks/generate_vs_mlx_lm.py). LoRA
rank 8, scale 20, all seven projections of the last 16 layers, Adam; global batch --batch
random rows of --length tokens, the loss on every token. 1 rank trains on the whole batch;
2 ranks (launch_local: real ring ranks on loopback) take half each, as `mlx.launch -n 2 ...
gemma-mlx lora` does. Here both ranks share the same cores, so 2 ranks are not faster: what is
measured is the communication. Per step: compute (forward + backward of the rank's rows), the
all-reduce as the trainer does it (token_weighted_mean, which includes waiting for the slower
rank), and a bare all_sum of the same bytes after a barrier (the transport alone). The first
step is a warm-up and not timed.
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from generate_vs_mlx_lm import float32_270m
from lora_vs_mlx_lm import KEYS

from gemma_mlx.distributed import launch_local, token_weighted_mean, world

# hidden, q width, kv width, intermediate, layers (GUIDE §3; head_dim 256, 27B 128)
SHAPES = {"270M": (640, 1024, 256, 2048, 18), "1B": (1152, 1024, 256, 6912, 26),
          "4B": (2560, 2048, 1024, 10240, 34), "12B": (3840, 4096, 2048, 15360, 48),
          "27B": (5376, 4096, 2048, 21504, 62)}
# Links, as (name, bytes/s, seconds per message): assumptions to check on real Macs. Ring over
# a Thunderbolt bridge is TCP (~10 Gbit/s is typical of TB4 bridges); JACCL is RDMA over TB5
# (8 GB/s at 64 MB, 25.5 us at 4 KB: omar-karray/mlx-jaccl-cluster, research note §2.4).
LINKS = [("ring, 1 GbE", 0.117e9, 200e-6), ("ring, TB bridge", 1.2e9, 100e-6),
         ("JACCL, TB5", 8e9, 25e-6)]


def lora_params(shape: tuple[int, ...], rank: int = 8, layers: int = 16) -> int:
    """Trainable LoRA parameters: rank x (in + out) for each of the seven projections."""
    d, q, kv, f, _ = shape
    per_layer = rank * ((d + q) * 2 + (d + kv) * 2 + (d + f) * 3)
    return per_layer * layers


def child(batch: int, length: int, steps: int) -> None:
    from gemma_mlx.formats.loading import load
    from gemma_mlx.lora.layers import apply_lora
    from gemma_mlx.lora.loss import lm_loss, training_head

    group = world()
    model, _ = load(str(float32_270m()))
    mx.random.seed(0)
    apply_lora(model, 16, 8, 20.0, 0.0, tuple(KEYS))
    head = training_head(model)
    optimizer = optim.Adam(learning_rate=1e-5)
    loss_and_grad = nn.value_and_grad(model, lambda m, ids, mask: lm_loss(m, ids, mask, head)[0])
    share = batch // group.size()
    rows = np.random.default_rng(0).integers(3, 262000, (batch, length)).astype(np.int32)
    ids = mx.array(rows[group.rank() * share : (group.rank() + 1) * share])
    mask = np.ones((share, length - 1), bool)
    t = {"compute": [], "allreduce": [], "bare": [], "step": []}
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss, grads = loss_and_grad(model, ids, mask)
        mx.eval(loss, grads)
        t1 = time.perf_counter()
        if group.size() > 1:
            grads, loss, _ = token_weighted_mean(grads, loss, int(mask.sum()), group)
            mx.eval(grads, loss)
        t2 = time.perf_counter()
        optimizer.update(model, grads)
        mx.eval(loss, model.trainable_parameters(), optimizer.state)
        t3 = time.perf_counter()
        bare = _bare_all_sum(grads, group)
        if i:
            for k, v in (("compute", t1 - t0), ("allreduce", t2 - t1), ("step", t3 - t0),
                         ("bare", bare)):
                t[k].append(v)
    params = sum(p.size for _, p in nn.utils.tree_flatten(model.trainable_parameters()))
    if group.rank() == 0:
        print(json.dumps({k: float(np.mean(v)) for k, v in t.items()}
                         | {"tok_s": batch * (length - 1) / float(np.mean(t["step"])),
                            "bytes": 4 * (params + 2), "loss": loss.item()}))


def _bare_all_sum(grads, group) -> float:
    """Seconds of one all_sum of the trainer's bytes, after a barrier (the transport alone)."""
    if group.size() == 1:
        return 0.0
    size = sum(v.size for _, v in nn.utils.tree_flatten(grads)) + 2
    x = mx.ones((size,))
    mx.eval(x, mx.distributed.all_sum(mx.array(1.0), group=group))  # barrier
    t = time.perf_counter()
    mx.eval(mx.distributed.all_sum(x, group=group))
    return time.perf_counter() - t


def _run(ranks: int, args) -> dict:
    cmd = [sys.executable, __file__, "--child", str(args.batch), str(args.length),
           str(args.steps)]
    if ranks == 1:
        out = subprocess.run(cmd, capture_output=True, text=True)
        results = [(out.returncode, out.stdout, out.stderr)]
    else:
        with tempfile.TemporaryDirectory() as d:
            results = [(r.returncode, r.stdout, r.stderr)
                       for r in launch_local(ranks, cmd, str(Path(d) / "hosts.json"))]
    for rc, _, err in results:
        if rc:
            raise SystemExit(f"{ranks} rank(s) failed ({rc}): {err[-2000:]}")
    return json.loads(results[0][1].strip().splitlines()[-1])


def on_paper(two: dict) -> None:
    """2 Macs vs 1 for LoRA: step = half the compute + the all-reduce on the link."""
    print("\nOn paper, 2 Macs vs 1 (LoRA rank 8, 16 layers, 7 projections; a 2-rank ring "
          "all-reduce sends and receives the buffer once per rank):")
    print(f"{'model':>5} {'MB/step':>8} " + " ".join(f"{n:>16}" for n, _, _ in LINKS)
          + "   (ms per all-reduce; speedup at 1 s, 10 s per 1-Mac step)")
    for name, shape in SHAPES.items():
        b = 4 * (lora_params(shape, layers=min(16, shape[4])) + 2)
        cells = []
        for _, bw, lat in LINKS:
            c = 2 * lat + b / bw  # reduce-scatter + all-gather: two messages of b/2 each way
            s1, s10 = 1 / (0.5 + c), 10 / (5 + c)
            cells.append(f"{c * 1e3:6.1f} {s1:4.2f}x {s10:4.2f}x")
        print(f"{name:>5} {b / 1e6:8.2f} " + " ".join(f"{x:>16}" for x in cells))
    print(f"(this machine's measured bare all_sum of {two['bytes'] / 1e6:.2f} MB on loopback: "
          f"{two['bare'] * 1e3:.1f} ms = {two['bytes'] / max(two['bare'], 1e-9) / 1e9:.2f} GB/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    float32_270m()
    print(f"270M float32, global batch {args.batch} x {args.length} tokens, {args.steps} steps")
    print(f"{'ranks':>5} {'step s':>7} {'compute s':>9} {'all-reduce ms':>13} "
          f"{'bare ms':>8} {'MB/step':>8} {'tok/s':>7} {'loss':>7}")
    rows = {}
    for ranks in (1, 2):
        rows[ranks] = r = _run(ranks, args)
        print(f"{ranks:5} {r['step']:7.2f} {r['compute']:9.2f} {r['allreduce'] * 1e3:13.1f} "
              f"{r['bare'] * 1e3:8.1f} {r['bytes'] / 1e6:8.2f} {r['tok_s']:7.1f} "
              f"{r['loss']:7.3f}", flush=True)
    one, two = rows[1], rows[2]
    print(f"2 ranks on these shared cores: all-reduce {two['allreduce'] / two['step']:.1%} of "
          f"the step (bare transport {two['bare'] / two['step']:.1%}); tok/s ratio "
          f"{two['tok_s'] / one['tok_s']:.2f}x (same cores: not a speedup)")
    formula = 4 * (lora_params(SHAPES["270M"]) + 2)
    print(f"bytes per step: measured {two['bytes']}, formula for 270M {formula}")
    on_paper(two)


if __name__ == "__main__":
    main()
