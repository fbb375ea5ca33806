"""Quantization recipes on the real 270M: bits per weight, then top-1, KL, ppl per language.

    .venv/bin/python benchmarks/quant_recipes.py [--only default,high] [--peers awq,dwq]
        [--no-mlx-lm] [--json results.json]

Reference: the embedded 270M dequantized to float32 (the only float weights we have of it; its
Q4_K_M grids favour recipes that recover a grid, so absolute numbers are higher than on a
bf16 source). Scored on the built-in held-out texts (gemma_mlx/formats/heldout_text.py: English,
Chinese, Japanese, Korean, Arabic, Hindi, code), which no calibration here ever sees.
Ours: each candidate policy with the grid search, or with GPTQ on the built-in calibration text
(gemma_mlx/formats/calibration_text.py). mlx-lm: `mlx_lm.convert` (uniform min/max), and its
AWQ, GPTQ and DWQ (benchmarks/mlx_lm_quantizers.py) fed the same calibration rows, since their
own `load_data` downloads a dataset.
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import json
import time

import mlx.core as mx
from generate_vs_mlx_lm import float32_270m

from gemma_mlx.config import ModelConfig
from gemma_mlx.formats.calibrate import calibration_ids, quantize_calibrated
from gemma_mlx.formats.default_model import cache_dir
from gemma_mlx.formats.loading import build_model, load, read_safetensors, weight_files
from gemma_mlx.formats.quality import compare, heldout_sets, reference_log_probs
from gemma_mlx.formats.quantize import (
    RECIPES,
    Spec,
    Tally,
    _mixed,
    _uniform,
    quantize_planned,
)

# Candidates explored: (policy, calibrated). The winners are the named RECIPES.
CANDIDATES = {
    "u4g64": (_uniform(4, 64), False),
    "e4g64+l5g64": (_mixed(Spec(5, 64), embed=Spec(4, 64)), False),  # wave 1's default
    "e4g64+l5g64 gptq": (_mixed(Spec(5, 64), embed=Spec(4, 64)), True),
    "e5g128+l4g64": (_mixed(Spec(4, 64), embed=Spec(5, 128)), False),
    "u6g32": (_uniform(6, 32), False),
    **{name: (r.policy, r.calibrated) for name, r in RECIPES.items() if name != "qat"},
}
PEERS = ("awq", "gptq", "dwq")


def ours(refs, sets, config, ref_dir, tokenizer, policy, calibrated):
    weights = read_safetensors(weight_files(ref_dir))
    cfg = ModelConfig.from_dict(config)
    if calibrated:
        planned = quantize_calibrated(cfg, weights, policy, tokenizer, progress=False)
    else:
        planned = (t for n, w in weights.items() for t in quantize_planned(n, w, policy))
    out, tally = {}, Tally()
    for name, arr, spec in planned:
        out[name] = arr
        tally.add(name, arr, spec)
    cfg = ModelConfig.from_dict({**config, "quantization": tally.quantization()})
    return tally.bpw, score(refs, sets, build_model(cfg, out, "candidate"))


def score(refs, sets, model) -> dict:
    return {lang: compare(refs[lang], model, ids) for lang, ids in sets.items()}


# mlx-lm's checkpoints are scored through our loader: the same weights (mlx-lm's format, which
# tests/test_convert.py checks both runtimes read alike), without MLX's scalar CPU quantized
# matmul that mlx-lm's own modules call for every 256-token chunk.
def mlx_lm_default(bits: int):
    from mlx_lm import convert

    out = cache_dir() / f"bench-270m-mlx-lm-{bits}bit"
    if not (out / "config.json").is_file():
        convert(str(float32_270m()), mlx_path=str(out), quantize=True, q_bits=bits,
                q_group_size=64, dtype="float32")
    return Spec(bits, 64).bpw, load(out)[0]


def mlx_lm_peer(name: str, calib: mx.array):
    import mlx_lm_quantizers

    path = getattr(mlx_lm_quantizers, name)(calib)
    return mlx_lm_quantizers.bench(path)["bpw"], load(path)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated candidate names (default: all)")
    ap.add_argument("--peers", default=",".join(PEERS),
                    help="mlx-lm calibrated quantizers to run (awq,gptq,dwq,dynamic; '' for none)")
    ap.add_argument("--no-mlx-lm", action="store_true", help="no mlx-lm rows at all")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    ref_dir = float32_270m()
    reference, tokenizer = load(ref_dir)
    sets = heldout_sets(tokenizer)
    refs = {lang: reference_log_probs(reference, ids) for lang, ids in sets.items()}
    del reference
    config = ModelConfig.from_file(ref_dir / "config.json").raw
    calib = calibration_ids(tokenizer)
    names = args.only.split(",") if args.only else list(CANDIDATES)
    rows = [(f"ours {n}", lambda n=n: ours(refs, sets, config, ref_dir, tokenizer,
                                           *CANDIDATES[n])) for n in names]
    if not args.no_mlx_lm:
        for b in (4, 6):
            rows.append((f"mlx-lm {b}-bit g64", lambda b=b: _scored(refs, sets,
                                                                  *mlx_lm_default(b))))
        for p in filter(None, args.peers.split(",")):
            rows.append((f"mlx-lm {p}", lambda p=p: _scored(refs, sets, *mlx_lm_peer(p, calib))))
    langs = list(sets)
    print(f"held-out tokens: {', '.join(f'{k} {len(v)}' for k, v in sets.items())}; "
          f"calibration: {calib.shape[0]} rows of {calib.shape[1]} tokens")
    print("top-1 agreement with the float32 model")
    print(f"{'recipe':24} {'bpw':>5} " + " ".join(f"{k[:8]:>8}" for k in langs)
          + f" {'min':>6} {'KL':>7} {'s':>6}")
    results = {}
    for name, fn in rows:
        t = time.perf_counter()
        bpw, res = fn()
        dt = time.perf_counter() - t
        kl = sum(q.kl for q in res.values()) / len(res)
        print(f"{name:24} {bpw:5.2f} " + " ".join(f"{res[k].top1:8.3f}" for k in langs)
              + f" {min(q.top1 for q in res.values()):6.3f} {kl:7.4f} {dt:6.0f}", flush=True)
        results[name] = {"bpw": bpw, "seconds": dt, **{
            k: {"top1": q.top1, "kl": q.kl, "ppl": q.ppl, "ref_ppl": q.ref_ppl}
            for k, q in res.items()}}
        mx.clear_cache()
    for metric, label in (("kl", "KL (nats/token)"), ("ppl", "perplexity")):
        print(f"\n{label}" + (" (reference: " + ", ".join(
            f"{k} {next(iter(results.values()))[k]['ref_ppl']:.2f}" for k in langs) + ")"
            if metric == "ppl" and results else ""))
        for name, r in results.items():
            print(f"{name:24} {r['bpw']:5.2f} "
                  + " ".join(f"{r[k][metric]:8.3f}" for k in langs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def _scored(refs, sets, bpw, model):
    return bpw, score(refs, sets, model)


if __name__ == "__main__":
    main()
