"""llama.cpp block formats decoded to MLX affine groups of 32 (q * scale + bias), exactly."""

from __future__ import annotations

import numpy as np

GROUP = 32


def pack_bits(q: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned ints q [rows, cols] into MLX's little-endian bit stream of uint32."""
    rows = q.shape[0]
    if bits == 8:
        return np.ascontiguousarray(q.astype(np.uint8)).view(np.uint32).reshape(rows, -1)
    # Eight values fill exactly `bits` bytes: build them as one little-endian uint64.
    eight = q.reshape(-1, 8).astype(np.uint64)
    word = np.zeros(eight.shape[0], np.uint64)
    for i in range(8):
        word |= eight[:, i] << np.uint64(bits * i)
    out = word.view(np.uint8).reshape(-1, 8)[:, :bits]
    return np.ascontiguousarray(out).reshape(rows, -1).view(np.uint32)


def _f16(raw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(raw).view(np.float16).astype(np.float32)


def q8_0(blocks: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Q8_0: 32 int8 and one fp16 scale per block; w = d * q."""
    b = blocks.reshape(-1, 34)
    d = _f16(b[:, :2]).reshape(-1)
    q = b[:, 2:].view(np.int8).astype(np.int16) + 128  # signed -> unsigned
    return q.reshape(rows, -1), d.reshape(rows, -1), (-128.0 * d).reshape(rows, -1), 8


def q4_0(blocks: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Q4_0: low nibbles are elements 0-15, high nibbles 16-31; w = d * (q - 8)."""
    b = blocks.reshape(-1, 18)
    d = _f16(b[:, :2]).reshape(-1)
    qs = b[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1)
    return q.reshape(rows, -1), d.reshape(rows, -1), (-8.0 * d).reshape(rows, -1), 4


def q4_1(blocks: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Q4_1: w = d * q + m."""
    b = blocks.reshape(-1, 20)
    d, m = _f16(b[:, :2]).reshape(-1), _f16(b[:, 2:4]).reshape(-1)
    qs = b[:, 4:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1)
    return q.reshape(rows, -1), d.reshape(rows, -1), m.reshape(rows, -1), 4


def _q5_values(qh_raw: np.ndarray, qs: np.ndarray) -> np.ndarray:
    qh = np.ascontiguousarray(qh_raw).view(np.uint32).reshape(-1, 1)
    j = np.arange(16, dtype=np.uint32)
    lo = (qs & 0x0F) | (((qh >> j) & 1) << 4).astype(np.uint8)
    hi = (qs >> 4) | (((qh >> (j + 16)) & 1) << 4).astype(np.uint8)
    return np.concatenate([lo, hi], axis=1)


def q5_0(blocks: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Q5_0: 4 low bits in nibbles, the 5th in a 32-bit mask; w = d * (q - 16)."""
    b = blocks.reshape(-1, 22)
    d = _f16(b[:, :2]).reshape(-1)
    q = _q5_values(b[:, 2:6], b[:, 6:])
    return q.reshape(rows, -1), d.reshape(rows, -1), (-16.0 * d).reshape(rows, -1), 5


def q5_1(blocks: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Q5_1: w = d * q + m."""
    b = blocks.reshape(-1, 24)
    d, m = _f16(b[:, :2]).reshape(-1), _f16(b[:, 2:4]).reshape(-1)
    q = _q5_values(b[:, 4:8], b[:, 8:])
    return q.reshape(rows, -1), d.reshape(rows, -1), m.reshape(rows, -1), 5


def _k4_scales(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 8 six-bit (scale, min) pairs packed in Q4_K's 12 scale bytes."""
    s = s.astype(np.uint8)
    sc = np.concatenate([s[:, 0:4] & 63, (s[:, 8:12] & 0x0F) | ((s[:, 0:4] >> 6) << 4)], axis=1)
    mn = np.concatenate([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)], axis=1)
    return sc.astype(np.float32), mn.astype(np.float32)


def q4_k(blocks: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Q4_K: 256-element super-blocks of 8 groups; w = d*sc*q - dmin*m (float32 keeps it exact)."""
    b = blocks.reshape(-1, 144)
    d, dmin = _f16(b[:, 0:2]), _f16(b[:, 2:4])  # [nb, 1]
    sc, mn = _k4_scales(b[:, 4:16])  # [nb, 8]
    qs = b[:, 16:].reshape(-1, 4, 32)  # four 64-element chunks: low nibbles, then high
    q = np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(-1, 256)
    scale = d * sc
    bias = -(dmin * mn)
    return q.reshape(rows, -1), scale.reshape(rows, -1), bias.reshape(rows, -1), 4


EXACT = {"Q8_0": q8_0, "Q4_0": q4_0, "Q4_1": q4_1, "Q5_0": q5_0, "Q5_1": q5_1, "Q4_K": q4_k}
