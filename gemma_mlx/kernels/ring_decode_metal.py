"""Metal decode attention over a ring-buffer cache (metal_kernels/ring_decode_attention.metal)."""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx

from .loader import get_kernel

SIMDGROUPS = 8


def ring_decode_metal(
    q: mx.array, k: mx.array, v: mx.array, *, scale: float, offset: int, window: int,
    size: int, simdgroups: int = SIMDGROUPS, factory: Callable | None = None,
) -> mx.array:
    """q [B, Hq, Lq, D] at positions offset-Lq.. over ring slots k, v [B, Hkv, S, D]."""
    b, hq, lq, d = q.shape
    kernel = get_kernel(
        "ring_decode_attention",
        ["q", "k", "v", "offset", "window", "ring_size", "scale"], ["out"], factory,
    )
    return kernel(
        inputs=[q, k.astype(q.dtype), v.astype(q.dtype), offset, window or 0, size, scale],
        template=[("T", q.dtype), ("D", d), ("NSG", simdgroups)],
        grid=(32, simdgroups, b * hq * lq), threadgroup=(32, simdgroups, 1),
        output_shapes=[q.shape], output_dtypes=[q.dtype],
    )[0]
