"""mlx-lm's own calibrated quantizers (AWQ, DWQ, GPTQ, dynamic) on the real 270M, as peers.

    .venv/bin/python benchmarks/mlx_lm_quantizers.py [--only awq,dwq,gptq,dynamic] [--rebuild]
        [--awq-samples 8] [--dwq-steps 8] [--no-generate]

Source: the float32 270M checkpoint (generate_vs_mlx_lm.float32_270m). Calibration: the token
ids the caller passes (quant_recipes.py passes gemma_mlx.formats.calibrate.calibration_ids,
rows of 256 tokens), instead of the text mlx_lm.quant.utils.load_data downloads. Each result
is cached in cache_dir() / "bench-270m-mlx-lm-{name}" (built in a temporary directory and
renamed when complete), with a bench.json holding the conversion seconds, peak memory
(mx.get_peak_memory), bits per weight (all saved tensors over weight parameters, scales
and biases counted at 16 bits like Spec.bpw; bpw_as_saved with the float32 ones) and the run's
parameters. Everything else is mlx-lm's code and mlx-lm's defaults, except where noted:
- AWQ: mlx-lm's awq_quantize feeds the first block `embed_tokens(ids)` without Gemma's
  sqrt(hidden_size) embedding scale (Gemma3Model applies it after embed_tokens), so the
  residual stream starts 25x too small against the blocks' normed branches and every block
  is calibrated on activations the model never sees; here the embedding applies that scale
  while AWQ runs (the saved embedding is the plain quantized one).
- AWQ and DWQ run with QuantizedLinear (and the tied head) as a float matmul on the
  dequantized weight (_float_matmuls): the same numbers, but MLX's CPU quantized_matmul is
  ~55x slower than the float one here. `awq(samples=...)` caps the rows AWQ uses (its grid
  search is linear in them): the default 8 took 11 min on 2 shared cores, all 42 ~45 min.
- DWQ: 8 steps of batch 1 (mlx-lm's default is 2048 samples of up to 1025 tokens in batches
  of 4: days on this CPU, and batch 4 runs out of memory here); the scales and biases are
  kept in float32 like the source (mlx-lm's default bfloat16 is for bfloat16 checkpoints).
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import contextlib
import copy
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from generate_vs_mlx_lm import float32_270m

from gemma_mlx.formats.default_model import cache_dir

SEED = 123  # mlx-lm's --seed default in every quant script


def out_dir(name: str) -> Path:
    return cache_dir() / f"bench-270m-mlx-lm-{name}"


def bits_per_weight(path: Path, scale_bits: int | None = 16) -> float:
    """Bits of all saved tensors / weight parameters, with each group's scale and bias counted
    at `scale_bits` (16: as gemma_mlx's Spec.bpw and a bfloat16 mlx-lm checkpoint count them;
    None: as saved, float32 here since the source is float32)."""
    from mlx.utils import tree_flatten
    from mlx_lm.utils import get_total_parameters, load_model

    model, _ = load_model(path, lazy=True)
    bits = sum(v.size * scale_bits if scale_bits and k.endswith((".scales", ".biases"))
               else v.nbytes * 8 for k, v in tree_flatten(model.parameters()))
    return bits / get_total_parameters(model)


def bench(path: Path) -> dict:
    """The bench.json written next to a built model: seconds, peak_bytes, bpw (16-bit scales
    and biases, comparable to Spec.bpw), bpw_as_saved (float32 scales), and the run's params."""
    record = json.loads((path / "bench.json").read_text())
    if "bpw_as_saved" not in record:  # written before bpw counted 16-bit scales
        record["bpw"] = round(bits_per_weight(path), 4)
        record["bpw_as_saved"] = round(bits_per_weight(path, None), 4)
        (path / "bench.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def _build(name: str, make: Callable[[], tuple[nn.Module, object, dict, dict]],
           rebuild: bool = False) -> Path:
    """Run `make` -> (model, tokenizer, config, params), save it to out_dir(name) atomically
    with bench.json; reuse an existing complete build unless `rebuild`."""
    from mlx_lm.utils import save

    out = out_dir(name)
    if (out / "config.json").is_file() and not rebuild:
        return out
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    mx.random.seed(SEED)
    mx.clear_cache()
    mx.reset_peak_memory()
    tic = time.perf_counter()
    model, tokenizer, config, params = make()
    mx.eval(model.parameters())
    seconds = time.perf_counter() - tic
    peak = mx.get_peak_memory()
    save(tmp, float32_270m(), model, tokenizer, config)
    record = {"name": name, "seconds": round(seconds, 1), "peak_bytes": peak,
              "bpw": round(bits_per_weight(tmp), 4),
              "bpw_as_saved": round(bits_per_weight(tmp, None), 4), **params}
    (tmp / "bench.json").write_text(json.dumps(record, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def _dequantized(m: nn.Module) -> mx.array:
    """m's weight as float, differentiable in its scales and biases (affine mode)."""
    q = mx.stop_gradient(mx.dequantize(m["weight"], mx.ones_like(m["scales"]),
                                       mx.zeros_like(m["biases"]), group_size=m.group_size,
                                       bits=m.bits))
    s, b = m["scales"], m["biases"]
    return (q.reshape(*s.shape, -1) * s[..., None] + b[..., None]).reshape(q.shape)


def _linear_call(self, x):
    y = x @ _dequantized(self).T
    return y + self["bias"] if "bias" in self else y


@contextlib.contextmanager
def _float_matmuls():
    """QuantizedLinear / QuantizedEmbedding.as_linear as a float matmul on the dequantized
    weight. The same product (to float rounding), but MLX's CPU quantized_matmul runs at
    ~1.6 GFLOP/s against ~90 for the float matmul here, which makes mlx-lm's AWQ (it runs
    every block quantized) and DWQ (training through the quantized model) take hours."""
    lin, emb = nn.QuantizedLinear.__call__, nn.QuantizedEmbedding.as_linear
    nn.QuantizedLinear.__call__ = _linear_call
    nn.QuantizedEmbedding.as_linear = lambda self, x: x @ _dequantized(self).T
    try:
        yield
    finally:
        nn.QuantizedLinear.__call__, nn.QuantizedEmbedding.as_linear = lin, emb


def _load_float():
    from mlx_lm.utils import load

    model, tokenizer, config = load(float32_270m(), return_config=True)
    return model, tokenizer, config


def _calib(calib: mx.array) -> mx.array:
    calib = mx.array(calib).astype(mx.int32)
    if calib.ndim != 2:
        raise ValueError(f"calib must be [n_rows, seq_len] token ids, got {calib.shape}")
    return calib


# --- AWQ ---------------------------------------------------------------------------------

class _ScaledQuantizedEmbedding(nn.QuantizedEmbedding):
    """QuantizedEmbedding times Gemma's bf16-rounded sqrt(hidden_size), as Gemma3Model
    applies after embed_tokens; awq_quantize calls the embedding directly and skips it."""

    def __call__(self, x):
        h = super().__call__(x)
        return h * mx.array(self.dims**0.5, mx.bfloat16).astype(h.dtype)


class _AWQEmbedding(nn.Embedding):
    def to_quantized(self, group_size=None, bits=None, mode="affine", quantize_input=False):
        return _ScaledQuantizedEmbedding.from_embedding(self, group_size, bits, mode)


def awq(calib: mx.array, bits: int = 4, group_size: int = 64, embed_bits: int = 4,
        embed_group_size: int = 32, n_grid: int = 20, samples: int | None = 8,
        rebuild: bool = False) -> Path:
    """mlx_lm.quant.awq.awq_quantize on our calibration rows. Defaults are mlx-lm's main():
    4-bit g64 linears, 4-bit g32 (tied) embedding, n_grid 20; the first `samples` rows of
    calib (None: all; mlx-lm's main() takes 128 rows of 512 tokens, too slow on this CPU)."""
    from mlx_lm.quant.awq import AWQ_MODEL_CONFIGS, awq_quantize, update_config

    calib = _calib(calib)[: samples or None]

    def make():
        model, tokenizer, config = _load_float()
        awq_config = AWQ_MODEL_CONFIGS.get(config["model_type"])
        if awq_config is None:
            raise NotImplementedError(f"mlx-lm AWQ has no config for {config['model_type']}")
        inner = model.model
        emb = _AWQEmbedding(*inner.embed_tokens.weight.shape)
        emb.weight = inner.embed_tokens.weight
        inner.embed_tokens = emb
        with _float_matmuls():
            awq_quantize(model, calib, awq_config, group_size=group_size, bits=bits,
                         embed_group_size=embed_group_size, embed_bits=embed_bits,
                         n_grid=n_grid)
        scaled = inner.embed_tokens  # back to a plain QuantizedEmbedding (no extra scale)
        plain = nn.QuantizedEmbedding(scaled.num_embeddings, scaled.dims, scaled.group_size,
                                      scaled.bits)
        plain.update(scaled.parameters())
        inner.embed_tokens = plain
        config = update_config(model, config)
        params = {"bits": bits, "group_size": group_size, "embed_bits": embed_bits,
                  "embed_group_size": embed_group_size, "n_grid": n_grid,
                  "samples": calib.shape[0], "seq_len": calib.shape[1],
                  "note": "Gemma embedding scale applied during AWQ (missing in mlx-lm)"}
        return model, tokenizer, config, params

    name = f"awq-{bits}bit" + ("" if (embed_bits, embed_group_size) == (4, 32)
                               else f"-e{embed_bits}g{embed_group_size}")
    return _build(name, make, rebuild)


# --- GPTQ --------------------------------------------------------------------------------

def gptq(calib: mx.array, bits: int = 4, group_size: int = 64, fallback_bits: int = 6,
         fallback_group_size: int = 64, rebuild: bool = False) -> Path:
    """mlx_lm.quant.gptq.gptq_quantize on our calibration rows. Defaults are mlx-lm's main():
    4-bit g64 GPTQ for every Linear, the rest (the tied embedding) 6-bit g64 round-to-nearest."""
    from mlx_lm.quant.gptq import gptq_quantize

    calib = _calib(calib)

    def make():
        model, tokenizer, config = _load_float()
        model, config["quantization"] = gptq_quantize(
            model, calib, bits, group_size, fallback_bits, fallback_group_size)
        params = {"bits": bits, "group_size": group_size, "fallback_bits": fallback_bits,
                  "fallback_group_size": fallback_group_size, "samples": calib.shape[0],
                  "seq_len": calib.shape[1]}
        return model, tokenizer, config, params

    name = f"gptq-{bits}bit" + ("" if (fallback_bits, fallback_group_size) == (6, 64)
                                else f"-f{fallback_bits}g{fallback_group_size}")
    return _build(name, make, rebuild)


# --- DWQ ---------------------------------------------------------------------------------

def dwq(calib: mx.array, bits: int = 4, group_size: int = 64, steps: int = 8,
        batch_size: int = 1, learning_rate: float = 1e-6, n_valid: int = 2,
        rebuild: bool = False) -> Path:
    """mlx_lm.quant.dwq.dwq_quantize as its main() runs it without --quantized-model:
    round-to-nearest `bits`/`group_size` of the float model (mlx_lm.utils.quantize_model),
    then its scales and biases distilled (KL at temperature 2) against the float model's
    logits on our calibration rows, with mlx-lm's Adam at lr 1e-6. The first `n_valid` rows
    are the validation set, the rest are cycled for `steps` training batches. mlx-lm's batch
    is 4, but 4 rows of 256 tokens carry ~1 GB of float32 logits per copy (262k vocabulary)
    and the run was killed for memory at ~10.6 GB on this 24 GB machine; and every step takes
    minutes on the CPU, so the defaults here are batch 1, 8 steps, 2 validation rows."""
    import mlx.optimizers as optimizers
    import numpy as np
    from mlx_lm.quant.dwq import dwq_quantize
    from mlx_lm.utils import quantize_model

    calib = _calib(calib)
    rows = [(r, 0) for r in calib.tolist()]
    valid, train = rows[:n_valid], rows[n_valid:]
    if len(train) < batch_size or len(valid) < batch_size:
        raise ValueError(f"need at least {n_valid + batch_size} calibration rows")
    per_epoch = len(train) // batch_size
    epochs = -(-steps // per_epoch)
    train = (train * epochs)[: steps * batch_size]  # iterate_batches runs one pass

    def make():
        np.random.seed(SEED)
        model, tokenizer, config = _load_float()
        model.freeze()
        q_model = copy.deepcopy(model)
        q_model, config = quantize_model(q_model, config, group_size=group_size, bits=bits)

        def target_fn(batch, idx, split):
            return mx.stop_gradient(model(batch))

        opt = optimizers.Adam(learning_rate=learning_rate, bias_correction=True)
        with _float_matmuls():
            dwq_quantize(q_model, target_fn, opt, train, valid, batch_size=batch_size,
                         max_seq_length=1025, seed=SEED, dtype=mx.float32)
        q_model.eval()
        q_model.freeze()
        params = {"bits": bits, "group_size": group_size, "steps": len(train) // batch_size,
                  "batch_size": batch_size, "learning_rate": learning_rate,
                  "train_rows": len(train),
                  "distinct_train_rows": min(len(train), len(rows) - n_valid),
                  "valid_rows": len(valid), "seq_len": calib.shape[1],
                  "temperature": 2.0, "dtype": "float32"}
        return q_model, tokenizer, config, params

    return _build(f"dwq-{bits}bit", make, rebuild)


# --- dynamic -----------------------------------------------------------------------------

def dynamic(calib: mx.array, target_bpw: float = 5.0, low_bits: int = 4,
            low_group_size: int = 64, high_bits: int = 5, high_group_size: int = 64,
            rebuild: bool = False) -> Path:
    """mlx_lm.quant.dynamic_quant: per-layer sensitivities (gradient of the KL to the float
    model, on our calibration rows), then `high_bits` for the most sensitive layers up to
    `target_bpw`, `low_bits` elsewhere. Defaults are mlx-lm's main()."""
    from mlx_lm.quant.dynamic_quant import estimate_sensitivities, estimate_threshold
    from mlx_lm.utils import quantize_model

    calib = _calib(calib)

    def make():
        model, tokenizer, config = _load_float()
        sens = dict(estimate_sensitivities(model, calib, low_bits, low_group_size,
                                           high_bits, high_group_size))
        threshold = estimate_threshold(model, sens, target_bpw, low_bits, low_group_size,
                                       high_bits, high_group_size)

        def predicate(p, m):
            if not hasattr(m, "to_quantized"):
                return False
            if sens[p] > threshold:
                return {"bits": high_bits, "group_size": high_group_size}
            return True

        model, config = quantize_model(model, config, group_size=low_group_size,
                                       bits=low_bits, quant_predicate=predicate)
        high = sorted(p for p, s in sens.items() if s > threshold)
        params = {"target_bpw": target_bpw, "low": [low_bits, low_group_size],
                  "high": [high_bits, high_group_size], "samples": calib.shape[0],
                  "seq_len": calib.shape[1], "high_layers": high}
        return model, tokenizer, config, params

    return _build(f"dynamic-{target_bpw:g}bpw", make, rebuild)


BUILDERS = {"awq": awq, "dwq": dwq, "gptq": gptq, "dynamic": dynamic}


def check(path: Path, prompt: str = "The capital of France is", max_tokens: int = 24) -> str:
    """Load with mlx_lm.utils.load and greedily continue a short prompt. The prompt goes in
    as ids with <bos> first: mlx-lm's tokenizer for this checkpoint (tokenizer.model only)
    adds none, and Gemma without <bos> degenerates."""
    from mlx_lm import generate
    from mlx_lm.utils import load

    model, tokenizer = load(path)
    ids = [tokenizer.bos_token_id, *tokenizer.encode(prompt)]
    return generate(model, tokenizer, ids, max_tokens=max_tokens)


def main() -> None:
    from gemma_mlx.formats.calibrate import calibration_ids
    from gemma_mlx.text.tokenizer import Tokenizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated: " + ",".join(BUILDERS))
    ap.add_argument("--rebuild", action="store_true", help="ignore cached builds")
    ap.add_argument("--dwq-steps", type=int, default=None, help="default 8")
    ap.add_argument("--awq-samples", type=int, default=None,
                    help="calibration rows for AWQ (default 8; 0: all)")
    ap.add_argument("--no-generate", action="store_true")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(BUILDERS)
    calib = calibration_ids(Tokenizer.from_dir(float32_270m()))  # ours adds <bos>
    print(f"calibration: {calib.shape[0]} rows x {calib.shape[1]} tokens")
    print(f"{'quantizer':<10} {'bpw':>7} {'(saved)':>7} {'seconds':>8} {'peak GB':>8}")
    for name in names:
        kw = {"dwq": {"steps": args.dwq_steps}, "awq": {"samples": args.awq_samples}}
        kw = {k: v for k, v in kw.get(name, {}).items() if v is not None}
        path = BUILDERS[name](calib, rebuild=args.rebuild, **kw)
        b = bench(path)
        print(f"{name:<10} {b['bpw']:>7.3f} {b['bpw_as_saved']:>7.3f} {b['seconds']:>8.1f}"
              f" {b['peak_bytes'] / 1e9:>8.2f}  {path}", flush=True)
        if not args.no_generate:
            print(f"  -> {check(path)!r}", flush=True)


if __name__ == "__main__":
    main()
