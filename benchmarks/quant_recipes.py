"""Quantization recipes on the real 270M: bits per weight vs top-1 agreement, KL, perplexity.

    .venv/bin/python benchmarks/quant_recipes.py [--only default,high] [--no-mlx-lm]

Reference: the embedded 270M dequantized to float32 (the only float weights we have of it).
Ours: each candidate policy applied with gemma_mlx.formats.quantize; mlx-lm: its own converter
(`mlx_lm.convert`, uniform affine) on the same float32 checkpoint, scored the same way on the
built-in held-out text (gemma_mlx.formats.heldout_text, ~800 tokens).
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import time

import mlx.core as mx
from generate_vs_mlx_lm import float32_270m

from gemma_mlx.config import ModelConfig
from gemma_mlx.formats.default_model import cache_dir
from gemma_mlx.formats.loading import _read_safetensors, build_model, load, weight_files
from gemma_mlx.formats.quality import compare, heldout_ids, reference_log_probs
from gemma_mlx.formats.quantize import RECIPES, Spec, _mixed, _uniform, quantize_weights

# Candidates explored; the winners are the named RECIPES.
CANDIDATES = {
    "u4g64 minmax": (_uniform(4, 64), False),  # what mlx-lm does
    "u4g64": (_uniform(4, 64), True),
    "u4g32": (_uniform(4, 32), True),
    "e4g64+l5g64": (_mixed(Spec(5, 64), embed=Spec(4, 64)), True),
    "e4g64+l5g32": (_mixed(Spec(5, 32), embed=Spec(4, 64)), True),
    "u6g32": (_uniform(6, 32), True),
    "e5g32+l8g64": (_mixed(Spec(8, 64), embed=Spec(5, 32)), True),
    "e6g64+l8g64": (_mixed(Spec(8, 64), embed=Spec(6, 64)), True),
    "e6g128+l8g128": (_mixed(Spec(8, 128), embed=Spec(6, 128)), True),
    "e6g64+l6g32": (_mixed(Spec(6, 32), embed=Spec(6, 64)), True),
    "e6g64+l5g32": (_mixed(Spec(5, 32), embed=Spec(6, 64)), True),
    **{name: (policy, True) for name, (_, policy) in RECIPES.items()},
}


def ours(reference, ids, weights, config, candidate):
    qw, entries, bpw = quantize_weights(weights, *candidate)
    cfg = {**config, "quantization": {"group_size": 64, "bits": 4, **entries}}
    model = build_model(ModelConfig.from_dict(cfg), qw, "candidate")
    return bpw, compare(reference, model, ids)


def mlx_lm(ids, bits: int):
    from mlx_lm import convert
    from mlx_lm.utils import load_model

    ref_dir = float32_270m()
    out = cache_dir() / f"bench-270m-mlx-lm-{bits}bit"
    if not (out / "config.json").is_file():
        convert(str(ref_dir), mlx_path=str(out), quantize=True, q_bits=bits, q_group_size=64,
                dtype="float32")
    reference, _ = load_model(ref_dir)
    model, _ = load_model(out)
    return Spec(bits, 64).bpw, compare(reference, model, ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated candidate names")
    ap.add_argument("--no-mlx-lm", action="store_true")
    args = ap.parse_args()
    ref_dir = float32_270m()
    reference, tokenizer = load(ref_dir)
    ids = heldout_ids(tokenizer)
    reference = reference_log_probs(reference, ids)
    weights = _read_safetensors(weight_files(ref_dir))
    config = ModelConfig.from_file(ref_dir / "config.json").raw
    names = args.only.split(",") if args.only else list(CANDIDATES)
    rows = [(f"ours {n}", lambda n=n: ours(reference, ids, weights, config, CANDIDATES[n]))
            for n in names]
    if not args.no_mlx_lm:
        rows += [(f"mlx-lm {b}-bit g64", lambda b=b: mlx_lm(ids, b)) for b in (4, 6, 8)]
    print(f"{len(ids)} held-out tokens; reference: float32 dequantized Q4_K_M 270M")
    print(f"{'recipe':22} {'bpw':>5} {'top-1':>6} {'KL':>7} {'ppl':>7} {'ref ppl':>7} {'s':>5}")
    for name, fn in rows:
        t = time.perf_counter()
        bpw, q = fn()
        print(f"{name:22} {bpw:5.2f} {q.top1:6.3f} {q.kl:7.4f} {q.ppl:7.2f} {q.ref_ppl:7.2f} "
              f"{time.perf_counter() - t:5.1f}", flush=True)
        mx.clear_cache()


if __name__ == "__main__":
    main()
