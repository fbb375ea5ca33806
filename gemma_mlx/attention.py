"""The attention step of a decoder layer: cache update, then the right attention for the shape."""

from __future__ import annotations

import mlx.core as mx

from .cache import Cache, RotatingKVCache
from .kernels.local_attention import local_attention
from .kernels.ring_decode import ring_decode


def attend(
    q: mx.array, k: mx.array, v: mx.array, cache: Cache | None, *, scale: float,
    window: int | None,
) -> mx.array:
    """Queries q [B, Hq, L, D] over new keys/values k, v [B, Hkv, L, D] and the cache.

    Prefill (any L, with or without cache) goes through `local_attention`, which costs
    O(L*W) on sliding layers; a decode step on a sliding layer reads the ring in place.
    """
    n = q.shape[2]
    if cache is None:
        return local_attention(q, k, v, scale=scale, q_start=0, k_start=0, window=window)
    if n == 1 and isinstance(cache, RotatingKVCache):
        cache.update_ring(k, v)
        keys, values = cache.ring()
        return ring_decode(q, keys, values, scale=scale, offset=cache.offset,
                           window=cache.window, size=cache.size)
    q_start = cache.offset
    keys, values, k_start = cache.update_and_fetch(k, v)
    if n == 1:  # global decode: every cached key is visible
        return mx.fast.scaled_dot_product_attention(q, keys, values, scale=scale)
    return local_attention(q, keys, values, scale=scale, q_start=q_start, k_start=k_start,
                           window=window)
