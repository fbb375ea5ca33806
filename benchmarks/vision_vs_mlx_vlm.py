"""The vision path, gemma-mlx vs mlx-vlm, on the same random weights: time, memory, correctness.

    .venv/bin/pip install --no-deps mlx-vlm   # its gemma3 model needs nothing more
    .venv/bin/python benchmarks/vision_vs_mlx_vlm.py [--vision-layers 27] [--images 2] [--runs 2]

Writes one random Gemma3ForConditionalGeneration checkpoint in the hub layout (SigLIP at the
released width, 1152 x 16 heads at 896 px, --vision-layers deep; the text decoder of the 270M
with the multimodal vocabulary), loads it in both engines, and times:
  1. the vision tower + projector on --images images;
  2. an image+text prefill to the first token's logits (the images plus --text-tokens of text).
Reports the fastest of --runs, peak memory and peak minus weights, then how far apart the two
engines' logits are, and that mlx-vlm equals our output with the image mask switched off.
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split
import argparse
import json
import tempfile
import time
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from gemma_mlx.attention import image_blocks
from gemma_mlx.formats.loading import load as our_load
from gemma_mlx.generation.prefill import prefill_chunks

IMAGE, BOI, EOI = 262144, 255999, 256000
TEXT = {"model_type": "gemma3_text", "hidden_size": 640, "intermediate_size": 2048,
        "num_hidden_layers": 18, "num_attention_heads": 4, "num_key_value_heads": 1,
        "head_dim": 256, "query_pre_attn_scalar": 256, "sliding_window": 512,
        "vocab_size": 262208, "rope_scaling": {"rope_type": "linear", "factor": 8.0}}


def write_checkpoint(path: Path, vision_layers: int) -> None:
    """Hub-layout checkpoint with N(0, 1/fan_in) weights, norms near their identities."""
    config = {
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
        "text_config": TEXT, "boi_token_index": BOI, "eoi_token_index": EOI,
        "image_token_index": IMAGE, "mm_tokens_per_image": 256, "eos_token_id": [1, 106],
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152,
                          "intermediate_size": 4304, "num_hidden_layers": vision_layers,
                          "num_attention_heads": 16, "image_size": 896, "patch_size": 14,
                          "vision_use_head": False},
    }  # fmt: skip
    (path / "config.json").write_text(json.dumps(config))
    from gemma_mlx.config import ModelConfig
    from gemma_mlx.models.multimodal import Gemma3ForConditionalGeneration

    model = Gemma3ForConditionalGeneration(ModelConfig.from_dict(config))
    key = mx.random.key(0)
    weights = {}
    for name, p in tree_flatten(model.parameters()):
        key, sub = mx.random.split(key)
        if "norm" in name and name.endswith("bias"):
            w = mx.zeros(p.shape)
        elif "layer_norm" in name or "post_layernorm" in name:
            w = mx.ones(p.shape)
        elif "norm" in name:  # Gemma RMSNorm: 1 + w
            w = mx.random.normal(p.shape, key=sub) * 0.1
        elif p.ndim == 1:
            w = mx.random.normal(p.shape, key=sub) * 0.02
        else:
            fan_in = p.shape[0] if "projection" in name else int(np.prod(p.shape[1:]))
            w = mx.random.normal(p.shape, key=sub) * fan_in**-0.5
        weights[hub_name(name)] = w
        mx.eval(w)
    mx.save_safetensors(str(path / "model.safetensors"), weights)


def hub_name(name: str) -> str:
    if name.startswith("model."):
        return "language_model." + name
    if name.startswith("vision_tower."):
        return "vision_tower.vision_model." + name[len("vision_tower."):]
    return name


def load_mlx_vlm(path: Path):
    """mlx_vlm.utils.load_model's steps for gemma3, without its optional imports."""
    from mlx_vlm.models import gemma3 as g

    config = json.loads((path / "config.json").read_text())
    cfg = g.ModelConfig.from_dict(config)
    cfg.text_config = g.TextConfig.from_dict(config["text_config"])
    cfg.vision_config = g.VisionConfig.from_dict(config["vision_config"])
    model = g.Model(cfg)
    weights = mx.load(str(path / "model.safetensors"))
    weights = g.VisionModel(cfg.vision_config).sanitize(weights)
    weights = g.LanguageModel(cfg.text_config).sanitize(weights)
    model.load_weights(list(weights.items()))
    mx.eval(model.parameters())
    return model


def prompt(images: int, text_tokens: int) -> list[int]:
    ids = [2, 105, 2364, 107]
    for _ in range(images):
        ids += [108, BOI] + [IMAGE] * 256 + [EOI, 108]
    return ids + [(i * 7919) % 200000 + 1000 for i in range(text_tokens)] + [106, 107, 105]


def vision_ours(model, pixels: mx.array) -> mx.array:
    return model.encode_images(pixels)


