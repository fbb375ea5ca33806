"""Byte counts for the memory preflight: weights from headers, KV caches, workspaces."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..cache import KVCache, kv_group
from ..config import ModelConfig, TextConfig
from ..errors import GemmaError
from ..models.multimodal import multimodal_key
from ..models.text import text_key
from .gguf_quants import GROUP
from .safetensors_file import ITEMSIZE, check_header

# set_dtype converts only these; packed quantized weights (U32, U8) keep their bytes
_ST_FLOATS = {"F16", "BF16", "F32", "F64"}
# GGUF types that formats.gguf copies bit for bit into MLX groups of 32 (gguf_quants.EXACT),
# with their bits; every other quantized type is requantized to 8 bits.
GGUF_EXACT_BITS = {"Q8_0": 8, "Q4_0": 4, "Q4_1": 4, "Q5_0": 5, "Q5_1": 5, "Q4_K": 4}
GGUF_REQUANT_BITS = 8


# --- weights -------------------------------------------------------------------------------


def safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]] | None:
    """name -> (dtype, shape) from a safetensors file's header (8-byte little-endian length,
    then JSON), checked, reading none of the data; None when it cannot be read."""
    try:
        return {k: (v["dtype"], tuple(v["shape"])) for k, v in check_header(path).items()}
    except GemmaError:
        return None  # the loader will say what is wrong


def _loaded_names(names: list[str], config: ModelConfig) -> dict[str, str]:
    """Checkpoint key -> model name, for the keys the loader keeps (its sanitize rules:
    vision weights only on a multimodal model, no lm_head when the head is tied)."""
    multimodal = config.vision is not None and any(multimodal_key(k) for k in names)
    out = {}
    for k in names:
        own = text_key(k)
        if own is not None and not (own.startswith("lm_head.")
                                    and config.text.tie_word_embeddings):
            out[k] = own
        elif multimodal and multimodal_key(k) is not None:
            out[k] = multimodal_key(k)
    return out


def _stamp(path: Path) -> tuple:
    """What tells a checkpoint's contents apart cheaply: its files' names, sizes and times
    (the headers are read once per run although several estimates need them)."""
    try:
        files = [path] if path.is_file() else sorted(path.glob("*.json")) + sorted(
            path.glob("*.safetensors"))
        return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        return ()


def _directory_tensors(path: Path) -> tuple[ModelConfig, dict[str, tuple[str, tuple]]] | None:
    """The config and the loaded tensors (model name -> dtype, shape) of a checkpoint dir."""
    return _read_directory(str(path), _stamp(path))


@lru_cache(maxsize=8)
def _read_directory(path: str, stamp: tuple) -> tuple[ModelConfig, dict] | None:
    from .loading import weight_files

    try:
        config = ModelConfig.from_file(Path(path) / "config.json")
        files = weight_files(Path(path))
    except GemmaError:
        return None  # the loader will say what is wrong
    tensors: dict[str, tuple[str, tuple]] = {}
    for f in files:
        header = safetensors_header(f)
        if header is None:
            return None
        tensors.update(header)
    names = _loaded_names(list(tensors), config)
    return config, {names[k]: v for k, v in tensors.items() if k in names}


def _st_bytes(kind: str, shape: tuple[int, ...], float_bytes: int | None) -> int:
    per = float_bytes if float_bytes and kind in _ST_FLOATS else ITEMSIZE.get(kind, 4)
    return math.prod(shape) * per


def gguf_tensor_bytes(shape: tuple[int, ...], kind: str, float_bytes: int = 4) -> int:
    """Bytes of one GGUF tensor after our import (formats.gguf `_tensor`): float types become
    float32; quantized matrices become MLX groups of 32 with float32 scale and bias each."""
    n = math.prod(shape)
    if kind in ("F32", "F16", "BF16"):
        return n * float_bytes
    exact = len(shape) == 2 and shape[-1] % GROUP == 0
    bits = GGUF_EXACT_BITS.get(kind, GGUF_REQUANT_BITS) if exact else GGUF_REQUANT_BITS
    return n * bits // 8 + 2 * (n // GROUP) * float_bytes


def _gguf_tensors(path: Path) -> list[Any] | None:
    return _read_gguf(str(path), _stamp(path))[0]


@lru_cache(maxsize=4)
def _read_gguf(path: str, stamp: tuple) -> tuple[list[Any] | None, dict | None]:
    """The tensor entries and our config of a .gguf file (None, None when unreadable; the
    config alone None when it is no Gemma 3)."""
    try:
        from . import gguf

        g = gguf.read_header(Path(path))
    except (ImportError, AttributeError, GemmaError, OSError):
        return None, None
    try:
        config = gguf.header_config(g)
    except (GemmaError, AttributeError, KeyError, TypeError, ValueError):
        config = None
    return list(g.tensors), config


def weights_bytes(path: str | Path, dtype: Any = None) -> int | None:
    """Bytes the loaded model's weights take, from the checkpoint's headers only.

    A directory: the safetensors headers of the files `load` reads, for the tensors it
    keeps; a .gguf file: each tensor as our import stores it (the file's size when its
    header cannot be read). `dtype` (an mx.Dtype, as `load` takes it) resizes the float
    tensors. None when the size cannot be told.
    """
    path = Path(path)
    float_bytes = dtype.size if dtype is not None else None
    if path.is_file() and path.suffix == ".gguf":
        tensors = _gguf_tensors(path)
        if tensors is None:
            return path.stat().st_size
        return sum(gguf_tensor_bytes(tuple(t.shape), t.type, float_bytes or 4) for t in tensors)
    if not path.is_dir():
        return None
    found = _directory_tensors(path)
    if found is None:
        return None
    return sum(_st_bytes(kind, shape, float_bytes) for kind, shape in found[1].values())


def is_quantized(path: str | Path) -> bool:
    """Whether the loaded model has quantized layers (packed weights with scales)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".gguf":
        return any(t.type not in ("F32", "F16", "BF16") for t in _gguf_tensors(path) or [])
    found = _directory_tensors(path) if path.is_dir() else None
    return found is not None and any(k.endswith(".scales") for k in found[1])


