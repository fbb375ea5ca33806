"""LoRA adapters on (quantized) linear layers, applying them to a model, and fusing them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from ..errors import GemmaError
from ..models.quantized import Linear, QuantizedLinear

DEFAULT_TARGETS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                   "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def _dims(base: nn.Module) -> tuple[int, int]:
    out_dims, in_dims = base.weight.shape
    if isinstance(base, nn.QuantizedLinear):
        in_dims = in_dims * 32 // base.bits
    return in_dims, out_dims


class LoRALinear(nn.Module):
    """y = base(x) + scale * dropout(x) @ lora_a @ lora_b, the base frozen (mlx-lm's names)."""

    def __init__(self, base: nn.Module, rank: int = 8, scale: float = 20.0,
                 dropout: float = 0.0):
        super().__init__()
        in_dims, out_dims = _dims(base)
        self.linear = base
        self.scale = scale
        self.dropout = nn.Dropout(dropout)
        bound = 1 / math.sqrt(in_dims)
        self.lora_a = mx.random.uniform(-bound, bound, (in_dims, rank))
        self.lora_b = mx.zeros((rank, out_dims))

    def __call__(self, x: mx.array) -> mx.array:
        y = self.linear(x)
        z = (self.dropout(x) @ self.lora_a.astype(x.dtype)) @ self.lora_b.astype(x.dtype)
        return y + (self.scale * z).astype(y.dtype)

    def fuse(self, dequantize: bool = False) -> nn.Module:
        """One linear layer with the update folded in (requantized like the base unless
        `dequantize`)."""
        base = self.linear
        if isinstance(base, nn.QuantizedLinear):
            w = mx.dequantize(base.weight, base.scales, base.get("biases"), base.group_size,
                              base.bits, mode=base.mode)
        else:
            w = base.weight
        delta = (self.scale * (self.lora_a @ self.lora_b)).T
        in_dims, out_dims = _dims(base)
        fused = Linear(in_dims, out_dims, bias=False)
        fused.weight = (w.astype(mx.float32) + delta).astype(w.dtype)
        if isinstance(base, nn.QuantizedLinear) and not dequantize:
            return QuantizedLinear.from_linear(fused, base.group_size, base.bits, base.mode)
        return fused


def apply_lora(model: nn.Module, num_layers: int, rank: int, scale: float, dropout: float,
               targets: tuple[str, ...] = DEFAULT_TARGETS) -> int:
    """Freeze the model and put adapters on `targets` of the last `num_layers` layers
    (all when num_layers <= 0). Returns the number of adapted modules."""
    model.freeze()
    layers = model.layers if num_layers <= 0 else model.layers[-num_layers:]
    count = 0
    for layer in layers:
        modules = dict(layer.named_modules())
        for key in targets:
            if key not in modules:
                raise GemmaError(f"--target-modules: no module {key!r} in a decoder layer "
                                 f"(choose from {', '.join(DEFAULT_TARGETS)})")
            parent, _, leaf = key.rpartition(".")
            owner = modules[parent] if parent else layer
            setattr(owner, leaf, LoRALinear(getattr(owner, leaf), rank, scale, dropout))
            count += 1
    return count


def adapter_weights(model: nn.Module) -> dict[str, mx.array]:
    """The trainable (adapter) parameters, flat."""
    return dict(tree_flatten(model.trainable_parameters()))


def load_adapter_weights(model: nn.Module, weights: dict[str, mx.array], source: str) -> None:
    expected = adapter_weights(model)
    missing = sorted(set(expected) - set(weights))
    unknown = sorted(set(weights) - set(expected))
    if missing or unknown:
        raise GemmaError(f"{source}: adapter does not fit the model (missing {missing[:3]}, "
                         f"unexpected {unknown[:3]}); check num_layers and target modules")
    model.update(tree_unflatten(list(weights.items())))


def fuse_lora(model: nn.Module, dequantize: bool = False) -> nn.Module:
    """Replace every LoRALinear by its fused linear layer, in place."""
    for layer in model.layers:
        for name, module in list(layer.named_modules()):
            if isinstance(module, LoRALinear):
                parent, _, leaf = name.rpartition(".")
                owner = dict(layer.named_modules())[parent] if parent else layer
                setattr(owner, leaf, module.fuse(dequantize))
    return model


def lora_config(num_layers: int, rank: int, scale: float, dropout: float,
                targets: tuple[str, ...]) -> dict[str, Any]:
    """adapter_config.json in mlx-lm's shape."""
    return {"fine_tune_type": "lora", "num_layers": num_layers,
            "lora_parameters": {"rank": rank, "scale": scale, "dropout": dropout,
                                "keys": list(targets)}}


def load_adapters(model: nn.Module, directory: str | Path) -> nn.Module:
    """Apply the adapters saved in `directory` (adapter_config.json, adapters.safetensors)."""
    directory = Path(directory)
    try:
        config = json.loads((directory / "adapter_config.json").read_text())
        lp = config["lora_parameters"]
        num_layers = config["num_layers"]
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise GemmaError(f"{directory}: not an adapter directory ({e})") from None
    apply_lora(model, num_layers, lp["rank"], lp["scale"], 0.0,
               tuple(lp.get("keys") or DEFAULT_TARGETS))
    weights_file = directory / "adapters.safetensors"
    try:
        weights = mx.load(str(weights_file))
    except Exception as e:
        raise GemmaError(f"{weights_file}: cannot read adapters ({e})") from None
    load_adapter_weights(model, weights, str(weights_file))
    model.eval()
    return model
