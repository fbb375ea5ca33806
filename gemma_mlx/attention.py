"""Attention masks (causal, sliding window) and the attention call the decoder layers use."""

from __future__ import annotations

import mlx.core as mx


def window_mask(q_pos: mx.array, k_pos: mx.array, window: int | None) -> mx.array:
    """Bool [Lq, Lk]: key visible to query iff k <= q and, with a window W, k > q - W."""
    q = q_pos[:, None]
    k = k_pos[None, :]
    mask = (k <= q) & (k >= 0)
    if window is not None:
        mask = mask & (k > q - window)
    return mask


def attention(
    q: mx.array,
    k: mx.array,
    v: mx.array,
    *,
    scale: float,
    offset: int,
    k_positions: mx.array | None,
    window: int | None,
    softcap: float | None = None,
) -> mx.array:
    """Attention of queries q [B, Hq, Lq, D] at positions offset.. over keys k, v [B, Hkv, Lk, D].

    `k_positions` None means the keys sit at positions 0..Lk-1 in order.
    """
    lq, lk = q.shape[2], k.shape[2]
    if k_positions is None:
        if lq == 1 and (window is None or lk <= window):
            mask = None
        elif window is None or offset + lq <= window:
            mask = "causal"  # bottom-right aligned: keys 0..Lk-1, queries Lk-Lq..Lk-1
        else:
            mask = window_mask(offset + mx.arange(lq), mx.arange(lk), window)
    else:
        mask = window_mask(offset + mx.arange(lq), k_positions, window)
    if softcap is not None:
        return _softcapped(q, k, v, scale, mask, softcap)
    return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)


def _softcapped(q, k, v, scale, mask, cap) -> mx.array:
    """Reference path for `attn_logit_softcapping` (null in every released Gemma 3)."""
    b, hq, lq, d = q.shape
    hkv = k.shape[1]
    q = q.reshape(b, hkv, hq // hkv, lq, d)  # [B, Hkv, rep, Lq, D]
    scores = (q * scale) @ k[:, :, None].swapaxes(-1, -2)
    scores = mx.tanh(scores.astype(mx.float32) / cap) * cap
    if isinstance(mask, str):
        lk = k.shape[2]
        mask = window_mask(mx.arange(lk - lq, lk), mx.arange(lk), None)
    if mask is not None:
        scores = mx.where(mask, scores, -mx.inf)
    probs = mx.softmax(scores, axis=-1).astype(v.dtype)
    return (probs @ v[:, :, None]).reshape(b, hq, lq, d)
