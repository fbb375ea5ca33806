"""Model configuration: frozen dataclasses with HF field names, read from both config formats."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import GemmaError

SLIDING = "sliding_attention"
FULL = "full_attention"

TEXT_MODEL_TYPES = ("gemma3_text", "gemma3")

# Gemma3TextConfig's defaults in transformers: the released multimodal configs are sparse
# (4B has no head counts or vocab size) and rely on them.
_TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 262208,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-6,
    "sliding_window": 4096,
    "max_position_embeddings": 131072,
    "hidden_activation": "gelu_pytorch_tanh",
    "final_logit_softcapping": None,
    "tie_word_embeddings": True,
}
_TEXT_REQUIRED = ("hidden_size", "intermediate_size", "num_hidden_layers")


@dataclass(frozen=True)
class RopeConfig:
    """RoPE for one layer type: base frequency and linear scaling factor (1 = none)."""

    rope_theta: float
    factor: float = 1.0


@dataclass(frozen=True)
class TextConfig:
    """The Gemma 3 text decoder's shape and numerics."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    vocab_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    query_pre_attn_scalar: float
    rms_norm_eps: float
    sliding_window: int
    max_position_embeddings: int
    layer_types: tuple[str, ...]
    rope: dict[str, RopeConfig]
    final_logit_softcapping: float | None = None
    tie_word_embeddings: bool = True

    def is_sliding(self, layer: int) -> bool:
        return self.layer_types[layer] == SLIDING

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> TextConfig:
        missing = [k for k in _TEXT_REQUIRED if k not in d]
        if missing:
            raise GemmaError(f"{source}: missing required key(s) {', '.join(missing)}")
        v = {**_TEXT_DEFAULTS, **{k: d[k] for k in d if k in _TEXT_DEFAULTS or k in _TEXT_REQUIRED}}
        if d.get("hidden_activation", v["hidden_activation"]) not in ("gelu_pytorch_tanh", None):
            raise GemmaError(f"{source}: unsupported hidden_activation {d['hidden_activation']!r}")
        if d.get("attn_logit_softcapping") is not None:
            raise GemmaError(f"{source}: attn_logit_softcapping is not supported "
                             "(null in every Gemma 3)")
        n = int(d["num_hidden_layers"])
        layer_types = _layer_types(d, n, source)
        return cls(
            hidden_size=int(v["hidden_size"]),
            intermediate_size=int(v["intermediate_size"]),
            num_hidden_layers=n,
            vocab_size=int(v["vocab_size"]),
            num_attention_heads=int(v["num_attention_heads"]),
            num_key_value_heads=int(v["num_key_value_heads"]),
            head_dim=int(v["head_dim"]),
            query_pre_attn_scalar=float(v["query_pre_attn_scalar"]),
            rms_norm_eps=float(v["rms_norm_eps"]),
            sliding_window=int(v["sliding_window"]),
            max_position_embeddings=int(v["max_position_embeddings"]),
            layer_types=layer_types,
            rope=_rope(d, source),
            final_logit_softcapping=v["final_logit_softcapping"],
            tie_word_embeddings=bool(v["tie_word_embeddings"]),
        )


def _layer_types(d: dict[str, Any], n: int, source: str) -> tuple[str, ...]:
    """`layer_types` (5.x) wins over a sliding-window pattern (4.x, default 6)."""
    types = d.get("layer_types")
    if types is not None:
        if len(types) != n or any(t not in (SLIDING, FULL) for t in types):
            raise GemmaError(
                f"{source}: layer_types must list {n} entries of {SLIDING!r} or {FULL!r}"
            )
        return tuple(types)
    pattern = d.get("sliding_window_pattern", d.get("_sliding_window_pattern", 6))
    return tuple(FULL if (i + 1) % int(pattern) == 0 else SLIDING for i in range(n))


def _rope_entry(p: dict[str, Any], theta: float, source: str) -> RopeConfig:
    kind = p.get("rope_type", p.get("type", "default"))
    if kind == "default":
        return RopeConfig(float(p.get("rope_theta", theta)))
    if kind == "linear":
        return RopeConfig(float(p.get("rope_theta", theta)), float(p["factor"]))
    raise GemmaError(f"{source}: unsupported rope_type {kind!r} (Gemma 3 uses default or linear)")


def _rope(d: dict[str, Any], source: str) -> dict[str, RopeConfig]:
    """Global layers: base 1e6, scaled as configured; local: base 1e4, never scaled."""
    params = d.get("rope_parameters")
    if isinstance(params, dict) and (FULL in params or SLIDING in params):  # 5.x
        full = _rope_entry(params.get(FULL, {}), float(d.get("rope_theta", 1e6)), source)
        local = _rope_entry(params.get(SLIDING, {}), float(d.get("rope_local_base_freq", 1e4)),
                            source)
        return {FULL: full, SLIDING: local}
    theta = float(d.get("rope_theta", 1e6))
    scaling = d.get("rope_scaling") or (params if isinstance(params, dict) else None)
    full = _rope_entry(scaling, theta, source) if scaling else RopeConfig(theta)
    return {FULL: full, SLIDING: RopeConfig(float(d.get("rope_local_base_freq", 1e4)))}


@dataclass(frozen=True)
class ModelConfig:
    """A checkpoint's config: the text decoder, plus what the loader needs to know."""

    model_type: str
    text: TextConfig
    vision: dict[str, Any] | None = None
    quantization: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config.json") -> ModelConfig:
        model_type = d.get("model_type")
        if model_type not in TEXT_MODEL_TYPES:
            raise GemmaError(
                f"{source}: model_type {model_type!r} is not a Gemma 3 model "
                f"(expected one of {', '.join(TEXT_MODEL_TYPES)})"
            )
        if model_type == "gemma3":
            if "text_config" not in d:
                raise GemmaError(f"{source}: model_type 'gemma3' needs a text_config")
            text_d = dict(d["text_config"])
            text_d.setdefault("vocab_size", d.get("vocab_size", 262208))
            text = TextConfig.from_dict(text_d, f"{source} (text_config)")
            vision = d.get("vision_config")
        else:
            text, vision = TextConfig.from_dict(d, source), None
        quant = d.get("quantization") or d.get("quantization_config")
        return cls(model_type, text, vision, quant, dict(d))

    @classmethod
    def from_file(cls, path: str | Path) -> ModelConfig:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise GemmaError(f"{path}: no such file") from None
        except json.JSONDecodeError as e:
            raise GemmaError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(d, str(path))
