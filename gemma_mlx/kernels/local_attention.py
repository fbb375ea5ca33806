"""Causal attention with an optional sliding window, in O(L*W) (local) or key blocks (global).

Where Metal is available, `local_attention` runs our kernel for long sliding-window prefills
and MLX's flash kernel for global layers; elsewhere it runs the MLX-op path here, which never
forms an L x L mask or score matrix:
- local layers: queries in blocks of W; block i attends to key blocks i-1 and i only, with
  two fixed W x W masks, so scores cost 2*L*W per head;
- global layers: queries in blocks, keys in chunks up to the diagonal, online softmax.
Keys are contiguous positions k_start..; queries are q_start.. (q_start >= k_start).
"""

from __future__ import annotations

import mlx.core as mx

from .loader import kernel_supports, with_reference_vjp

DENSE_MAX_QUERIES = 256  # below this a masked dense product is cheaper than blocking
GLOBAL_BLOCK = 1024


def _group(q: mx.array, hkv: int) -> mx.array:
    b, hq, lq, d = q.shape
    return q.reshape(b, hkv, hq // hkv, lq, d)  # [B, Hkv, rep, Lq, D]


def dense_attention(q, k, v, *, scale, q_start, k_start, window) -> mx.array:
    """Masked attention over all given keys; the reference and the short-query path."""
    lq, lk = q.shape[2], k.shape[2]
    qp = mx.arange(q_start, q_start + lq)[:, None]
    kp = mx.arange(k_start, k_start + lk)[None, :]
    mask = kp <= qp
    if window:
        mask = mask & (kp > qp - window)
    return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)


def _softmax_blocks(scores: mx.array, dtype: mx.Dtype) -> mx.array:
    return mx.softmax(scores.astype(mx.float32), axis=-1, precise=True).astype(dtype)


def banded_attention(q, k, v, *, scale, q_start, k_start, window) -> mx.array:
    """Sliding-window attention with query blocks of size W over key blocks i-1 and i."""
    b, hq, lq, d = q.shape
    hkv, w = k.shape[1], window
    # Align keys so that index j holds position q_start - W + j: W keys of context first.
    before = q_start - k_start
    if before >= w:
        k, v = k[:, :, before - w :], v[:, :, before - w :]
        pad_left = 0
    else:
        pad_left = w - before
    nb = -(-lq // w)
    pad_right = nb * w - lq
    pads = [(0, 0), (0, 0), (pad_left, pad_right), (0, 0)]
    k, v = mx.pad(k, pads), mx.pad(v, pads)
    kb = k.reshape(b, hkv, 1, nb + 1, w, d)  # [B, Hkv, 1, nb+1, W, D]
    vb = v.reshape(b, hkv, 1, nb + 1, w, d)
    qb = mx.pad(_group(q, hkv), [(0, 0)] * 3 + [(0, pad_right), (0, 0)])
    qb = qb.reshape(b, hkv, hq // hkv, nb, w, d) * mx.array(scale, q.dtype)
    prev = qb @ kb[:, :, :, :-1].swapaxes(-1, -2)  # [B, Hkv, rep, nb, W, W]
    own = qb @ kb[:, :, :, 1:].swapaxes(-1, -2)
    a = mx.arange(w)
    own_ok = a[None, :] <= a[:, None]  # causal inside the block
    prev_ok = a[None, :] > a[:, None]  # within W of the query, in the block before
    prev_ok = mx.broadcast_to(prev_ok, (nb, w, w))
    if pad_left:  # the first block's context is padding where positions < k_start
        first = mx.concatenate([prev_ok[:1] & (a >= pad_left)[None, None, :], prev_ok[1:]])
        prev_ok = first
    scores = mx.concatenate(
        [mx.where(prev_ok, prev, -mx.inf), mx.where(own_ok, own, -mx.inf)], axis=-1
    )
    p = _softmax_blocks(scores, v.dtype)
    out = p[..., :w] @ vb[:, :, :, :-1] + p[..., w:] @ vb[:, :, :, 1:]
    out = out.reshape(b, hq, nb * w, d)[:, :, :lq]
    return out


def blocked_causal_attention(q, k, v, *, scale, q_start, k_start, block=None):
    """Global causal attention: query blocks x key chunks with an online softmax."""
    block = block or GLOBAL_BLOCK
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    qg = _group(q, hkv) * mx.array(scale, q.dtype)
    outs = []
    for qs in range(0, lq, block):
        qi = qg[:, :, :, qs : qs + block]
        qpos = mx.arange(q_start + qs, q_start + qs + qi.shape[3])[:, None]
        k_end = min(lk, q_start + qs + qi.shape[3] - k_start)  # keys up to the last query
        m = l_sum = acc = None
        for ks in range(0, k_end, block):
            kj = k[:, :, None, ks : min(ks + block, k_end)]
            vj = v[:, :, None, ks : min(ks + block, k_end)]
            s = (qi @ kj.swapaxes(-1, -2)).astype(mx.float32)
            kpos = mx.arange(k_start + ks, k_start + ks + kj.shape[3])[None, :]
            s = mx.where(kpos <= qpos, s, -mx.inf)
            s_max = s.max(-1, keepdims=True)
            m_new = s_max if m is None else mx.maximum(m, s_max)
            p = mx.exp(s - m_new)
            pv = p.astype(v.dtype) @ vj
            if m is None:
                l_sum, acc = p.sum(-1, keepdims=True), pv.astype(mx.float32)
            else:
                c = mx.exp(m - m_new)
                l_sum = l_sum * c + p.sum(-1, keepdims=True)
                acc = acc * c + pv.astype(mx.float32)
            m = m_new
        outs.append((acc / l_sum).astype(q.dtype))
    return mx.concatenate(outs, axis=3).reshape(b, hq, lq, d)


def local_attention(
    q: mx.array, k: mx.array, v: mx.array, *, scale: float, q_start: int, k_start: int,
    window: int | None,
) -> mx.array:
    """Attention of q [B, Hq, Lq, D] (positions q_start..) over k, v [B, Hkv, Lk, D]
    (positions k_start..): causal, and limited to the last `window` positions if set."""
    window = window or 0
    lq = q.shape[2]
    if mx.metal.is_available():
        if window and lq > DENSE_MAX_QUERIES and kernel_supports(q):
            from .local_attention_metal import local_attention_metal

            kw = dict(scale=scale, q_start=q_start, k_start=k_start, window=window)
            fn = with_reference_vjp(lambda *a: local_attention_metal(*a, **kw),
                                    lambda *a: banded_attention(*a, **kw))
            return fn(q, k, v)
        if not window and k_start + k.shape[2] == q_start + lq:  # MLX's flash kernel
            return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask="causal")
    if lq <= DENSE_MAX_QUERIES or (window and lq <= window):
        return dense_attention(q, k, v, scale=scale, q_start=q_start, k_start=k_start,
                               window=window)
    if window:
        return banded_attention(q, k, v, scale=scale, q_start=q_start, k_start=k_start,
                                window=window)
    return blocked_causal_attention(q, k, v, scale=scale, q_start=q_start, k_start=k_start)
