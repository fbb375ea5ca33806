"""Attention of a few queries (decode steps) on the CPU: our extension's kernel where it is
built, else MLX's scaled_dot_product_attention."""

from __future__ import annotations

import mlx.core as mx

from . import cpu_qmm

# Up to this many queries per head (decode, speculative verification) the kernel's two passes
# over the keys beat MLX's CPU attention, whose GEMMs copy (pack) every key for 1-16 rows.
MAX_QUERIES = 16


def sdpa(q: mx.array, k: mx.array, v: mx.array, *, scale: float,
         mask: mx.array | None = None) -> mx.array:
    """softmax(scale q k^T, mask) v: q [B, Hq, L, D], k, v [B, Hkv, S, D]; a boolean mask
    broadcastable to [B, 1, L, S] (True: attend)."""
    module = cpu_qmm._load()
    usable = (module is not None and hasattr(module, "decode_attention")
              and q.shape[2] <= MAX_QUERIES and mx.default_device() == mx.cpu
              and q.dtype == k.dtype == v.dtype == mx.float32
              and (mask is None or (mask.dtype == mx.bool_ and mask.ndim in (2, 4)
                                    and (mask.ndim == 2 or mask.shape[1] == 1))))
    if not usable:
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
    if mask is not None:
        mask = mask[None] if mask.ndim == 2 else mask[:, 0]
        mask = mx.broadcast_to(mask, (mask.shape[0], q.shape[2], k.shape[2]))
    return module.decode_attention(q, k, v, scale, mask)
