"""Building blocks shared by the Gemma 3 models: RMSNorm (1 + w), GeGLU MLP, RoPE."""

from __future__ import annotations

import functools

import mlx.core as mx
import mlx.nn as nn

from ..config import RopeConfig
from ..kernels import cpu_qmm
from .quantized import Linear

# MLX runs mx.fast.rms_norm and mx.fast.rope on the CPU as graphs of 7-16 small ops each, and a
# decode step's cost there is mostly per-op dispatch (a 270M token: 4,070 ops, 1,843 with these
# compiled). So on the CPU, inputs of at most this many rows go through mx.compile'd versions:
# fused elementwise ops, and shapes few enough that the traces stay cached. Prefill and Metal
# keep the plain calls.
COMPILED_MAX_ROWS = 64
GELU_KERNEL_MAX_ROWS = 64  # the extension's GeGLU (cpu_qmm.gelu_mul) up to this many rows


def _compiled_here(x: mx.array) -> bool:
    return x.size <= COMPILED_MAX_ROWS * x.shape[-1] and mx.default_device() == mx.cpu


@mx.compile
def _rms_norm(x: mx.array, weight: mx.array, eps: float) -> mx.array:
    return mx.fast.rms_norm(x, 1.0 + weight, eps)


@functools.cache
def _compiled_rope(dims: int, base: float, scale: float):
    return mx.compile(lambda x, offset: mx.fast.rope(
        x, dims, traditional=False, base=base, scale=scale, offset=offset))


class RMSNorm(nn.Module):
    """Gemma's RMSNorm: scales by (1 + weight), in float32 like the reference."""

    def __init__(self, dims: int, eps: float = 1e-6):
        super().__init__()
        self.weight = mx.zeros((dims,))
        self.eps = eps

    def __call__(self, x: mx.array) -> mx.array:
        weight = self.weight.astype(mx.float32)
        y = x if x.dtype == mx.float32 else x.astype(mx.float32)
        if _compiled_here(x):
            y = _rms_norm(y, weight, self.eps)
        else:
            y = mx.fast.rms_norm(y, 1.0 + weight, self.eps)
        return y if x.dtype == mx.float32 else y.astype(x.dtype)


class MLP(nn.Module):
    """GeGLU feed-forward: down(gelu_tanh(gate(x)) * up(x))."""

    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.gate_proj = Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = Linear(intermediate_size, hidden_size, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        g, u = self.gate_proj(x), self.up_proj(x)
        # decode-sized inputs only: longer ones (prefill, calibration, training) keep MLX's op,
        # whose values the quantization recipes were measured on
        short = g.size <= GELU_KERNEL_MAX_ROWS * g.shape[-1]
        h = cpu_qmm.gelu_mul(g, u) if short else nn.gelu_approx(g) * u
        return self.down_proj(h)


def apply_rope(x: mx.array, rope: RopeConfig, offset: int | mx.array) -> mx.array:
    """Split-half (non-interleaved) RoPE; linear scaling divides positions by `factor`."""
    if _compiled_here(x):  # the offset as an array: one trace for every position
        offset = mx.array(offset, mx.int32) if isinstance(offset, int) else offset
        return _compiled_rope(x.shape[-1], rope.rope_theta, 1.0 / rope.factor)(x, offset)
    return mx.fast.rope(
        x,
        x.shape[-1],
        traditional=False,
        base=rope.rope_theta,
        scale=1.0 / rope.factor,
        offset=offset,
    )
