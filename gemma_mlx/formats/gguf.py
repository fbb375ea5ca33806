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


def _field(reader, key: str, default: Any = None) -> Any:
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def _config(reader, path: Path) -> dict[str, Any]:
    arch = _field(reader, "general.architecture")
    if arch != "gemma3":
        raise GemmaError(f"{path}: GGUF architecture {arch!r} is not gemma3")
    p = "gemma3."
    need = ["embedding_length", "block_count", "feed_forward_length", "attention.head_count"]
    missing = [k for k in need if _field(reader, p + k) is None]
    if missing:
        raise GemmaError(f"{path}: GGUF metadata lacks {', '.join(p + k for k in missing)}")
    hidden = int(_field(reader, p + "embedding_length"))
    layers = int(_field(reader, p + "block_count"))
    heads = int(_field(reader, p + "attention.head_count"))
    head_dim = int(_field(reader, p + "attention.key_length", hidden // heads))
    embd = next(t for t in reader.tensors if t.name == "token_embd.weight")
    cfg: dict[str, Any] = {
        "model_type": "gemma3_text",
        "architectures": ["Gemma3ForCausalLM"],
        "hidden_size": hidden,
        "intermediate_size": int(_field(reader, p + "feed_forward_length")),
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": int(_field(reader, p + "attention.head_count_kv", heads)),
        "head_dim": head_dim,
        # llama.cpp: 27B (62 layers) scales queries by (hidden / heads), the others by head_dim.
        "query_pre_attn_scalar": hidden // heads if layers == 62 else head_dim,
        "rms_norm_eps": float(_field(reader, p + "attention.layer_norm_rms_epsilon", 1e-6)),
        "sliding_window": int(_field(reader, p + "attention.sliding_window", 4096)),
        "sliding_window_pattern": 6,  # llama.cpp's fixed Gemma 3 pattern
        "max_position_embeddings": int(_field(reader, p + "context_length", 131072)),
        "vocab_size": int(embd.shape[-1]),
        "rope_theta": float(_field(reader, p + "rope.freq_base", 1e6)),
        "rope_local_base_freq": 10000.0,
        "rope_scaling": None,
        "tie_word_embeddings": not any(t.name == "output.weight" for t in reader.tensors),
        "bos_token_id": _field(reader, "tokenizer.ggml.bos_token_id", 2),
        "eos_token_id": [_field(reader, "tokenizer.ggml.eos_token_id", 1), 106],
        "pad_token_id": _field(reader, "tokenizer.ggml.padding_token_id", 0),
    }
    factor = _field(reader, p + "rope.scaling.factor")
    if _field(reader, p + "rope.scaling.type") == "linear" and factor and factor != 1.0:
        cfg["rope_scaling"] = {"rope_type": "linear", "factor": float(factor)}
    return cfg


def _vocab(reader) -> dict[str, Any]:
    def arr(key):
        f = reader.fields[key]
        return [f.parts[i] for i in f.data]

    if "tokenizer.ggml.tokens" not in reader.fields:
        return {}
    return {
        "model": _field(reader, "tokenizer.ggml.model"),
        "tokens": [bytes(x).decode("utf-8") for x in arr("tokenizer.ggml.tokens")],
        "scores": [float(x[0]) for x in arr("tokenizer.ggml.scores")],
        "types": [int(x[0]) for x in arr("tokenizer.ggml.token_type")],
        "bos_token_id": _field(reader, "tokenizer.ggml.bos_token_id", 2),
        "eos_token_id": _field(reader, "tokenizer.ggml.eos_token_id", 1),
        "unknown_token_id": _field(reader, "tokenizer.ggml.unknown_token_id", 3),
        "add_space_prefix": bool(_field(reader, "tokenizer.ggml.add_space_prefix", False)),
        "chat_template": _field(reader, "tokenizer.chat_template"),
    }


def _tensor(t, name: str, dequantize: bool) -> tuple[dict[str, mx.array], dict | None]:
    """One GGUF tensor -> {name: array} or a quantized triplet and its quantization entry."""
    from gguf import GGMLQuantizationType, quants

    kind = t.tensor_type.name
    shape = tuple(int(x) for x in reversed(t.shape))  # GGUF lists the fastest axis first
    base = name[: -len(".weight")]
    if kind in ("F32", "F16", "BF16"):
        arr = quants.dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float32)
        if name.endswith("norm.weight"):
            arr = arr - 1.0  # llama.cpp stores Gemma norms as (1 + w)
        return {name: mx.array(arr)}, None
    if kind in gguf_quants.EXACT and not dequantize and shape[-1] % gguf_quants.GROUP == 0:
        q, scale, bias, bits = gguf_quants.EXACT[kind](np.asarray(t.data), shape[0])
        packed = gguf_quants.pack_bits(q, bits)
    else:
        w = quants.dequantize(t.data, GGMLQuantizationType[kind]).reshape(shape)
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
    from gguf import GGUFReader
    from tqdm import tqdm

    path = Path(path)
    if not path.is_file():
        raise GemmaError(f"{path}: no such GGUF file")
    try:
        reader = GGUFReader(path)
    except Exception as e:  # the gguf package raises assorted errors on bad files
        raise GemmaError(f"{path}: not a readable GGUF file ({e})") from None
    config = _config(reader, path)
    weights: dict[str, mx.array] = {}
    quant: dict[str, Any] = {}
    types: dict[str, str] = {}
    for t in tqdm(reader.tensors, desc="Importing GGUF", unit="tensor", disable=not progress):
        name = hf_name(t.name)
        arrays, q = _tensor(t, name, dequantize)
        weights.update(arrays)
        types[name] = t.tensor_type.name
        if q is not None:
            quant[name[: -len(".weight")]] = q
    if quant:
        config["quantization"] = {"group_size": gguf_quants.GROUP, "bits": 4, **quant}
    return GGUFModel(config, weights, _vocab(reader), types)
