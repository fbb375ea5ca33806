"""Quantization quality: top-1 agreement, KL and perplexity against the unquantized model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn

from .heldout_text import HELDOUT_TEXTS

CHUNK = 256  # positions per forward, to bound the [L, vocab] logits held at once
# Statistics over views of this many rows: their [rows, vocab] temporaries stay under glibc's
# 32 MB mmap threshold (MLX's CPU allocator keeps no cache), so they are reused rather than
# mapped and zeroed by the kernel each time (page zeroing was half of a report's time; this
# took ~13% off it, the rest being the chunk's own logits and dequantized weights).
STATS_ROWS = 16


@dataclass(frozen=True)
class Quality:
    top1: float  # fraction of positions where the argmax agrees with the reference
    kl: float  # mean KL(reference || quantized), nats per token
    ppl: float  # perplexity of the quantized model on the text
    ref_ppl: float  # perplexity of the reference model


def _logits(model: nn.Module, ids: mx.array) -> Iterator[mx.array]:
    """Yield float32 next-token logits, CHUNK positions at a time."""
    cache = model.make_cache()
    for s in range(0, ids.shape[0], CHUNK):
        yield model(ids[None, s : s + CHUNK], cache=cache)[0].astype(mx.float32)


def _log_softmax(logits: mx.array) -> mx.array:
    return logits - mx.logsumexp(logits, axis=-1, keepdims=True)


def _log_probs(model: nn.Module, ids: mx.array) -> Iterator[mx.array]:
    """Yield float32 log-softmax of the next-token logits, CHUNK positions at a time."""
    for logits in _logits(model, ids):
        yield mx.concatenate([_log_softmax(logits[r : r + STATS_ROWS])
                              for r in range(0, logits.shape[0], STATS_ROWS)])


def reference_log_probs(reference: nn.Module, ids: list[int]) -> list[mx.array]:
    """The reference's log-probabilities, kept to score several candidates against."""
    out = list(_log_probs(reference, mx.array(ids)))
    mx.eval(out)
    return out


@contextmanager
def dense_head(model: nn.Module) -> Iterator[None]:
    """A quantized tied head dequantized once while scoring, not once per chunk: the same
    products (the CPU's long-input path dequantizes then multiplies) at a fraction of the
    time, for the ~1 GB a 262K x hidden float head takes."""
    emb = getattr(getattr(model, "model", None), "embed_tokens", None)
    if not isinstance(emb, nn.QuantizedEmbedding) or mx.default_device() != mx.cpu:
        yield
        return
    w = mx.dequantize(emb["weight"], emb["scales"], emb.get("biases"),
                      group_size=emb.group_size, bits=emb.bits, mode=emb.mode)
    object.__setattr__(emb, "as_linear", lambda h: h @ w.astype(h.dtype).T)
    try:
        yield
    finally:
        object.__delattr__(emb, "as_linear")


def compare(reference: nn.Module | list[mx.array], model: nn.Module, ids: list[int]) -> Quality:
    """Score `model` against `reference` (a model, or its reference_log_probs) on the ids."""
    with dense_head(model):
        return _compare(reference, model, ids)


def _compare(reference, model, ids) -> Quality:
    x = mx.array(ids)
    # a reference model's chunks are raw logits (log-softmax per view below); cached
    # reference_log_probs are log-probabilities already
    ref = _logits(reference, x) if isinstance(reference, nn.Module) else reference
    raw_ref = isinstance(reference, nn.Module)
    agree = kl = nll = ref_nll = 0.0
    for s, (ref_chunk, logits) in enumerate(zip(ref, _logits(model, x), strict=True)):
        start = s * CHUNK
        sums = mx.zeros((4,))
        for r in range(0, logits.shape[0], STATS_ROWS):
            lp = _log_softmax(logits[r : r + STATS_ROWS])
            lp_ref = ref_chunk[r : r + STATS_ROWS]
            lp_ref = _log_softmax(lp_ref) if raw_ref else lp_ref
            targets = x[start + r + 1 : start + r + lp.shape[0] + 1]
            m = targets.shape[0]  # the text's last position has no next token
            sums = sums + mx.stack([
                (lp_ref.argmax(-1) == lp.argmax(-1)).sum().astype(mx.float32),
                (mx.exp(lp_ref) * (lp_ref - lp)).sum(),
                -mx.take_along_axis(lp[:m], targets[:, None], axis=-1).sum(),
                -mx.take_along_axis(lp_ref[:m], targets[:, None], axis=-1).sum()])
        a, k, n, rn = sums.tolist()
        agree, kl, nll, ref_nll = agree + a, kl + k, nll + n, ref_nll + rn
    n_pos, n_pred = x.shape[0], x.shape[0] - 1
    return Quality(agree / n_pos, kl / n_pos, float(mx.exp(mx.array(nll / n_pred))),
                   float(mx.exp(mx.array(ref_nll / n_pred))))


def heldout_ids(tokenizer, language: str = "English") -> list[int]:
    """One built-in held-out text, tokenized (with <bos>)."""
    return tokenizer.encode(HELDOUT_TEXTS[language])


def heldout_sets(tokenizer) -> dict[str, list[int]]:
    """Every built-in held-out text (one per language or script), tokenized."""
    return {lang: tokenizer.encode(text) for lang, text in HELDOUT_TEXTS.items()}
