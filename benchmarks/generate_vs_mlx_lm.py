"""Prompt and decode speed and peak memory: gemma-mlx vs mlx-lm on the same weights, alternating.

    .venv/bin/python benchmarks/generate_vs_mlx_lm.py [--prompt-tokens 256] [--gen-tokens 32]

Weights: (1) the embedded 270M as gemma-mlx imports it from GGUF (Q8_0/Q5_0/Q4_K kept exactly,
Q6_K as 8-bit); (2) mlx-lm's default 4-bit (groups of 64) conversion of the same model,
dequantized to float32 first (float32 scales: bfloat16 arithmetic is slow on the CPU backend).
Both engines load both directories.
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import statistics
import time
from pathlib import Path

import mlx.core as mx

from gemma_mlx.formats.default_model import cache_dir, ensure_default_model
from gemma_mlx.formats.loading import load as our_load
from gemma_mlx.formats.loading import save
from gemma_mlx.generation.generate import generate_step as our_step


def float32_270m() -> Path:
    """The embedded 270M dequantized to a float32 checkpoint directory (made once)."""
    from gemma_mlx.formats.default_model import default_gguf
    from gemma_mlx.formats.gguf import read_gguf
    from gemma_mlx.text.tokenizer import Tokenizer

    f32 = cache_dir() / "bench-270m-f32"
    if not (f32 / "tokenizer.model").is_file():
        g = read_gguf(default_gguf(cache_dir()), dequantize=True, progress=True)
        tokenizer = Tokenizer.from_gguf_vocab(g.vocab)
        save(f32, g.weights, {**g.config, "torch_dtype": "float32"}, tokenizer, force=True)
    return f32


def mlx_lm_4bit() -> Path:
    """mlx-lm's 4-bit conversion of the float32 270M (made once)."""
    from mlx_lm import convert

    out = cache_dir() / "bench-270m-mlx-lm-4bit"
    if not (out / "config.json").is_file():
        convert(str(float32_270m()), mlx_path=str(out), quantize=True, q_bits=4,
                q_group_size=64, dtype="float32")
    return out


def timed(steps, n_prompt: int, n_gen: int) -> tuple[float, float, float]:
    mx.synchronize()
    start = time.perf_counter()
    first = None
    for i, _ in enumerate(steps):
        if i == 0:
            first = time.perf_counter()
        if i + 1 == n_gen:
            break
    end = time.perf_counter()
    return n_prompt / (first - start), (n_gen - 1) / (end - first), mx.get_peak_memory() / 1e9


def run(engine: str, path: Path, prompt: list[int], n_gen: int):
    mx.clear_cache()
    mx.reset_peak_memory()
    ids = mx.array(prompt)
    if engine == "gemma-mlx":
        model, _ = our_load(path)
        steps = our_step(ids, model, max_tokens=n_gen)
    else:
        from mlx_lm.generate import generate_step
        from mlx_lm.utils import load_model

        model, _ = load_model(path)
        steps = generate_step(ids, model, max_tokens=n_gen)
    result = timed(steps, len(prompt), n_gen)
    del model, steps
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    models = {"imported GGUF (Q4_K_M)": ensure_default_model(), "mlx-lm 4-bit g64": mlx_lm_4bit()}
    prompt = [2] + [(i * 7919) % 200000 + 1000 for i in range(args.prompt_tokens - 1)]
    print(f"prompt {args.prompt_tokens} tokens, generate {args.gen_tokens}, best of {args.runs}"
          f" alternating runs, device {mx.default_device()}")
    for label, path in models.items():
        res: dict[str, list] = {"gemma-mlx": [], "mlx-lm": []}
        for _ in range(args.runs):
            for engine in res:
                res[engine].append(run(engine, path, prompt, args.gen_tokens))
        best = {e: (max(r[0] for r in v), max(r[1] for r in v), statistics.median(r[2] for r in v))
                for e, v in res.items()}
        print(f"\n{label}: {path}")
        print(f"  {'engine':<10} {'prompt tok/s':>12} {'decode tok/s':>12} {'peak GB':>8}")
        for e, (p, d, m) in best.items():
            print(f"  {e:<10} {p:>12.1f} {d:>12.2f} {m:>8.3f}")
        (op, od, om), (tp, td, tm) = best["gemma-mlx"], best["mlx-lm"]
        print(f"  ratio ours/mlx-lm: prompt {op / tp:.2f}x, decode {od / td:.2f}x, "
              f"peak memory {om / tm:.2f}x")


if __name__ == "__main__":
    main()
