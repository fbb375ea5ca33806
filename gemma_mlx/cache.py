"""KV caches: a growing cache for global layers and a ring buffer for sliding-window layers."""

from __future__ import annotations

import mlx.core as mx


class KVCache:
    """Keys and values of every past position, in order, for a global-attention layer.

    Storage grows in steps of `step` positions, so a decode step writes in place.
    """

    step = 256

    def __init__(self) -> None:
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0

    def update_and_fetch(self, k: mx.array, v: mx.array) -> tuple[mx.array, mx.array, None]:
        """Append k, v [B, H, L, D]; return all keys and values so far (positions 0..offset)."""
        n = k.shape[2]
        if self.keys is None or self.offset + n > self.keys.shape[2]:
            grow = ((n + self.step - 1) // self.step) * self.step
            new_k = mx.zeros((*k.shape[:2], grow, k.shape[3]), k.dtype)
            new_v = mx.zeros((*v.shape[:2], grow, v.shape[3]), v.dtype)
            if self.keys is None:
                self.keys, self.values = new_k, new_v
            else:
                self.keys = mx.concatenate([self.keys[..., : self.offset, :], new_k], axis=2)
                self.values = mx.concatenate([self.values[..., : self.offset, :], new_v], axis=2)
        self.keys[..., self.offset : self.offset + n, :] = k
        self.values[..., self.offset : self.offset + n, :] = v
        self.offset += n
        return self.keys[..., : self.offset, :], self.values[..., : self.offset, :], None

    @property
    def state(self) -> list[mx.array]:
        if self.keys is None:
            return []
        return [self.keys[..., : self.offset, :], self.values[..., : self.offset, :]]


class RotatingKVCache:
    """A ring buffer of the last `size` keys and values for a sliding-window layer.

    Position p lives in slot p % size and is never moved: a decode step writes one slot,
    and the attention works out which slot holds which position (`positions`).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0

    def positions(self) -> mx.array:
        """Absolute position held by each filled slot, in slot order."""
        filled = min(self.offset, self.size)
        last = self.offset - 1
        slots = mx.arange(filled)
        return last - (last - slots) % self.size

    def update_and_fetch(
        self, k: mx.array, v: mx.array
    ) -> tuple[mx.array, mx.array, mx.array | None]:
        """Store k, v [B, H, L, D]; return the keys a chunk can see and their positions.

        For one new token the filled ring is returned (positions None: with size equal
        to the window every slot is in view). For a chunk, the old ring and the new keys
        are returned together with positions so the caller masks by the window.
        """
        n = k.shape[2]
        if self.keys is None:
            shape = (*k.shape[:2], self.size, k.shape[3])
            self.keys, self.values = mx.zeros(shape, k.dtype), mx.zeros(shape, v.dtype)
        if n == 1:
            slot = self.offset % self.size
            self.keys[..., slot : slot + 1, :] = k
            self.values[..., slot : slot + 1, :] = v
            self.offset += 1
            filled = min(self.offset, self.size)
            return self.keys[..., :filled, :], self.values[..., :filled, :], None
        filled = min(self.offset, self.size)
        old_pos = self.positions()
        keys = mx.concatenate([self.keys[..., :filled, :], k], axis=2)
        values = mx.concatenate([self.values[..., :filled, :], v], axis=2)
        positions = mx.concatenate([old_pos, self.offset + mx.arange(n)])
        keep = min(n, self.size)
        slots = (self.offset + mx.arange(n - keep, n)) % self.size
        self.keys[..., slots, :] = k[..., n - keep :, :]
        self.values[..., slots, :] = v[..., n - keep :, :]
        self.offset += n
        return keys, values, positions

    @property
    def state(self) -> list[mx.array]:
        return [] if self.keys is None else [self.keys, self.values]