def vision_vlm(model, pixels: mx.array) -> mx.array:
    hidden, _, _ = model.vision_tower(pixels.transpose(0, 2, 3, 1), output_hidden_states=True)
    return model.multi_modal_projector(hidden)


def prefill_ours(model, ids: list[int], pixels: mx.array, image_mask: bool = True) -> mx.array:
    """What stream_generate does: images one by one, merged rows, chunks that keep images.

    image_mask=False decodes the images causally, as mlx-vlm does."""
    emb = model.embed(mx.array(ids)[None], image_features=model.encode_images(pixels))
    blocks = image_blocks(np.array(ids), IMAGE) if image_mask else ()
    cache = model.make_cache()
    bounds = prefill_chunks(len(ids), 2048, blocks)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        h = model.model(None, cache, emb[:, a:b], [(s, e) for s, e in blocks if a <= s < b])
    return model.logits(h[:, -1])


def prefill_vlm(model, ids: list[int], pixels: mx.array) -> mx.array:
    """mlx-vlm's generate: embeddings with the images, then the language model over them."""
    from mlx_vlm.models.cache import make_prompt_cache

    x = mx.array(ids)[None]
    emb = model.get_input_embeddings(x, pixels, mask=mx.ones(x.shape)).inputs_embeds
    cache = make_prompt_cache(model.language_model)
    out = model.language_model(x, inputs_embeds=emb, cache=cache)
    return getattr(out, "logits", out)[:, -1]


def measure(fn, model, *args, runs: int) -> tuple[float, float, float, mx.array]:
    weights = sum(v.nbytes for _, v in tree_flatten(model.parameters()))
    best = float("inf")
    for _ in range(runs):
        mx.clear_cache()
        mx.reset_peak_memory()
        start = time.perf_counter()
        out = fn(model, *args)
        mx.eval(out)
        best = min(best, time.perf_counter() - start)
    peak = mx.get_peak_memory()
    return best, peak / 1e9, (peak - weights) / 1e9, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vision-layers", type=int, default=4)
    ap.add_argument("--images", type=int, default=1)
    ap.add_argument("--text-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    pixels = mx.random.uniform(-1, 1, (args.images, 3, 896, 896), key=mx.random.key(1))
    ids = prompt(args.images, args.text_tokens)
    print(f"SigLIP 1152 x {args.vision_layers} layers at 896 px; {args.images} image(s); "
          f"prompt {len(ids)} tokens; fastest of {args.runs} run(s)")
    with tempfile.TemporaryDirectory() as tmp:
        write_checkpoint(Path(tmp), args.vision_layers)
        rows, logits = {}, {}
        for engine in ("gemma-mlx", "mlx-vlm"):
            model = our_load(tmp)[0] if engine == "gemma-mlx" else load_mlx_vlm(Path(tmp))
            vision = vision_ours if engine == "gemma-mlx" else vision_vlm
            prefill = prefill_ours if engine == "gemma-mlx" else prefill_vlm
            rows[engine, "vision"] = measure(vision, model, pixels, runs=args.runs)[:3]
            *rows[engine, "prefill"], logits[engine] = measure(prefill, model, ids, pixels,
                                                               runs=args.runs)
            if engine == "gemma-mlx":
                logits["causal"] = prefill_ours(model, ids, pixels, image_mask=False)
            del model
    print(f"\n{'step':<10}{'engine':<11}{'seconds':>9}{'peak GB':>9}{'- weights':>11}")
    for step in ("vision", "prefill"):
        for engine in ("gemma-mlx", "mlx-vlm"):
            t, peak, act = rows[engine, step]
            print(f"{step:<10}{engine:<11}{t:>9.2f}{peak:>9.2f}{act:>11.2f}")
        (t0, p0, a0), (t1, p1, a1) = rows["gemma-mlx", step], rows["mlx-vlm", step]
        print(f"{'':<10}{'ratio':<11}{t1 / t0:>8.2f}x{p0 / p1:>8.2f}x{a0 / a1:>10.2f}x"
              "   (speed-up; our memory / theirs)")
    def diff(a: str, b: str) -> float:
        return float(mx.abs(logits[a] - logits[b]).max())

    print("\nmax |first-token logit diff|:")
    print(f"  gemma-mlx vs mlx-vlm:                             {diff('gemma-mlx', 'mlx-vlm'):.3g}")
    print(f"  gemma-mlx vs gemma-mlx decoding images causally:  {diff('gemma-mlx', 'causal'):.3g}"
          "  (the image mask's effect)")
    print(f"  mlx-vlm vs gemma-mlx decoding images causally:    {diff('causal', 'mlx-vlm'):.3g}"
          "  (the rest: mlx-vlm's bf16-rounded embedding scale, LayerNorm eps 1e-5)")
    print("Our logits match transformers' within 4e-5 (tests/test_vision.py); mlx-vlm cannot build"
          "\nthat fixture, as it assumes 256 tokens per image.")

if __name__ == "__main__":
    main()