def gguf_import_bytes(path: str | Path) -> int:
    """The largest transient of importing a .gguf file (formats.gguf `_tensor`): numpy and
    MLX arrays alive while one tensor is converted, per weight as measured (tracemalloc and
    mx.get_peak_memory) on the 270M: 4.5 bytes for Q8_0, 11.5 for the other exact types
    (their bit unpacking), 12.5 for the requantized ones (a float32 copy in numpy and one in
    MLX), 11 for float tensors (norms: small)."""
    def per_weight(t: Any) -> float:
        if t.type in ("F32", "F16", "BF16"):
            return 11
        exact = len(t.shape) == 2 and t.shape[-1] % GROUP == 0 and t.type in GGUF_EXACT_BITS
        return (4.5 if t.type == "Q8_0" else 11.5) if exact else 12.5

    tensors = _gguf_tensors(Path(path)) or []
    return int(max((per_weight(t) * math.prod(t.shape) for t in tensors), default=0))


def activation_bytes(path: str | Path, dtype: Any = None) -> int:
    """Bytes per element of the model's activations (and so of its KV cache): the dtype of
    the embedding's output (its scales when it is quantized); a GGUF import is float32."""
    if dtype is not None:
        return dtype.size
    path = Path(path)
    found = _directory_tensors(path) if path.is_dir() else None
    if found is None:
        return 4
    tensors = found[1]
    kind = tensors.get("model.embed_tokens.scales", tensors.get("model.embed_tokens.weight"))
    return ITEMSIZE.get(kind[0], 4) if kind and kind[0] in _ST_FLOATS else 4


def model_config(path: str | Path) -> TextConfig | None:
    """The text decoder's config of a checkpoint directory or .gguf file, or None."""
    path = Path(path)
    try:
        if path.is_file() and path.suffix == ".gguf":
            config = _read_gguf(str(path), _stamp(path))[1]
            return ModelConfig.from_dict(config, str(path)).text if config else None
        found = _directory_tensors(path) if path.is_dir() else None
        return found[0].text if found else ModelConfig.from_file(path / "config.json").text
    except (GemmaError, OSError):
        return None


# --- KV cache ------------------------------------------------------------------------------


