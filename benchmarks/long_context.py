"""Long-context prefill of the real 270M: gemma-mlx vs mlx-lm's generate path, side by side.

    .venv/bin/python benchmarks/long_context.py [--lengths 4096 8192 16384 32768]

Both engines load the same float32 weights (the embedded 270M dequantized) and prefill the same
prompt through their generate loops (mlx-lm: generate_step, chunks of 2048; ours: generate_step,
chunks of --step). Reports prompt tok/s, peak memory and peak minus weights, then the KV-cache
bytes of the 4B and 27B shapes, and a single training-style forward at 16K.
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split
import argparse
import time

import mlx.core as mx
from generate_vs_mlx_lm import float32_270m

from gemma_mlx.formats.loading import load as our_load
from gemma_mlx.generation.generate import generate_step as our_step

SHAPES = {"4B": (34, 4, 256, 1024), "27B": (62, 16, 128, 1024)}  # layers, kv heads, dim, window


def _weights_bytes(model) -> int:
    from mlx.utils import tree_flatten

    return sum(v.nbytes for _, v in tree_flatten(model.parameters()))


def prefill(engine: str, path, n: int, step: int) -> tuple[float, float, float]:
    """Prompt tok/s, peak GB, peak minus weights GB for one prefill of n tokens."""
    ids = mx.array([2] + [(i * 7919) % 200000 + 1000 for i in range(n - 1)])
    if engine == "gemma-mlx":
        model, _ = our_load(path)
        steps = our_step(ids, model, max_tokens=1, prefill_step_size=step)
    else:
        from mlx_lm.generate import generate_step
        from mlx_lm.utils import load_model

        model, _ = load_model(path)
        steps = generate_step(ids, model, max_tokens=1, prefill_step_size=2048)
    weights = _weights_bytes(model)
    mx.clear_cache()
    mx.reset_peak_memory()
    start = time.perf_counter()
    next(iter(steps))
    elapsed = time.perf_counter() - start
    peak = mx.get_peak_memory()
    del model, steps
    mx.clear_cache()
    return n / elapsed, peak / 1e9, (peak - weights) / 1e9


def kv_bytes(shape, length: int, bits: int | None) -> int:
    """Bytes of our caches for one sequence: rings of W for 5/6 of the layers, full for 1/6."""
    layers, kv, dim, window = shape
    n_global = layers // 6
    per_pos = 2 * kv * dim  # keys and values
    elems = per_pos * (n_global * length + (layers - n_global) * min(window, length))
    if bits is None:
        return elems * 2  # bf16
    return elems * bits // 8 + 2 * (elems // 64) * 2  # + bf16 scales and biases per 64


def training_forward(path, n: int) -> str:
    model, _ = our_load(path)
    ids = mx.array([[(i * 7919) % 200000 + 1000 for i in range(n)]])
    mx.clear_cache()
    mx.reset_peak_memory()
    start = time.perf_counter()
    h = model.model(ids)  # hidden states of every position: what a training loss consumes
    mx.eval(h)
    return (f"{n} tokens in {time.perf_counter() - start:.1f} s, "
            f"peak {mx.get_peak_memory() / 1e9:.2f} GB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lengths", type=int, nargs="+", default=[4096, 8192, 16384, 32768])
    ap.add_argument("--step", type=int, default=512, help="our prefill chunk (the library default)")
    ap.add_argument("--skip-mlx-lm-above", type=int, default=32768)
    args = ap.parse_args()
    path = float32_270m()
    print(f"270M float32, device {mx.default_device()}")
    print(f"{'tokens':>7} {'engine':<10} {'prompt tok/s':>12} {'peak GB':>8} {'peak-weights':>12}")
    for n in args.lengths:
        rows = {"gemma-mlx": prefill("gemma-mlx", path, n, args.step)}
        if n <= args.skip_mlx_lm_above:
            rows["mlx-lm"] = prefill("mlx-lm", path, n, args.step)
        for e, (tps, peak, act) in rows.items():
            print(f"{n:>7} {e:<10} {tps:>12.1f} {peak:>8.3f} {act:>12.3f}")
        if "mlx-lm" in rows:
            (a, _, x), (b, _, y) = rows["gemma-mlx"], rows["mlx-lm"]
            print(f"{n:>7} ratio      speed {a / b:.2f}x, activation memory {x / y:.2f}x")
    print("\nKV-cache bytes for one sequence (GB); mlx-lm keeps the same 16-bit layout and fails")
    print("with --kv-bits on Gemma 3 (its rotating cache cannot be quantized)")
    for name, shape in SHAPES.items():
        for length in (32768, 131072):
            cells = ", ".join(f"{label} {kv_bytes(shape, length, bits) / 1e9:.2f}"
                              for label, bits in (("bf16", None), ("8-bit", 8), ("4-bit", 4)))
            full = 2 * shape[0] * shape[1] * shape[2] * length * 2 / 1e9
            print(f"  {name} at {length}: {cells}; all layers full (no rings) {full:.2f}")
    print("\nTraining-style single forward at 16K (ours):", training_forward(path, 16384))


if __name__ == "__main__":
    main()
