"""Sampler cost per token on Gemma's 262,144-entry vocabulary: ours against mlx-lm's, for
Gemma's default (temperature 1, top-k 64, top-p 0.95) and the other settings, alternating.

    .venv/bin/python benchmarks/sampling.py [--calls 20] [--rounds 3]
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import statistics
import time

import mlx.core as mx
from mlx_lm.sample_utils import make_sampler as their_sampler

from gemma_mlx.generation.sampling import make_sampler

SETTINGS = {  # name: (temperature, top_p, top_k, min_p)
    "Gemma default (top-k 64, top-p 0.95)": (1.0, 0.95, 64, 0.0),
    "top-k 64": (1.0, 1.0, 64, 0.0),
    "top-p 0.95": (1.0, 0.95, 0, 0.0),
    "min-p 0.05": (1.0, 1.0, 0, 0.05),
}


def ms(sampler, logprobs: mx.array, calls: int) -> float:
    mx.eval(sampler(logprobs))
    start = time.perf_counter()
    for _ in range(calls):
        mx.eval(sampler(logprobs))
    return (time.perf_counter() - start) / calls * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    logits = mx.random.normal((1, 262144), key=mx.random.key(0)) * 3
    logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    mx.eval(logprobs)
    print("| setting | ours ms | mlx-lm ms | mlx-lm / ours |\n|---|---:|---:|---:|")
    for name, (temp, top_p, top_k, min_p) in SETTINGS.items():
        ours = make_sampler(temp, top_p, top_k, min_p)
        theirs = their_sampler(temp, top_p if top_p < 1 else 0.0, min_p, top_k=top_k)
        times: dict[str, list[float]] = {"ours": [], "theirs": []}
        for _ in range(args.rounds):
            times["ours"].append(ms(ours, logprobs, args.calls))
            times["theirs"].append(ms(theirs, logprobs, args.calls))
        a, b = statistics.median(times["ours"]), statistics.median(times["theirs"])
        print(f"| {name} | {a:.2f} | {b:.2f} | {b / a:.1f}x |")


if __name__ == "__main__":
    main()
