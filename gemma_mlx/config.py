"""Model configuration: frozen dataclasses with HF field names, read from both config formats."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import GemmaError

SLIDING = "sliding_attention"
FULL = "full_attention"

TEXT_MODEL_TYPES = ("gemma3_text", "gemma3", "shieldgemma2")
MULTIMODAL_TYPES = ("gemma3", "shieldgemma2")  # a text_config and a vision_config

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
MAX_CONFIG_BYTES = 16 << 20
# Sane bounds, far beyond any Gemma 3 (27B: 5376 wide, 62 layers, 262,208 tokens), so a
# hostile config is refused before it makes millions of modules or giant arrays.
_INT_RANGES = {
    "hidden_size": (1, 1 << 16), "intermediate_size": (1, 1 << 18),
    "num_hidden_layers": (1, 1024), "vocab_size": (1, 1 << 22),
    "num_attention_heads": (1, 1024), "num_key_value_heads": (1, 1024),
    "head_dim": (2, 1024), "sliding_window": (1, 1 << 24),
    "max_position_embeddings": (1, 1 << 24),
}
QUANT_BITS, QUANT_GROUPS = (2, 3, 4, 5, 6, 8), (32, 64, 128)


def _int(v: Any, key: str, source: str, lo: int = 1, hi: int = 1 << 62) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise GemmaError(f"{source}: {key} must be an integer from {lo:,} to {hi:,}, not {v!r}")
    return v


def _float(v: Any, key: str, source: str, lo: float = 0.0, hi: float = float("inf"),
           lo_open: bool = True) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not ok or v > hi or v < lo or (lo_open and v == lo):
        raise GemmaError(f"{source}: {key} must be a number {'>' if lo_open else '>='} {lo:g}"
                         f"{f' and <= {hi:g}' if hi != float('inf') else ''}, not {v!r}")
    return float(v)


def _dict(v: Any, key: str, source: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise GemmaError(f"{source}: {key} must be an object, not {v!r}")
    return v


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
        ints = {k: _int(v[k], k, source, *r) for k, r in _INT_RANGES.items()}
        heads, kv_heads = ints["num_attention_heads"], ints["num_key_value_heads"]
        if heads % kv_heads:
            raise GemmaError(f"{source}: num_attention_heads {heads} is not a multiple of "
                             f"num_key_value_heads {kv_heads}")
        if ints["head_dim"] % 2:
            raise GemmaError(f"{source}: head_dim {ints['head_dim']} must be even (RoPE)")
        cap = v["final_logit_softcapping"]
        if not isinstance(v["tie_word_embeddings"], bool):
            raise GemmaError(f"{source}: tie_word_embeddings must be true or false")
        return cls(
            **ints,
            query_pre_attn_scalar=_float(v["query_pre_attn_scalar"], "query_pre_attn_scalar",
                                         source),
            rms_norm_eps=_float(v["rms_norm_eps"], "rms_norm_eps", source, hi=1.0),
            layer_types=_layer_types(d, ints["num_hidden_layers"], source),
            rope=_rope(d, source),
            final_logit_softcapping=None if cap is None else _float(
                cap, "final_logit_softcapping", source),
            tie_word_embeddings=v["tie_word_embeddings"],
        )


def _layer_types(d: dict[str, Any], n: int, source: str) -> tuple[str, ...]:
    """`layer_types` (5.x) wins over a sliding-window pattern (4.x, default 6)."""
    types = d.get("layer_types")
    if types is not None:
        if (not isinstance(types, list) or len(types) != n
                or any(t not in (SLIDING, FULL) for t in types)):
            raise GemmaError(
                f"{source}: layer_types must list {n} entries of {SLIDING!r} or {FULL!r}"
            )
        return tuple(types)
    pattern = d.get("sliding_window_pattern", d.get("_sliding_window_pattern", 6))
    pattern = _int(pattern, "sliding_window_pattern", source, 1, 1 << 20)
    return tuple(FULL if (i + 1) % pattern == 0 else SLIDING for i in range(n))


def _rope_entry(p: Any, theta: float, source: str) -> RopeConfig:
    p = _dict(p, "rope parameters", source)
    kind = p.get("rope_type", p.get("type", "default"))
    base = _float(p.get("rope_theta", theta), "rope_theta", source)
    if kind == "default":
        return RopeConfig(base)
    if kind == "linear":
        return RopeConfig(base, _float(p.get("factor"), "rope factor", source))
    raise GemmaError(f"{source}: unsupported rope_type {kind!r} (Gemma 3 uses default or linear)")


def _rope(d: dict[str, Any], source: str) -> dict[str, RopeConfig]:
    """Global layers: base 1e6, scaled as configured; local: base 1e4, never scaled."""
    params = d.get("rope_parameters")
    theta = _float(d.get("rope_theta", 1e6), "rope_theta", source)
    local_theta = _float(d.get("rope_local_base_freq", 1e4), "rope_local_base_freq", source)
    if isinstance(params, dict) and (FULL in params or SLIDING in params):  # 5.x
        full = _rope_entry(params.get(FULL, {}), theta, source)
        local = _rope_entry(params.get(SLIDING, {}), local_theta, source)
        return {FULL: full, SLIDING: local}
    scaling = d.get("rope_scaling") or (params if isinstance(params, dict) else None)
    full = _rope_entry(scaling, theta, source) if scaling else RopeConfig(theta)
    return {FULL: full, SLIDING: RopeConfig(local_theta)}


def _check_quantization(q: dict[str, Any], source: str) -> None:
    """mlx-lm's layout: default bits and group_size, and per-module {bits, group_size}."""
    for key, allowed in (("bits", QUANT_BITS), ("group_size", QUANT_GROUPS)):
        if key in q and q[key] not in allowed:
            raise GemmaError(f"{source}: quantization {key} {q[key]!r} is not one of {allowed}")
    for name, spec in q.items():
        if isinstance(spec, dict) and (spec.get("bits") not in QUANT_BITS
                                       or spec.get("group_size") not in QUANT_GROUPS):
            raise GemmaError(f"{source}: quantization of {name!r} needs bits in {QUANT_BITS} "
                             f"and group_size in {QUANT_GROUPS}, not {spec!r}")


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
        d = _dict(d, "the config", source)
        model_type = d.get("model_type")
        if model_type not in TEXT_MODEL_TYPES:
            raise GemmaError(
                f"{source}: model_type {model_type!r} is not a Gemma 3 model "
                f"(expected one of {', '.join(TEXT_MODEL_TYPES)})"
            )
        if model_type in MULTIMODAL_TYPES:
            if "text_config" not in d:
                raise GemmaError(f"{source}: model_type {model_type!r} needs a text_config")
            text_d = dict(_dict(d["text_config"], "text_config", source))
            text_d.setdefault("vocab_size", d.get("vocab_size", 262208))
            text = TextConfig.from_dict(text_d, f"{source} (text_config)")
            vision = d.get("vision_config")
            if vision is not None:
                _dict(vision, "vision_config", source)
        else:
            text, vision = TextConfig.from_dict(d, source), None
        quant = d.get("quantization") or d.get("quantization_config")
        if quant is not None:
            _check_quantization(_dict(quant, "quantization", source), source)
        return cls(model_type, text, vision, quant, dict(d))

    @classmethod
    def from_file(cls, path: str | Path) -> ModelConfig:
        path = Path(path)
        try:
            if path.stat().st_size > MAX_CONFIG_BYTES:
                raise GemmaError(f"{path}: over {MAX_CONFIG_BYTES >> 20} MB; not a config")
            d = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise GemmaError(f"{path}: no such file") from None
        except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, deep nesting
            raise GemmaError(f"{path}: not valid JSON ({str(e)[:200]})") from None
        return cls.from_dict(d, str(path))
