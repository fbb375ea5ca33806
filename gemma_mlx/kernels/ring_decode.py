"""Decode attention of one query per head over a ring-buffer KV cache, in slot order."""

from __future__ import annotations

import mlx.core as mx


def ring_positions(size: int, filled: int, offset: int) -> mx.array:
    """Absolute position held by each of the first `filled` slots of a ring of `size`."""
    last = offset - 1
    return last - (last - mx.arange(filled)) % size


def ring_decode(
    q: mx.array, k: mx.array, v: mx.array, *, scale: float, offset: int, window: int, size: int
) -> mx.array:
    """q [B, Hq, 1, D] at position offset-1 over the filled ring slots k, v [B, Hkv, S', D].

    Slots hold positions p % size; those older than the window are masked. No reordering.
    """
    if mx.metal.is_available() and k.shape[2] == size:
        from .ring_decode_metal import ring_decode_metal

        return ring_decode_metal(q, k, v, scale=scale, offset=offset, window=window)
    mask = None
    if window and offset > window and size > window:  # slack slots hold stale positions
        mask = ring_positions(size, k.shape[2], offset) > offset - 1 - window
    return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
