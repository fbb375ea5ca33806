"""Gemma 3's SigLIP vision tower, with HF names (embeddings, encoder.layers.N, post_layernorm)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from ..errors import GemmaError
from .cpu_streams import map_slices
from .quantized import Linear

# Queries per attention step: bounds the score matrix at 16 x 256 x 4096 (64 MB in float32,
# where one 4096 x 4096 product would take 1 GB).
QUERY_CHUNK = 256


@dataclass(frozen=True)
class VisionConfig:
    """SiglipVisionConfig's fields, with its defaults (the hub configs omit eps and act)."""

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    image_size: int = 896
    patch_size: int = 14
    num_channels: int = 3
    layer_norm_eps: float = 1e-6

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "vision_config") -> VisionConfig:
        if d.get("hidden_act", "gelu_pytorch_tanh") != "gelu_pytorch_tanh":
            raise GemmaError(f"{source}: unsupported hidden_act {d['hidden_act']!r}")
        if d.get("vision_use_head"):
            raise GemmaError(f"{source}: vision_use_head is not used by Gemma 3")
        fields = cls.__dataclass_fields__
        cfg = cls(**{k: type(fields[k].default)(v) for k, v in d.items() if k in fields})
        if cfg.image_size % cfg.patch_size or cfg.hidden_size % cfg.num_attention_heads:
            raise GemmaError(f"{source}: image_size must be a multiple of patch_size and "
                             "hidden_size of num_attention_heads")
        return cfg

    @property
    def patches_per_side(self) -> int:
        return self.image_size // self.patch_size


class PatchEmbedding(nn.Module):
    """Conv2d with stride = kernel, as one matmul over flattened patches.

    The weight keeps PyTorch's [out, channels, kh, kw] layout, so HF checkpoints load as is.
    """

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        p, c = cfg.patch_size, cfg.num_channels
        self.weight = mx.zeros((cfg.hidden_size, c, p, p))
        self.bias = mx.zeros((cfg.hidden_size,))
        self.patch = p

    def __call__(self, pixels: mx.array) -> mx.array:
        n, c, h, w = pixels.shape
        p = self.patch
        x = pixels.reshape(n, c, h // p, p, w // p, p).transpose(0, 2, 4, 1, 3, 5)
        x = x.reshape(n, (h // p) * (w // p), c * p * p)  # row-major over the patch grid
        return x @ self.weight.reshape(self.weight.shape[0], -1).T.astype(x.dtype) + self.bias


class Embeddings(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.patch_embedding = PatchEmbedding(cfg)
        self.position_embedding = nn.Embedding(cfg.patches_per_side**2, cfg.hidden_size)

    def __call__(self, pixels: mx.array) -> mx.array:
        return self.patch_embedding(pixels) + self.position_embedding.weight


class Attention(nn.Module):
    """Full bidirectional attention over the patches, queries in chunks to bound memory."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        h = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.scale = (h // self.heads) ** -0.5
        self.q_proj, self.k_proj = Linear(h, h), Linear(h, h)
        self.v_proj, self.out_proj = Linear(h, h), Linear(h, h)

    def __call__(self, x: mx.array) -> mx.array:
        b, n, _ = x.shape

        def heads(t: mx.array) -> mx.array:
            return t.reshape(b, n, self.heads, -1).transpose(0, 2, 1, 3)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        out = map_slices(
            lambda qs: mx.fast.scaled_dot_product_attention(qs, k, v, scale=self.scale),
            q, axis=2, size=QUERY_CHUNK)
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(b, n, -1))


class MLP(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.fc1 = Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = Linear(cfg.intermediate_size, cfg.hidden_size)

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc2(nn.gelu_approx(self.fc1(x)))


class EncoderLayer(nn.Module):
    """Pre-LayerNorm transformer block."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def __call__(self, x: mx.array) -> mx.array:
        x = x + self.self_attn(self.layer_norm1(x))
        # Row slices: on the CPU, LayerNorm and GELU run on one thread per stream.
        return x + map_slices(lambda r: self.mlp(self.layer_norm2(r)), x, axis=1, size=x.shape[1])


class Encoder(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.layers = [EncoderLayer(cfg) for _ in range(cfg.num_hidden_layers)]


class VisionTower(nn.Module):
    """pixel_values [N, 3, H, W] (the HF processor's layout) -> last hidden state [N, P, hidden]."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.config = cfg
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg)
        self.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def __call__(self, pixel_values: mx.array) -> mx.array:
        cfg = self.config
        if pixel_values.ndim != 4 or pixel_values.shape[1:] != (
            cfg.num_channels, cfg.image_size, cfg.image_size
        ):
            raise GemmaError(f"pixel_values must be [N, {cfg.num_channels}, {cfg.image_size}, "
                             f"{cfg.image_size}], got {list(pixel_values.shape)}")
        x = self.embeddings(pixel_values.astype(self.embeddings.position_embedding.weight.dtype))
        for layer in self.encoder.layers:
            x = layer(x)
        return self.post_layernorm(x)

    @staticmethod
    def sanitize_key(name: str, value: Any) -> tuple[str, Any]:
        """mlx-vlm stores the patch kernel as [O, kh, kw, C]: back to PyTorch's [O, C, kh, kw]."""
        if name.endswith("patch_embedding.weight") and value.ndim == 4 and value.shape[1] != 3:
            value = value.transpose(0, 3, 1, 2)
        return name, value
