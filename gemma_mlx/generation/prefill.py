"""Prompt prefill in chunks that never split an image."""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from ..attention import Blocks


def prefill(
    model: Any, prompt: mx.array, cache: list, step: int,
    input_embeddings: mx.array | None = None, image_blocks: Blocks = (),
) -> mx.array:
    """Run the prompt through the model into `cache` in chunks of about `step` tokens; returns
    the final hidden state of its last position [1, hidden] (lazy)."""
    bounds = prefill_chunks(prompt.size, step, image_blocks)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        ids = None if input_embeddings is not None else prompt[a:b][None]
        emb = None if input_embeddings is None else input_embeddings[None, a:b]
        blocks = [(s, e) for s, e in image_blocks if a <= s < b]
        h = model.model(ids, cache, emb, image_blocks=blocks)
        if b < prompt.size:
            mx.eval([c.state for c in cache])
    return h[:, -1, :]


def prefill_chunks(length: int, step: int, blocks: Blocks = ()) -> list[int]:
    """Chunk boundaries 0 = b0 < b1 < ... = length, about `step` apart, none inside an image
    block (a cut inside one moves to the block's start, or its end if it starts the chunk)."""
    bounds = [0]
    while bounds[-1] < length:
        cut = min(bounds[-1] + step, length)
        for s, e in blocks:
            if s < cut < e:
                cut = s if s > bounds[-1] else e
        bounds.append(cut)
    return bounds
