"""Attention references in plain numpy (float64): explicit scores, mask and softmax."""

from __future__ import annotations

import mlx.core as mx
import numpy as np


def _f64(x) -> np.ndarray:
    if isinstance(x, mx.array):
        x = x.astype(mx.float32)  # numpy has no bfloat16
    return np.array(x, dtype=np.float64)


def masked_attention(q, k, v, scale: float, qpos: np.ndarray, kpos: np.ndarray, window: int,
                     blocks=()):
    """q [B, Hq, Lq, D] at qpos over k, v [B, Hkv, Lk, D] at kpos: causal, windowed if set.

    `blocks` ([start, end) image spans): transformers' Gemma 3 mask, AND(window, OR(causal,
    same block)), written from its definition.
    """
    q, k, v = (_f64(x) for x in (q, k, v))
    rep = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    s = q @ k.swapaxes(-1, -2) * scale
    qp, kp = qpos[:, None], kpos[None, :]
    block_of = {p: i for i, (a, b) in enumerate(blocks) for p in range(a, b)}
    same = np.array([[block_of.get(a, -1) == block_of.get(b, -2) for b in kpos] for a in qpos])
    ok = ((kp <= qp) | same) & ((kp > qp - window) if window else True)
    s = np.where(ok, s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def dense_reference(q, k, v, scale: float, q_start: int, k_start: int, window: int):
    """Contiguous positions: queries q_start.., keys k_start..."""
    qpos = np.arange(q_start, q_start + q.shape[2])
    kpos = np.arange(k_start, k_start + k.shape[2])
    return masked_attention(q, k, v, scale, qpos, kpos, window)


def ring_reference(q, k, v, scale: float, offset: int, window: int, size: int):
    """Queries at offset-Lq.. over ring slots; slot j holds the latest position p < offset
    with p % size == j (computed here by search, not by the formula under test)."""
    kpos = np.array([max(p for p in range(offset) if p % size == j) for j in range(k.shape[2])])
    qpos = np.arange(offset - q.shape[2], offset)
    return masked_attention(q, k, v, scale, qpos, kpos, window)
