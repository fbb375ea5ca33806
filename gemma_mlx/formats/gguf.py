"""GGUF files (llama.cpp) to HF-named MLX weights, an HF-style config and the vocabulary."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from ..errors import GemmaError
from . import gguf_quants
from .gguf_file import GGUFFile, TensorInfo, read_header

_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "attn_norm": "input_layernorm",
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
# What MLX cannot hold exactly is dequantized and stored as 8-bit groups of 32.
REQUANT_BITS = 8


@dataclass
class GGUFModel:
    """What a GGUF file holds, in our terms."""

    config: dict[str, Any]
    weights: dict[str, mx.array]
    vocab: dict[str, Any]
    tensor_types: dict[str, str]


def hf_name(name: str) -> str:
    """GGUF tensor name -> HF weight name (e.g. blk.3.ffn_up.weight -> model.layers.3.mlp...)."""
    if name.startswith("token_embd."):
        return "model.embed_tokens." + name.split(".", 1)[1]
    if name.startswith("output_norm."):
        return "model.norm." + name.split(".", 1)[1]
    if name.startswith("output."):
        return "lm_head." + name.split(".", 1)[1]
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", name)
    if m and m.group(2) in _NAMES:
        return f"model.layers.{m.group(1)}.{_NAMES[m.group(2)]}.{m.group(3)}"
    raise GemmaError(f"GGUF tensor {name!r} has no Gemma 3 counterpart")


def _get(g: GGUFFile, key: str, kind: type, default: Any = None, lo: float | None = None,
         hi: float | None = None) -> Any:
    """A metadata value of the expected kind and range, or a GemmaError naming the key."""
    v = g.fields.get(key)
    if v is None:
        return default
    if kind is int and isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = int(v)
    elif kind is float and isinstance(v, (int, float, np.integer, np.floating)):
        v = float(v)
        if not np.isfinite(v):
            raise GemmaError(f"{g.path}: GGUF metadata {key} is {v}")
    elif kind is str and isinstance(v, str):
        pass
    else:
        raise GemmaError(f"{g.path}: GGUF metadata {key} is {type(v).__name__}, expected "
                         f"{kind.__name__}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise GemmaError(f"{g.path}: GGUF metadata {key} = {v} is out of range [{lo}, {hi}]")
    return v


def header_config(g: GGUFFile) -> dict[str, Any]:
    """The HF-style Gemma 3 config a GGUF header describes."""
    path = g.path
    arch = _get(g, "general.architecture", str)
    if arch != "gemma3":
        raise GemmaError(f"{path}: GGUF architecture {arch!r} is not gemma3")
    p = "gemma3."
    need = ["embedding_length", "block_count", "feed_forward_length", "attention.head_count"]
    missing = [k for k in need if g.fields.get(p + k) is None]
    if missing:
        raise GemmaError(f"{path}: GGUF metadata lacks {', '.join(p + k for k in missing)}")
    hidden = _get(g, p + "embedding_length", int, lo=1)
    layers = _get(g, p + "block_count", int, lo=1)
    heads = _get(g, p + "attention.head_count", int, lo=1)
    head_dim = _get(g, p + "attention.key_length", int, hidden // heads or 1, lo=1)
    embd = next((t for t in g.tensors if t.name == "token_embd.weight"), None)
    if embd is None or len(embd.shape) != 2:
        raise GemmaError(f"{path}: GGUF has no 2-D token_embd.weight tensor")
    cfg: dict[str, Any] = {
        "model_type": "gemma3_text",
        "architectures": ["Gemma3ForCausalLM"],
        "hidden_size": hidden,
        "intermediate_size": _get(g, p + "feed_forward_length", int, lo=1),
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": _get(g, p + "attention.head_count_kv", int, heads, lo=1),
        "head_dim": head_dim,
        # llama.cpp: 27B (62 layers) scales queries by (hidden / heads), the others by head_dim.
        "query_pre_attn_scalar": hidden // heads if layers == 62 else head_dim,
        "rms_norm_eps": _get(g, p + "attention.layer_norm_rms_epsilon", float, 1e-6),
        "sliding_window": _get(g, p + "attention.sliding_window", int, 4096, lo=1),
        "sliding_window_pattern": 6,  # llama.cpp's fixed Gemma 3 pattern
        "max_position_embeddings": _get(g, p + "context_length", int, 131072, lo=1),
        "vocab_size": embd.shape[0],
        "rope_theta": _get(g, p + "rope.freq_base", float, 1e6),
        "rope_local_base_freq": 10000.0,
        "rope_scaling": None,
        "tie_word_embeddings": not any(t.name == "output.weight" for t in g.tensors),
        "bos_token_id": _get(g, "tokenizer.ggml.bos_token_id", int, 2),
        "eos_token_id": [_get(g, "tokenizer.ggml.eos_token_id", int, 1), 106],
        "pad_token_id": _get(g, "tokenizer.ggml.padding_token_id", int, 0),
    }
    factor = _get(g, p + "rope.scaling.factor", float)
    if _get(g, p + "rope.scaling.type", str) == "linear" and factor and factor != 1.0:
        cfg["rope_scaling"] = {"rope_type": "linear", "factor": factor}
    return cfg


def _vocab(g: GGUFFile, vocab_size: int) -> dict[str, Any]:
    tokens = g.fields.get("tokenizer.ggml.tokens")
    if tokens is None:
        return {}
    n = len(tokens) if isinstance(tokens, list) else -1
    columns = {"tokenizer.ggml.tokens": tokens,
               "tokenizer.ggml.scores": g.fields.get("tokenizer.ggml.scores"),
               "tokenizer.ggml.token_type": g.fields.get("tokenizer.ggml.token_type")}
    for key, col in columns.items():
        ok = isinstance(col, list) if key.endswith("tokens") else isinstance(col, np.ndarray)
        if not ok or len(col) != n:
            raise GemmaError(f"{g.path}: GGUF metadata {key} must be an array of "
                             f"{max(n, 0):,} entries, one per token")
    if not 0 < n <= vocab_size:
        raise GemmaError(f"{g.path}: {n:,} tokens for an embedding of {vocab_size:,} rows")
    return {
        "model": _get(g, "tokenizer.ggml.model", str),
        "tokens": tokens,
        "scores": [float(x) for x in columns["tokenizer.ggml.scores"]],
        "types": [int(x) for x in columns["tokenizer.ggml.token_type"]],
        "bos_token_id": _get(g, "tokenizer.ggml.bos_token_id", int, 2, 0, n - 1),
        "eos_token_id": _get(g, "tokenizer.ggml.eos_token_id", int, 1, 0, n - 1),
        "unknown_token_id": _get(g, "tokenizer.ggml.unknown_token_id", int, 3, 0, n - 1),
        "add_space_prefix": bool(g.fields.get("tokenizer.ggml.add_space_prefix", False)),
        "chat_template": _get(g, "tokenizer.chat_template", str),
    }


def _tensor(g: GGUFFile, t: TensorInfo, name: str,
            dequantize: bool) -> tuple[dict[str, mx.array], dict | None]:
    """One GGUF tensor -> {name: array} or a quantized triplet and its quantization entry."""
    from gguf import GGMLQuantizationType, quants

    kind, shape, raw = t.type, t.shape, g.raw(t)
    base = name[: -len(".weight")]
    if kind in ("F32", "F16", "BF16"):
        arr = quants.dequantize(raw, GGMLQuantizationType[kind]).reshape(shape)
        arr = arr.astype(np.float32)
        if name.endswith("norm.weight"):
            arr = arr - 1.0  # llama.cpp stores Gemma norms as (1 + w)
        return {name: mx.array(arr)}, None
    if len(shape) != 2:
        raise GemmaError(f"{g.path}: tensor {t.name!r} is {kind} with shape {shape}; "
                         "quantized tensors are matrices")
    if kind in gguf_quants.EXACT and not dequantize and shape[-1] % gguf_quants.GROUP == 0:
        q, scale, bias, bits = gguf_quants.EXACT[kind](raw, shape[0])
        packed = gguf_quants.pack_bits(q, bits)
    else:
        try:
            w = quants.dequantize(raw, GGMLQuantizationType[kind]).reshape(shape)
        except NotImplementedError:
            raise GemmaError(f"{g.path}: tensor {t.name!r} has type {kind}, which cannot be "
                             "read") from None
        if dequantize:
            return {name: mx.array(w.astype(np.float32))}, None
        bits = REQUANT_BITS
        wq, s, b = mx.quantize(mx.array(w.astype(np.float32)), gguf_quants.GROUP, bits)
        packed, scale, bias = np.array(wq), np.array(s), np.array(b)
    out = {
        name: mx.array(packed),
        base + ".scales": mx.array(scale.astype(np.float32)),
        base + ".biases": mx.array(bias.astype(np.float32)),
    }
    return out, {"group_size": gguf_quants.GROUP, "bits": bits}


def read_gguf(path: str | Path, dequantize: bool = False, progress: bool = False) -> GGUFModel:
    """Read a Gemma 3 GGUF file into HF-named MLX weights.

    Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and Q4_K blocks are copied bit for bit into MLX affine
    groups of 32 (float32 scales and biases, which Q4_K needs to stay exact); other
    quantized types (Q6_K, Q2_K, Q3_K, Q5_K, ...) are dequantized and stored as 8-bit
    groups of 32. With `dequantize`, every tensor becomes float32.
    """
    from tqdm import tqdm

    path = Path(path)
    if not path.is_file():
        raise GemmaError(f"{path}: no such GGUF file")
    g = read_header(path)
    config = header_config(g)
    weights: dict[str, mx.array] = {}
    quant: dict[str, Any] = {}
    types: dict[str, str] = {}
    for t in tqdm(g.tensors, desc="Importing GGUF", unit="tensor", disable=not progress):
        name = hf_name(t.name)
        arrays, q = _tensor(g, t, name, dequantize)
        weights.update(arrays)
        types[name] = t.type
        if q is not None:
            quant[name[: -len(".weight")]] = q
    if quant:
        config["quantization"] = {"group_size": gguf_quants.GROUP, "bits": 4, **quant}
    return GGUFModel(config, weights, _vocab(g, config["vocab_size"]), types)
