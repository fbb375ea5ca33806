"""KV caches: a growing cache for global layers and a ring buffer for sliding-window layers.

Both can hold keys and values quantized to 8 or 4 bits (`kv_bits`), roll back the last
tokens (`trim`), and be saved to and loaded from a file (prompt caching).
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from pathlib import Path

import mlx.core as mx

KV_GROUP = 64


def kv_group(head_dim: int) -> int:
    """The quantization group along a head: 64, or 32 for heads it does not divide."""
    return KV_GROUP if head_dim % KV_GROUP == 0 else 32


class _Store:
    """A [B, H, N, D] buffer, plain or quantized along D, written and read by position slices."""

    def __init__(self, bits: int | None):
        self.bits = bits
        self.data: list[mx.array] = []  # [array] or [packed, scales, biases]

    @property
    def capacity(self) -> int:
        return self.data[0].shape[2] if self.data else 0

    def allocate(self, like: mx.array, n: int) -> list[mx.array]:
        b, h, _, d = like.shape
        if self.bits is None:
            return [mx.zeros((b, h, n, d), like.dtype)]
        per_word = 32 // self.bits
        return [mx.zeros((b, h, n, d // per_word), mx.uint32),
                mx.zeros((b, h, n, d // kv_group(d)), like.dtype),
                mx.zeros((b, h, n, d // kv_group(d)), like.dtype)]

    def encode(self, x: mx.array) -> list[mx.array]:
        if self.bits is None:
            return [x]
        return list(mx.quantize(x, group_size=kv_group(x.shape[-1]), bits=self.bits))

    def as_stored(self, x: mx.array) -> mx.array:
        """x as a read will return it (through the quantizer when the store is quantized)."""
        if self.bits is None:
            return x
        return mx.dequantize(*self.encode(x), group_size=kv_group(x.shape[-1]),
                             bits=self.bits)

    def write(self, index, x: mx.array) -> None:
        for buf, part in zip(self.data, self.encode(x), strict=True):
            buf[:, :, index] = part

    def read(self, index=slice(None)) -> mx.array:
        parts = [a[:, :, index] for a in self.data]
        if self.bits is None:
            return parts[0]
        head_dim = parts[0].shape[-1] * 32 // self.bits
        return mx.dequantize(*parts, group_size=kv_group(head_dim), bits=self.bits)


class KVCache:
    """Every past key and value, in order, for a global-attention layer.

    Storage doubles when full, so a decode step writes in place and the cache is copied
    O(log L) times in all rather than once per step.
    """

    step = 256

    def __init__(self, kv_bits: int | None = None) -> None:
        self.k, self.v = _Store(kv_bits), _Store(kv_bits)
        self.offset = 0

        self.reserved = 0

    def reserve(self, n: int) -> None:
        """Size the first allocation for n positions (prompt + max tokens): no copies later."""
        self.reserved = n

    def _grow(self, k: mx.array, v: mx.array, need: int) -> None:
        size = max(need, self.reserved, 2 * self.k.capacity)
        size = -(-size // self.step) * self.step
        for store, x in ((self.k, k), (self.v, v)):
            fresh = store.allocate(x, size)
            for buf, old in zip(fresh, store.data, strict=False):
                buf[:, :, : self.offset] = old[:, :, : self.offset]
            store.data = fresh

    def update_and_fetch(self, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array, int]:
        """Append k, v [B, H, L, D]; return all keys/values so far and the first position (0)."""
        n = k.shape[2]
        if self.offset + n > self.k.capacity:
            self._grow(k, v, self.offset + n)
        span = slice(self.offset, self.offset + n)
        self.k.write(span, k)
        self.v.write(span, v)
        self.offset += n
        return self.k.read(slice(0, self.offset)), self.v.read(slice(0, self.offset)), 0

    def trim(self, n: int) -> int:
        """Forget the last n tokens; returns how many were removed."""
        n = min(n, self.offset)
        self.offset -= n
        return n

    @property
    def state(self) -> list[mx.array]:
        return [a[:, :, : self.offset] for a in self.k.data + self.v.data]

    def meta(self) -> dict:
        return {"class": "KVCache", "offset": self.offset, "kv_bits": self.k.bits}


class RotatingKVCache:
    """A ring of `window + slack` slots for a sliding-window layer.

    Position p lives in slot p % size and is never moved: a decode step writes one slot and
    the attention tells positions from slots. `slack` extra slots allow rolling back that
    many tokens (speculative decoding, regeneration).
    """

    def __init__(self, window: int, slack: int = 0, kv_bits: int | None = None) -> None:
        self.window, self.slack = window, slack
        self.size = window + slack
        self.k, self.v = _Store(kv_bits), _Store(kv_bits)
        self.offset = 0

    @property
    def filled(self) -> int:
        return min(self.offset, self.size)

    def _slots(self, start: int, stop: int) -> mx.array:
        return mx.arange(start, stop) % self.size

    def _write(self, k: mx.array, v: mx.array) -> None:
        n = k.shape[2]
        if not self.k.data:
            self.k.data, self.v.data = self.k.allocate(k, self.size), self.v.allocate(v, self.size)
        keep = min(n, self.size)
        start = self.offset + n - keep
        if keep == 1:
            idx = slice(start % self.size, start % self.size + 1)
        else:
            idx = self._slots(start, self.offset + n)
        self.k.write(idx, k[:, :, n - keep :])
        self.v.write(idx, v[:, :, n - keep :])
        self.offset += n

    def ordered(self, count: int) -> tuple[mx.array, mx.array]:
        """The last `count` stored positions, oldest first (a read-side gather)."""
        idx = self._slots(self.offset - count, self.offset)
        return self.k.read(idx), self.v.read(idx)

    def update_and_fetch(self, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array, int]:
        """Store a chunk k, v [B, H, L, D]; return the last window-1 old keys + the chunk,
        contiguous, and the position of the first one."""
        context = min(self.filled, self.window - 1)
        # the chunk's own keys as stored, as a one-token step and the global cache see them:
        # with quantized KV, verifying k tokens at once then equals k single steps
        keys, values = self.k.as_stored(k), self.v.as_stored(v)
        if context:
            old_k, old_v = self.ordered(context)
            keys = mx.concatenate([old_k, keys], axis=2)
            values = mx.concatenate([old_v, values], axis=2)
        start = self.offset - context
        self._write(k, v)
        return keys, values, start

    def update_ring(self, k: mx.array, v: mx.array) -> None:
        """Decode: write one token in place."""
        self._write(k, v)

    def ring(self) -> tuple[mx.array, mx.array]:
        """The filled slots as stored (slot order)."""
        return self.k.read(slice(0, self.filled)), self.v.read(slice(0, self.filled))

    def trim(self, n: int) -> int:
        """Forget the last n tokens if the ring still holds the window before them."""
        wrapped = self.offset > self.size
        n = min(n, self.slack if wrapped else self.offset)
        self.offset -= n
        return n

    @property
    def state(self) -> list[mx.array]:
        return self.k.data + self.v.data

    def meta(self) -> dict:
        return {"class": "RotatingKVCache", "offset": self.offset, "kv_bits": self.k.bits,
                "window": self.window, "slack": self.slack}


Cache = KVCache | RotatingKVCache


def copy_cache(c: Cache, n: int | None = None) -> Cache:
    """A copy of `c` that later writes to either leave alone; a global layer's copy holds
    only its first n positions (a ring is copied whole: its slots are not in order)."""
    out = copy.copy(c)
    ring = isinstance(c, RotatingKVCache)
    for name in ("k", "v"):
        store = copy.copy(getattr(c, name))
        store.data = [(a if ring or n is None else a[:, :, :n]) * 1 for a in store.data]
        mx.eval(store.data)
        setattr(out, name, store)
    return out


def save_prompt_cache(path: str | Path, caches: list[Cache], metadata: dict | None = None) -> None:
    """Write caches to a safetensors file atomically (temporary file renamed at the end)."""
    arrays = {f"{i}.{j}": a for i, c in enumerate(caches) for j, a in enumerate(c.state)}
    meta = {"caches": json.dumps([c.meta() for c in caches]),
            "metadata": json.dumps(metadata or {})}
    path = Path(path)
    # A temporary name of this call's own: two processes (or threads) saving the same cache
    # must never write into one file and rename each other's half-written bytes into place.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp.safetensors")
    try:
        mx.save_safetensors(str(tmp), arrays, metadata=meta)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_prompt_cache(path: str | Path) -> tuple[list[Cache], dict]:
    """Caches and user metadata saved by save_prompt_cache."""
    arrays, meta = mx.load(str(path), return_metadata=True)
    caches: list[Cache] = []
    for i, m in enumerate(json.loads(meta["caches"])):
        if m["class"] == "KVCache":
            c: Cache = KVCache(m["kv_bits"])
        else:
            c = RotatingKVCache(m["window"], m["slack"], m["kv_bits"])
        half = 1 if m["kv_bits"] is None else 3  # arrays per store: plain, or packed+scales+biases
        parts = [arrays[f"{i}.{j}"] for j in range(2 * half) if f"{i}.{j}" in arrays]
        c.k.data, c.v.data = parts[:half], parts[half:]
        c.offset = m["offset"]
        caches.append(c)
    return caches, json.loads(meta["metadata"])
