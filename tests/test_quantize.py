"""The least-error quantization search: the CPU extension and the MLX version against a plain
reference, bit for bit (packed levels, scales and biases), edge cases included."""

from __future__ import annotations

import sys

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.formats import quantize
from gemma_mlx.formats.gguf_quants import pack_bits
from gemma_mlx.formats.quantize import SEARCH_SPANS, Spec, quantize_tensor
from gemma_mlx.kernels import cpu_qmm

BITS = [2, 3, 4, 5, 6, 8]
GROUPS = [32, 64, 128]


def _reference(g: mx.array, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The search spelled out, one candidate grid at a time, in MLX's float32 ops: the
    candidates' errors square with d * d (as the compiled _grid_error does), the refit's with
    ** 2 (uncompiled MLX: powf), which can differ in the last bit."""
    levels = 2**bits - 1
    lo, hi = g.min(1, keepdims=True), g.max(1, keepdims=True)
    width = mx.maximum(hi - lo, 1e-12)
    candidates = []
    for span in range(levels, levels - SEARCH_SPANS[bits], -1):
        s = width / span
        candidates += [(s, lo), (s, hi - levels * s)]
    best = bs = bb = None
    for s, b in candidates:
        d = mx.clip(mx.round((g - b) / s), 0, levels) * s + b - g
        err = (d * d).sum(1, keepdims=True)
        if best is None:
            best, bs, bb = err, s, b
        else:  # strictly better only: the first of equal errors stays, NaN never wins
            better = err < best
            best, bs, bb = (mx.where(better, err, best), mx.where(better, s, bs),
                            mx.where(better, b, bb))
    q = mx.clip(mx.round((g - bb) / bs), 0, levels)
    n = g.shape[1]
    sq, sg, sqq, sqg = q.sum(1), g.sum(1), (q * q).sum(1), (q * g).sum(1)
    det = n * sqq - sq * sq
    s2 = mx.where(det > 0, (n * sqg - sq * sg) / mx.where(det > 0, det, 1), 0)[:, None]
    b2 = mx.where(det > 0, (sg - s2[:, 0] * sq) / n, sg / n)[:, None]
    q2 = mx.clip(mx.round((g - b2) / mx.where(s2 == 0, 1, s2)), 0, levels)
    err2 = ((q2 * s2 + b2 - g) ** 2).sum(1, keepdims=True)
    refit = (err2 < best) & (s2 > 0)
    q, s, b = mx.where(refit, q2, q), mx.where(refit, s2, bs), mx.where(refit, b2, bb)
    packed = pack_bits(np.array(q.astype(mx.uint8)), bits)
    return packed, np.array(s)[:, 0], np.array(b)[:, 0]


def _edge_rows(gs: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Groups that stress the corner cases of the search."""
    r = rng.normal(size=gs)
    grid = [(rng.integers(0, 2**k, gs) - 2 ** (k - 1)) * 0.0123 for k in (2, 3, 4, 5, 6, 8)]
    return grid + [
        np.full(gs, 0.37), np.zeros(gs), np.full(gs, -0.0),  # constant: zero width
        np.where(rng.random(gs) < 0.5, -0.0, 0.0),  # signed zeros
        np.r_[-0.0, 0.0, np.abs(r[2:])], np.r_[0.0, -0.0, np.abs(r[2:])],  # which zero is min
        np.r_[np.full(gs - 1, 1.0), 2.0], np.r_[np.ones(gs // 2), -np.ones(gs // 2)],
        r * 1e-30, r * 1e-40, r * 1e-44,  # tiny, subnormal
        r * 1e30, r * 1e36,  # huge
        np.r_[3e38, -3e38, r[2:] * 1e37],  # the width overflows to inf (levels NaN -> 0)
        r.astype(np.float16).astype(np.float64), np.round(r * 4) / 4,
    ]


def _groups(gs: int, seed: int = 0) -> np.ndarray:
    """Edge-case groups among normal ones at a few scales, shuffled; a count that is not a
    multiple of the kernel's 8 lanes."""
    rng = np.random.default_rng(seed)
    rows = _edge_rows(gs, rng) * 3
    rows += list(rng.normal(size=(150, gs)) * rng.choice([1e-3, 0.02, 1.0, 50.0], (150, 1)))
    rows = np.array(rows, dtype=np.float32)
    return rows[rng.permutation(len(rows))][:-3]


def _same(got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...]) -> None:
    for a, b, what in zip(got, want, ("packed levels", "scales", "biases"), strict=True):
        a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
        assert a.dtype.itemsize == b.dtype.itemsize == 4
        bad = np.flatnonzero(a.view(np.uint32) != b.view(np.uint32))
        assert bad.size == 0, f"{what} differ at {bad[:5]}: {a[bad[:5]]} vs {b[bad[:5]]}"


def _mlx_search(g: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q, s, b = quantize._search(mx.array(g), bits)
    return pack_bits(np.array(q.astype(mx.uint8)), bits), np.array(s), np.array(b)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("gs", GROUPS)
def test_mlx_search_is_the_reference(bits, gs):
    g = _groups(gs)
    _same(_mlx_search(g, bits), _reference(mx.array(g), bits))


def _kernel_built() -> bool:
    return cpu_qmm.quant_search(np.zeros((8, 32), np.float32), 4, 8) is not None


# The kernel sums in element order, as MLX's CPU backend does on Linux; MLX on macOS (8-wide
# Accelerate sums, or the GPU) may break near-ties differently.
needs_kernel = pytest.mark.skipif(
    sys.platform != "linux" or not _kernel_built(),
    reason="the CPU extension with the search is not built (scripts/build_cpu_kernels.sh)")


@needs_kernel
@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("gs", GROUPS)
def test_kernel_is_the_reference(bits, gs, portable):
    g = _groups(gs, seed=bits)
    got = cpu_qmm.quant_search(g, bits, SEARCH_SPANS[bits], portable=portable)
    _same(got, _reference(mx.array(g), bits))


@needs_kernel
@pytest.mark.parametrize("bits", [3, 4, 5])
def test_kernel_is_the_mlx_search_on_a_layer_sized_matrix(bits):
    """640 x 2048 (the 270M's MLP), and a dequantized GGUF-like 5-bit grid (refit near-ties)."""
    rng = np.random.default_rng(bits)
    w = rng.normal(size=(640 * 2048 // 64, 64)).astype(np.float32) * 0.02
    d = np.abs(rng.normal(size=(4096, 1))) * 0.01
    on_grid = (d * (rng.integers(0, 32, (4096, 64)) - 16)).astype(np.float32)
    for g in (w, on_grid):
        _same(cpu_qmm.quant_search(g, bits, SEARCH_SPANS[bits]), _mlx_search(g, bits))


@needs_kernel
@pytest.mark.parametrize("dtype", [mx.float32, mx.bfloat16, mx.float16])
def test_quantize_tensor_is_the_same_with_and_without_the_kernel(dtype, monkeypatch):
    monkeypatch.setattr(quantize, "CHUNK", 20 * 192)  # several chunks, the last partial
    g = _groups(64).reshape(-1)
    w = mx.array(g[: g.size // 192 * 192].reshape(-1, 192)).astype(dtype)
    for spec in (Spec(4, 64), Spec(5, 32), Spec(8, 64)):
        fast = quantize_tensor("x", w, spec)
        with monkeypatch.context() as m:
            m.setattr(cpu_qmm, "quant_search", lambda *a, **k: None)
            slow = quantize_tensor("x", w, spec)
        for k in fast:
            assert fast[k].dtype == slow[k].dtype and fast[k].shape == slow[k].shape
            assert mx.array_equal(fast[k].view(mx.uint8), slow[k].view(mx.uint8)).item()


@needs_kernel
def test_kernel_rejects_what_it_cannot_do():
    ext = pytest.importorskip("gemma_mlx._cpu_qmm")
    g = np.zeros((8, 48), np.float32)
    out = np.empty((8, 6), np.uint32), np.empty(8, np.float32), np.empty(8, np.float32)
    with pytest.raises(ValueError, match="unsupported"):
        ext.quant_search(g, 4, 8, *out)  # groups of 48
    with pytest.raises(ValueError, match="shapes"):
        ext.quant_search(np.zeros((8, 64), np.float32), 4, 8, *out)
