"""Cross-entropy over the 262K vocabulary without [tokens x vocab] logits held at once."""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import mlx.nn as nn
import numpy as np

CHUNK = 128  # target positions whose logits exist at the same time


def _chunk_nll(head: Callable, h: mx.array, targets: mx.array) -> mx.array:
    logits = head(h).astype(mx.float32)
    picked = mx.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
    return (mx.logsumexp(logits, axis=-1) - picked).sum()


def chunked_nll(head: Callable, h: mx.array, targets: mx.array, chunk: int = CHUNK) -> mx.array:
    """Sum of -log p(targets) for hidden states h [N, D] through `head` (frozen).

    The backward recomputes each chunk's logits instead of keeping them, so memory does not
    grow with N past a bound: measured on the CPU at the 262K vocabulary, the peak is about
    3 chunks' logits for one chunk and levels off near 8 (MLX's scheduler overlaps chunks;
    evaluating each chunk inside the VJP made it far worse, 112 at N = 2048).
    """

    @mx.custom_function
    def nll(h):
        total = mx.array(0.0)
        for s in range(0, h.shape[0], chunk):
            # `+ 0 * total` orders the chunks, so MLX frees each chunk's logits first
            hc = h[s : s + chunk] + 0 * total
            total = total + _chunk_nll(head, hc, targets[s : s + chunk])
        return total

    @nll.vjp
    def nll_vjp(primals, cotangent, output):
        h = primals[0] if isinstance(primals, (list, tuple)) else primals
        grads = []
        for s in range(0, h.shape[0], chunk):
            t = targets[s : s + chunk]
            hc = h[s : s + chunk] + (0 * grads[-1].sum() if grads else 0)  # in order, as above
            _, (g,) = mx.vjp(lambda x, t=t: _chunk_nll(head, x, t), [hc], [cotangent])
            grads.append(g)
        return mx.concatenate(grads, axis=0)

    return nll(h)


def training_head(model: nn.Module) -> Callable[[mx.array], mx.array]:
    """The output head for training: a quantized (tied) head is dequantized once, because
    the CPU's quantized matmul is slow for many rows and re-dequantizing 262K rows per step
    costs more time and memory than the step itself."""
    emb = model.model.embed_tokens
    if not model.config.tie_word_embeddings or not isinstance(emb, nn.QuantizedEmbedding):
        return model.logits
    w = mx.dequantize(emb.weight, emb.scales, emb.get("biases"), emb.group_size, emb.bits,
                      mode=emb.mode)
    mx.eval(w)
    cap = model.config.final_logit_softcapping

    def head(h: mx.array) -> mx.array:
        out = h @ w.astype(h.dtype).T
        return mx.tanh(out / cap) * cap if cap else out

    return head


def lm_loss(model: nn.Module, ids: mx.array, mask: np.ndarray,
            head: Callable | None = None) -> tuple[mx.array, int]:
    """Mean next-token loss of `model` over the positions where mask [B, L-1] is set."""
    h = model.model(ids[:, :-1])  # [B, L-1, D]
    rows = np.flatnonzero(mask.reshape(-1))
    idx = mx.array(rows.astype(np.int32))
    h = h.reshape(-1, h.shape[-1])[idx]
    targets = ids[:, 1:].reshape(-1)[idx]
    n = int(rows.size)
    return chunked_nll(head or model.logits, h, targets) / max(n, 1), n
