"""The attention step of a decoder layer: cache update, then the right attention for the shape.

Image blocks: the tokens of one image attend to each other in both directions (in sliding
layers too, intersected with the window); everything else is causal, so an image never sees
a later image. The causal paths run first, then the rows of each image block are recomputed
with the block mask over the few keys they can see: O(block x (window + block)) per block,
and the same on every backend, Metal kernels included.
"""

from __future__ import annotations

from collections.abc import Sequence

import mlx.core as mx
import numpy as np

from .cache import Cache, RotatingKVCache
from .errors import GemmaError
from .kernels.cpu_attention import sdpa
from .kernels.local_attention import local_attention
from .kernels.ring_decode import ring_decode

Blocks = Sequence[tuple[int, int]]  # [start, end) absolute positions of each image


def image_blocks(input_ids: np.ndarray, image_token_id: int, offset: int = 0) -> Blocks:
    """The runs of `image_token_id` in input_ids [B, L] (the same in every row), as absolute
    [start, end) positions; each contiguous run is one image, as in transformers."""
    is_image = np.asarray(input_ids).reshape(-1, np.shape(input_ids)[-1]) == image_token_id
    if not is_image.any():
        return ()
    if (is_image != is_image[:1]).any():
        raise GemmaError("every row of a batch must place its images at the same positions")
    flags = np.concatenate([[False], is_image[0], [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(flags))
    starts, ends = edges[::2] + offset, edges[1::2] + offset
    return tuple((int(s), int(e)) for s, e in zip(starts, ends, strict=True))


def block_mask(qpos: mx.array, kpos: mx.array, window: int | None, blocks: Blocks) -> mx.array:
    """Boolean [Lq, Lk] mask: causal (and windowed), or inside the same image block."""
    q, k = qpos[:, None], kpos[None, :]
    ok = k <= q
    for s, e in blocks:
        ok = ok | ((q >= s) & (q < e) & (k >= s) & (k < e))
    return ok & (k > q - window) if window else ok


def _image_rows(out, q, k, v, *, scale, q_start, k_start, window, blocks) -> mx.array:
    """Replace the rows of each image block in `out` by their bidirectional-block attention."""
    lq = q.shape[2]
    for s, e in blocks:
        if s < q_start or e > q_start + lq:
            raise GemmaError(f"image block [{s}, {e}) is split across prefill chunks")
        lo = max(k_start, s - window + 1) if window else k_start
        qpos, kpos = mx.arange(s, e), mx.arange(lo, e)
        rows = mx.fast.scaled_dot_product_attention(
            q[:, :, s - q_start : e - q_start], k[:, :, lo - k_start : e - k_start],
            v[:, :, lo - k_start : e - k_start], scale=scale,
            mask=block_mask(qpos, kpos, window, ((s, e),)),
        )
        out[:, :, s - q_start : e - q_start] = rows
    return out


def attend(
    q: mx.array, k: mx.array, v: mx.array, cache: Cache | None, *, scale: float,
    window: int | None, blocks: Blocks = (),
) -> mx.array:
    """Queries q [B, Hq, L, D] over new keys/values k, v [B, Hkv, L, D] and the cache.

    Prefill (any L, with or without cache) goes through `local_attention`, which costs
    O(L*W) on sliding layers; a decode step on a sliding layer reads the ring in place.
    """
    n = q.shape[2]
    if cache is None:
        out = local_attention(q, k, v, scale=scale, q_start=0, k_start=0, window=window)
        return _image_rows(out, q, k, v, scale=scale, q_start=0, k_start=0, window=window,
                           blocks=blocks)
    if n == 1 and isinstance(cache, RotatingKVCache):
        cache.update_ring(k, v)
        keys, values = cache.ring()
        return ring_decode(q, keys, values, scale=scale, offset=cache.offset,
                           window=cache.window, size=cache.size)
    q_start = cache.offset
    keys, values, k_start = cache.update_and_fetch(k, v)
    if n == 1:  # global decode: every cached key is visible
        return sdpa(q, keys, values, scale=scale)
    kw = dict(scale=scale, q_start=q_start, k_start=k_start, window=window)
    out = local_attention(q, keys, values, **kw)
    return _image_rows(out, q, keys, values, blocks=blocks, **kw)
