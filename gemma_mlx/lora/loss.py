"""Cross-entropy over the 262K vocabulary without [tokens x vocab] logits held at once."""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import mlx.nn as nn
import numpy as np

CHUNK = 512  # target positions whose logits exist at the same time


def _chunk_nll(head: Callable, h: mx.array, targets: mx.array) -> mx.array:
    logits = head(h).astype(mx.float32)
    picked = mx.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
    return (mx.logsumexp(logits, axis=-1) - picked).sum()


def chunked_nll(head: Callable, h: mx.array, targets: mx.array, chunk: int = CHUNK) -> mx.array:
    """Sum of -log p(targets) for hidden states h [N, D] through `head` (frozen).

    The backward recomputes each chunk's logits instead of keeping them, so memory is
    O(chunk x vocab) whatever N is.
    """

    @mx.custom_function
    def nll(h):
        total = mx.array(0.0)
        for s in range(0, h.shape[0], chunk):
            total = total + _chunk_nll(head, h[s : s + chunk], targets[s : s + chunk])
            mx.eval(total)  # free this chunk's logits before the next
        return total

    @nll.vjp
    def nll_vjp(primals, cotangent, output):
        h = primals[0] if isinstance(primals, (list, tuple)) else primals
        grads = []
        for s in range(0, h.shape[0], chunk):
            t = targets[s : s + chunk]
            _, (g,) = mx.vjp(lambda x, t=t: _chunk_nll(head, x, t), [h[s : s + chunk]],
                             [cotangent])
            mx.eval(g)
            grads.append(g)
        return mx.concatenate(grads, axis=0)

    return nll(h)


def lm_loss(model: nn.Module, ids: mx.array, mask: np.ndarray) -> tuple[mx.array, int]:
    """Mean next-token loss of `model` over the positions where mask [B, L-1] is set."""
    h = model.model(ids[:, :-1])  # [B, L-1, D]
    rows = np.flatnonzero(mask.reshape(-1))
    idx = mx.array(rows.astype(np.int32))
    h = h.reshape(-1, h.shape[-1])[idx]
    targets = ids[:, 1:].reshape(-1)[idx]
    n = int(rows.size)
    return chunked_nll(model.logits, h, targets) / max(n, 1), n