def _capacity(context: int, reserved: int | None) -> int:
    """A global layer's slots (cache.KVCache): the first allocation holds `reserved` (or all
    of `context`) in multiples of KVCache.step, then doubles until `context` fits."""
    step = KVCache.step
    size = -(-max(reserved or context, 1) // step) * step
    while size < context:
        size *= 2
    return size


def kv_cache_bytes(cfg: TextConfig, context: int, *, dtype_bytes: int = 4,
                   kv_bits: int | None = None, slack: int = 0, batch: int = 1,
                   reserved: int | None = None) -> int:
    """Bytes of `batch` sequences' caches holding `context` tokens each, as they are
    allocated (models.text make_cache, cache.py).

    A sliding layer's ring holds window + slack slots, allocated whole at the first write;
    a global layer holds every token (see `_capacity`). Each slot holds K and V for every
    KV head: head_dim values of `dtype_bytes`, or with `kv_bits` the packed bits plus a
    scale and a bias (in the activation dtype) per group of kv_group(head_dim).
    """
    d = cfg.head_dim
    per_head = d * dtype_bytes if kv_bits is None else (
        d * kv_bits // 8 + 2 * (d // kv_group(d)) * dtype_bytes)
    per_slot = 2 * cfg.num_key_value_heads * per_head  # K and V
    slots = sum(cfg.sliding_window + slack if cfg.is_sliding(i) else _capacity(context, reserved)
                for i in range(cfg.num_hidden_layers))
    return batch * slots * per_slot


# --- runtime workspace ---------------------------------------------------------------------


def dense_layer_bytes(cfg: TextConfig) -> int:
    """One decoder layer's seven projections as float32: on the CPU a quantized layer is
    dequantized for inputs of many rows (models.quantized `_dense_weight`)."""
    d, q, kv, m = (cfg.hidden_size, cfg.num_attention_heads * cfg.head_dim,
                   cfg.num_key_value_heads * cfg.head_dim, cfg.intermediate_size)
    return 4 * (2 * d * q + 2 * d * kv + 3 * d * m)


def on_cpu() -> bool:
    import mlx.core as mx

    return not mx.metal.is_available()


def prefill_workspace_bytes(cfg: TextConfig, context: int, chunk: int = 512,
                            quantized: bool = False, act_bytes: int = 4) -> int:
    """The transient arrays of one prefill chunk (at most `chunk` tokens), fitted on the 270M
    on the CPU (within ~15% above the measured peak for chunks of 128 to 2048 tokens).

    Per token: the MLP's three [m] intermediates, and four float32 score arrays per query
    head over the keys a query sees in one block (2W on a sliding layer, a 1,024-key block
    on a global one; kernels.local_attention). On the CPU a chunk under 256 queries on a
    global layer is a dense product over all keys (two float32 arrays), and quantized
    layers are dequantized for the chunk: about three layers' float32 weights are alive at
    once.
    """
    c = max(1, min(chunk, context))
    keys = min(context, max(2 * cfg.sliding_window, 1024))
    per_token = 3 * cfg.intermediate_size * act_bytes + 4 * 4 * cfg.num_attention_heads * keys
    out = c * per_token
    if on_cpu() and context > 1024:  # a short last chunk over every key of a global layer
        out = max(out, 2 * 4 * cfg.num_attention_heads * min(c, 256) * context)
    if on_cpu() and quantized:
        out += 3 * dense_layer_bytes(cfg)
    return out


def cpu_repack_bytes(path: str | Path) -> int:
    """The CPU kernel's 8-bit copies of 3, 5 and 6-bit weights (models.quantized `_kernel`),
    made on first use and kept: one byte per weight. Only on the CPU, with float32
    activations and our extension built."""
    path = Path(path)
    if not on_cpu():
        return 0
    from ..kernels import cpu_qmm

    if not cpu_qmm.available():
        return 0
    if path.is_file() and path.suffix == ".gguf":
        tensors = _gguf_tensors(path) or []
        return sum(math.prod(t.shape) for t in tensors if t.type in ("Q5_0", "Q5_1")
                   and len(t.shape) == 2 and t.shape[-1] % GROUP == 0)
    found = _directory_tensors(path) if path.is_dir() else None
    if found is None or activation_bytes(path) != 4:
        return 0
    config, tensors = found
    quant = config.quantization or {}
    specs = {text_key(k) or multimodal_key(k): v for k, v in quant.items() if isinstance(v, dict)}
    total = 0
    for name, (kind, shape) in tensors.items():
        base = name[: -len(".weight")]
        if kind != "U32" or f"{base}.scales" not in tensors or f"{base}.biases" not in tensors:
            continue
        bits = specs.get(base, {}).get("bits", quant.get("bits", 4))
        if bits in (3, 5, 6):
            total += math.prod(shape) * 32 // bits
    return total


def vision_workspace_bytes(vision: dict[str, Any] | None) -> int:
    """The vision tower's transients for one image (models.multimodal encodes one at a time):
    float32 scores and probabilities of a block of QUERY_CHUNK queries over every patch, and
    the patches' hidden and MLP arrays, twice."""
    from ..models.vision import QUERY_CHUNK

    if not vision:
        return 0
    side = int(vision.get("image_size", 896)) // int(vision.get("patch_size", 14))
    patches, heads = side * side, int(vision.get("num_attention_heads", 16))
    hidden = int(vision.get("hidden_size", 1152))
    scores = 2 * 4 * heads * min(QUERY_CHUNK, patches) * patches
    return scores + 2 * 4 * patches * (3 * hidden + int(vision.get("intermediate_size", 4304)))
