"""Decode attention of a few queries per head over a ring-buffer KV cache, in slot order."""

from __future__ import annotations

import mlx.core as mx

from .cpu_attention import sdpa
from .loader import kernel_supports


def ring_positions(size: int, filled: int, offset: int) -> mx.array:
    """Absolute position held by each of the first `filled` slots of a ring of `size`."""
    last = offset - 1
    return last - (last - mx.arange(filled)) % size


def ring_decode_reference(
    q: mx.array, k: mx.array, v: mx.array, *, scale: float, offset: int, window: int, size: int
) -> mx.array:
    """q [B, Hq, Lq, D] at positions offset-Lq.. over the filled ring slots k, v [B, Hkv, S', D].

    Slots hold positions p % size; those outside a query's window are masked. No reordering.
    """
    lq, filled = q.shape[2], k.shape[2]
    if lq == 1 and not (window and offset > window and size > window):
        return sdpa(q, k, v, scale=scale)  # all slots visible
    kp = ring_positions(size, filled, offset)[None, :]
    qp = mx.arange(offset - lq, offset)[:, None]
    mask = kp <= qp
    if window:
        mask = mask & (kp > qp - window)
    return sdpa(q, k, v, scale=scale, mask=mask)


def ring_decode(
    q: mx.array, k: mx.array, v: mx.array, *, scale: float, offset: int, window: int, size: int
) -> mx.array:
    """The Metal kernel where Metal is available, the reference elsewhere."""
    if mx.metal.is_available() and kernel_supports(q):
        from .ring_decode_metal import ring_decode_metal

        return ring_decode_metal(q, k, v, scale=scale, offset=offset, window=window, size=size)
    return ring_decode_reference(q, k, v, scale=scale, offset=offset, window=window, size=size)
