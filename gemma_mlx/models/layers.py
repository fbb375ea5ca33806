"""Building blocks shared by the Gemma 3 models: RMSNorm (1 + w), GeGLU MLP, RoPE."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..config import RopeConfig
from .quantized import Linear


class RMSNorm(nn.Module):
    """Gemma's RMSNorm: scales by (1 + weight), in float32 like the reference."""

    def __init__(self, dims: int, eps: float = 1e-6):
        super().__init__()
        self.weight = mx.zeros((dims,))
        self.eps = eps

    def __call__(self, x: mx.array) -> mx.array:
        scale = 1.0 + self.weight.astype(mx.float32)
        if x.dtype == mx.float32:
            return mx.fast.rms_norm(x, scale, self.eps)
        return mx.fast.rms_norm(x.astype(mx.float32), scale, self.eps).astype(x.dtype)


class MLP(nn.Module):
    """GeGLU feed-forward: down(gelu_tanh(gate(x)) * up(x))."""

    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.gate_proj = Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = Linear(intermediate_size, hidden_size, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        return self.down_proj(nn.gelu_approx(self.gate_proj(x)) * self.up_proj(x))


def apply_rope(x: mx.array, rope: RopeConfig, offset: int) -> mx.array:
    """Split-half (non-interleaved) RoPE; linear scaling divides positions by `factor`."""
    return mx.fast.rope(
        x,
        x.shape[-1],
        traditional=False,
        base=rope.rope_theta,
        scale=1.0 / rope.factor,
        offset=offset,
    )
