"""Aggregate decode throughput: our batch engine vs mlx-lm's BatchGenerator, same weights and
prompts, at several batch sizes, in float32 and 4-bit, with peak memory.

    .venv/bin/python benchmarks/batch_vs_mlx_lm.py [--sizes 1 4 8 16 32] [--gen-tokens 24]
                                                   [--weights float32 4bit] [--runs 1]

Each engine runs the batch twice, to --gen-tokens and to 1 token; decode throughput is
B x (gen - 1) / (T_gen - T_1), so prefill is excluded on both sides. No stop tokens: every
sequence decodes to the end. The weights are generate_vs_mlx_lm.py's: the 270M dequantized
to float32, and mlx-lm's 4-bit (groups of 64) conversion of it.
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import statistics
import sys
import time
from pathlib import Path

import mlx.core as mx

sys.path.insert(0, str(Path(__file__).parent))
from generate_vs_mlx_lm import float32_270m, mlx_lm_4bit  # noqa: E402

from gemma_mlx.formats.heldout_text import HELDOUT_TEXT  # noqa: E402
from gemma_mlx.formats.loading import load as our_load  # noqa: E402
from gemma_mlx.generation.batch import BatchEngine, Request  # noqa: E402


def prompts(tokenizer, n: int, length: int) -> list[list[int]]:
    ids = tokenizer.encode(HELDOUT_TEXT, add_special_tokens=False)
    return [[2] + ids[(i * 37) % (len(ids) - length):][: length - 1] for i in range(n)]


def ours(model, batch: list[list[int]], gen: int) -> float:
    engine = BatchEngine(model, None, max_batch=len(batch))
    for i, p in enumerate(batch):
        engine.submit(Request(p, gen, stops=set(), id=i))
    start = time.perf_counter()
    n = sum(1 for _ in engine.run())
    assert n == gen * len(batch)
    return time.perf_counter() - start


def theirs(model, batch: list[list[int]], gen: int) -> float:
    from mlx_lm.generate import BatchGenerator

    g = BatchGenerator(model, stop_tokens=[], completion_batch_size=len(batch),
                       prefill_batch_size=len(batch))
    g.insert(batch, [gen] * len(batch))
    start = time.perf_counter()
    n = 0
    while responses := g.next_generated():
        n += len(responses)
    g.close()
    assert n == gen * len(batch), n
    return time.perf_counter() - start


def measure(run, model, batch, gen: int) -> tuple[float, float]:
    mx.reset_peak_memory()
    t_gen = run(model, batch, gen)
    t_one = run(model, batch, 1)
    return len(batch) * (gen - 1) / max(t_gen - t_one, 1e-9), mx.get_peak_memory() / 1e9


def alternate(runs: int, model, their_model, batch, gen: int) -> tuple[float, ...]:
    """Median tok/s and peak memory of each engine over `runs` alternating measurements."""
    ours_r, theirs_r = [], []
    for _ in range(runs):  # alternate, so drift on the shared cores hits both alike
        ours_r.append(measure(ours, model, batch, gen))
        theirs_r.append(measure(theirs, their_model, batch, gen))
    a, t = statistics.median(r[0] for r in ours_r), statistics.median(r[0] for r in theirs_r)
    return a, max(r[1] for r in ours_r), t, max(r[1] for r in theirs_r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    ap.add_argument("--gen-tokens", type=int, default=24)
    ap.add_argument("--prompt-tokens", type=int, default=48)
    ap.add_argument("--weights", nargs="+", default=["float32", "4bit"])
    ap.add_argument("--runs", type=int, default=1, help="median of this many, alternating")
    args = ap.parse_args()
    from mlx_lm import load as their_load

    paths = {"float32": float32_270m(), "4bit": mlx_lm_4bit()}
    print("| weights | batch | gemma-mlx tok/s | mlx-lm tok/s | ratio | peak GB (ours / mlx-lm) |")
    print("|---|---|---|---|---|---|")
    base: dict[str, float] = {}
    for name in args.weights:
        model, tok = our_load(paths[name])
        their_model, _ = their_load(str(paths[name]))
        ours(model, prompts(tok, 1, 8), 2)  # warm-up both
        theirs(their_model, prompts(tok, 1, 8), 2)
        for b in args.sizes:
            batch = prompts(tok, b, args.prompt_tokens)
            a, a_mem, t, t_mem = alternate(args.runs, model, their_model, batch,
                                           args.gen_tokens)
            base.setdefault(name, a)
            print(f"| {name} | {b} | {a:.1f} ({a / base[name]:.1f}x our batch 1) | {t:.1f} | "
                  f"{a / t:.2f} | {a_mem:.2f} / {t_mem:.2f} |", flush=True)
        del model, their_model


if __name__ == "__main__":
    main()
