"""The CPU decode-attention kernel against a float64 softmax and MLX's attention."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.kernels import cpu_attention, cpu_qmm

ext = pytest.importorskip("gemma_mlx._cpu_qmm", reason="the CPU kernel is not built "
                          "(scripts/build_cpu_kernels.sh)")
if not ext.avx2():
    pytest.skip("this CPU has no AVX2", allow_module_level=True)


def _reference(q, k, v, scale: float, mask=None) -> np.ndarray:
    q, k, v = (np.array(a, dtype=np.float64) for a in (q, k, v))
    rep = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    s = scale * q @ k.transpose(0, 1, 3, 2)
    if mask is not None:
        s = np.where(np.broadcast_to(np.array(mask), s.shape), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True) @ v


def _check(got: mx.array, ref: np.ndarray) -> None:
    # a convex combination of values: float32 rounding of O(1) terms, summed over S keys
    assert np.abs(np.array(got, dtype=np.float64) - ref).max() < 2e-6


@pytest.mark.parametrize("shape", [(1, 4, 1, 1, 300, 256), (1, 8, 4, 3, 77, 128),
                                   (8, 4, 1, 1, 50, 256), (2, 16, 8, 16, 33, 72),
                                   (1, 4, 1, 1, 6000, 256)])  # the last splits over threads
def test_against_a_float64_softmax_and_mlx(shape):
    b, hq, hkv, lq, s, d = shape
    mx.random.seed(s)
    q, k, v = (mx.random.normal(sh) for sh in ((b, hq, lq, d), (b, hkv, s, d), (b, hkv, s, d)))
    got = cpu_attention.sdpa(q, k, v, scale=d**-0.5)
    _check(got, _reference(q, k, v, d**-0.5))
    theirs = mx.fast.scaled_dot_product_attention(q, k, v, scale=d**-0.5)
    assert mx.allclose(got, theirs, atol=1e-5).item()


def test_masks_as_the_ring_and_the_batch_pass_them():
    q, k, v = (mx.random.normal(sh) for sh in ((3, 4, 2, 64), (3, 2, 40, 64), (3, 2, 40, 64)))
    ring = mx.random.uniform(shape=(2, 40)) > 0.4  # [L, S]: every row and head
    _check(cpu_attention.sdpa(q, k, v, scale=0.1, mask=ring), _reference(q, k, v, 0.1, ring))
    rows = mx.random.uniform(shape=(3, 1, 1, 40)) > 0.4  # [B, 1, 1, S]: per batch row
    _check(cpu_attention.sdpa(q, k, v, scale=0.1, mask=rows), _reference(q, k, v, 0.1, rows))


def test_strided_views_of_a_cache_are_read_in_place_or_copied():
    buf = mx.random.normal((2, 3, 100, 32))
    k, v = buf[:, :, 10:60], mx.random.normal((2, 3, 32, 50)).transpose(0, 1, 3, 2)
    q = mx.random.normal((2, 6, 1, 32))
    _check(cpu_attention.sdpa(q, k, v, scale=0.2), _reference(q, k, v, 0.2))


def test_what_the_kernel_does_not_take_goes_to_mlx(monkeypatch):
    q, k, v = (mx.random.normal(sh) for sh in ((1, 2, 20, 16), (1, 2, 20, 16), (1, 2, 20, 16)))
    _check(cpu_attention.sdpa(q, k, v, scale=0.3), _reference(q, k, v, 0.3))  # 20 queries
    qh, kh, vh = (a.astype(mx.float16) for a in (q[:, :, :1], k, v))
    out = cpu_attention.sdpa(qh, kh, vh, scale=0.3)
    assert out.dtype == mx.float16
    monkeypatch.setenv("GEMMA_MLX_CPU_KERNEL", "off")
    monkeypatch.setattr(cpu_qmm, "_state", {})
    _check(cpu_attention.sdpa(q[:, :, :1], k, v, scale=0.3), _reference(q[:, :, :1], k, v, 0.3))
    with pytest.raises(ValueError, match="Hkv"):
        ext.decode_attention(q, k[:, :1].astype(mx.float16), v, 0.3)


def test_a_transposed_query_as_the_projections_give_it():
    q = mx.random.normal((2, 3, 8, 32)).transpose(0, 2, 1, 3)  # [B, L, H, D] -> [B, H, L, D]
    k, v = mx.random.normal((2, 4, 30, 32)), mx.random.normal((2, 4, 30, 32))
    _check(cpu_attention.sdpa(q, k, v, scale=0.2), _reference(q, k, v, 0.2))
