"""Batched decode KV: one buffer per layer with a row per running sequence, positions per row."""

from __future__ import annotations

import mlx.core as mx

from ..cache import Cache, KVCache, RotatingKVCache
from ..kernels.cpu_attention import sdpa

STEP = 256  # global-layer capacity grows in multiples of this


class BatchLayerCache:
    """Keys and values [rows, Hkv, size, D] of the sequences decoding together, for one layer.

    A sliding layer keeps a ring of `size` slots per row (position p in slot p % size, as the
    single-sequence ring, so a prefilled ring is copied in as it is); a global layer keeps
    positions 0..capacity. Each row has its own position: one decode step writes one slot per
    row and attends over each row's visible slots with a mask, in one batched product.
    """

    def __init__(self, window: int | None, size: int):
        self.window, self.size = window, size  # size: ring slots, or global capacity
        self.k: mx.array | None = None
        self.v: mx.array | None = None

    @property
    def rows(self) -> int:
        return 0 if self.k is None else self.k.shape[0]

    def _resize(self, rows: int, size: int, like: mx.array) -> None:
        _, h, _, d = like.shape
        fresh = [mx.zeros((rows, h, size, d), like.dtype) for _ in range(2)]
        if self.k is not None:
            r, s = self.k.shape[0], self.k.shape[2]
            fresh[0][:r, :, :s] = self.k
            fresh[1][:r, :, :s] = self.v
        self.k, self.v = fresh
        self.size = size

    def load(self, row: int, cache: Cache, need: int, max_rows: int, expect: int = 0) -> None:
        """Copy a prefilled single-sequence cache into `row`; `need` positions in all. A buffer
        that must grow takes at least `expect` rows (the sequences about to hold one): growing
        1, 2, 4, 8 for a burst of 8 cost ~80 ms of copies (MLX's CPU copy runs at ~2 GB/s)."""
        if isinstance(cache, RotatingKVCache):
            keys, values = cache.k.read(), cache.v.read()  # the whole ring, slot order
            size = self.size
        else:
            keys, values = cache.k.read(slice(0, cache.offset)), cache.v.read(
                slice(0, cache.offset))
            size = max(self.size, -(-need // STEP) * STEP)  # grows in decode past that
        if row >= self.rows or size > self.size:
            rows = max(row + 1, min(max(2 * self.rows, expect), max_rows), self.rows)
            self._resize(rows, size, keys)
        self.k[row, :, : keys.shape[2]] = keys[0]
        self.v[row, :, : values.shape[2]] = values[0]

    def decode(self, q: mx.array, k: mx.array, v: mx.array, rows: list[int],
               positions: list[int], scale: float) -> mx.array:
        """One token per row: q [n, Hq, 1, D], k, v [n, Hkv, 1, D] at `positions`; returns
        the attention output [n, Hq, 1, D]."""
        if self.window is None and max(positions) >= self.size:
            self._resize(self.rows, max(2 * self.size, -(-(max(positions) + 1) // STEP) * STEP), k)
        r = mx.array(rows)
        pos = mx.array(positions)
        slot = pos % self.size if self.window is not None else pos
        self.k[r, :, slot] = k[:, :, 0]
        self.v[r, :, slot] = v[:, :, 0]
        # only the slots written so far: short sequences attend over a prefix, not the ring
        used = min(self.size, max(positions) + 1)
        n_rows, hq, d = self.rows, q.shape[1], q.shape[3]
        full = rows == list(range(n_rows))  # every row decodes, in order: a view as it is
        sparse = not full and 2 * len(rows) < n_rows
        qf, p = q, pos
        if sparse:  # few rows decode: gather theirs, idle rows cost nothing
            keys, values = self.k[r, :, :used], self.v[r, :, :used]
        else:  # most do: a view of every row (no copy); idle rows' outputs are dropped
            keys, values = self.k[:, :, :used], self.v[:, :, :used]
            if not full:
                qf = mx.zeros((n_rows, hq, 1, d), q.dtype)
                qf[r] = q
                p = mx.zeros((n_rows,), mx.int32)
                p[r] = pos
        p, s = p[:, None], mx.arange(used)[None, :]
        if self.window is not None:  # the position each slot holds, and the window (p-W, p]
            held = p - (p - s) % self.size
            mask = (held >= 0) & (held > p - self.window)
        else:
            mask = s <= p
        out = sdpa(qf, keys, values, scale=scale, mask=mask[:, None, None, :])
        return out if full or sparse else out[r]

    def extract(self, row: int, offset: int) -> Cache:
        """A single-sequence cache of `row` holding positions 0..offset-1 (a copy: the row is
        reused, and a view would keep the whole buffer alive)."""
        if self.window is None:
            c: Cache = KVCache()
            parts = [self.k[row : row + 1, :, :offset], self.v[row : row + 1, :, :offset]]
        else:
            c = RotatingKVCache(self.window, self.size - self.window)
            parts = [self.k[row : row + 1], self.v[row : row + 1]]
        parts = [p * 1 for p in parts]
        mx.eval(parts)
        c.k.data, c.v.data = parts[:1], parts[1:]
        c.offset = offset
        return c


def batch_caches(single: list[Cache]) -> list[BatchLayerCache] | None:
    """Batch buffers shaped like a model's caches (rings keep their slack), or None where
    they cannot hold them (quantized KV: those sequences decode one by one)."""
    out = []
    for c in single:
        if c.k.bits is not None:
            return None
        out.append(BatchLayerCache(c.window, c.size) if isinstance(c, RotatingKVCache)
                   else BatchLayerCache(None, 0))
    return out
