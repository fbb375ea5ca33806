"""Metal sliding-window prefill attention (metal_kernels/local_attention_prefill.metal)."""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx

from .loader import get_kernel

ROWS = 8  # query rows (simdgroups) per threadgroup
TILE_BYTES = 8192  # per staged K or V tile, float32: 16 KB of threadgroup memory in all


def local_attention_metal(
    q: mx.array, k: mx.array, v: mx.array, *, scale: float, q_start: int, k_start: int,
    window: int, rows: int = ROWS, factory: Callable | None = None,
) -> mx.array:
    """q [B, Hq, Lq, D] (positions q_start..) over k, v [B, Hkv, Lk, D] (k_start..)."""
    b, hq, lq, d = q.shape
    kernel = get_kernel(
        "local_attention_prefill",
        ["q", "k", "v", "q_start", "k_start", "window", "scale"], ["out"], factory,
    )
    return kernel(
        inputs=[q, k.astype(q.dtype), v.astype(q.dtype), q_start, k_start, window or 0, scale],
        template=[("T", q.dtype), ("D", d), ("BQ", rows), ("BK", TILE_BYTES // (4 * d))],
        grid=(32, lq, b * hq), threadgroup=(32, rows, 1),
        output_shapes=[q.shape], output_dtypes=[q.dtype],
    )[0]
