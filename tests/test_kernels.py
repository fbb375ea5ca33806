"""Our Metal kernels, run from their exact source in the CPU emulator, against references."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.formats.loading import load
from gemma_mlx.kernels import loader
from gemma_mlx.kernels import local_attention as la
from gemma_mlx.kernels.local_attention_metal import local_attention_metal
from gemma_mlx.kernels.ring_decode import ring_decode_reference
from gemma_mlx.kernels.ring_decode_metal import ring_decode_metal

from .attention_reference import dense_reference, ring_reference
from .conftest import FIXTURES
from .emulator import generated_source, metal_kernel, mlx_generated_source

# Output rounding of each dtype (accumulation is float32 in the kernels and the references).
TOL = {mx.float32: 2e-5, mx.float16: 4e-3, mx.bfloat16: 3e-2}


def _qkv(rng, hq, hkv, lq, lk, d, dtype):
    q = mx.array(rng.normal(size=(2, hq, lq, d)).astype(np.float32)).astype(dtype)
    k = mx.array(rng.normal(size=(2, hkv, lk, d)).astype(np.float32)).astype(dtype)
    v = mx.array(rng.normal(size=(2, hkv, lk, d)).astype(np.float32)).astype(dtype)
    return q, k, v


def _err(got: mx.array, ref) -> float:
    return float(np.abs(np.array(got.astype(mx.float32)) - np.asarray(ref)).max())


@pytest.mark.parametrize("window", [16, 0])
@pytest.mark.parametrize("lq", [15, 16, 17, 40])  # W-1, W, W+1; 15, 17, 40 leave partial groups
@pytest.mark.parametrize("before", [0, 5, 16, 40])  # cached keys before the first query
@pytest.mark.parametrize("heads", [(4, 4), (4, 2), (4, 1)])
def test_prefill_kernel_window_edges(window, lq, before, heads):
    rng = np.random.default_rng(lq * 1000 + before)
    q, k, v = _qkv(rng, *heads, lq, before + lq, 64, mx.float32)
    args = dict(scale=0.125, q_start=200 + before, k_start=200, window=window)
    got = local_attention_metal(q, k, v, factory=metal_kernel, **args)
    ref = dense_reference(q, k, v, 0.125, 200 + before, 200, window)
    assert _err(got, ref) < TOL[mx.float32]


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
@pytest.mark.parametrize("d", [128, 256])
def test_prefill_kernel_dtypes_and_head_dims(dtype, d):
    """GQA, a partial last threadgroup (37 = 4 x 8 + 5 rows), keys before the queries."""
    rng = np.random.default_rng(d)
    q, k, v = _qkv(rng, 4, 2, 37, 50, d, dtype)
    args = dict(scale=d**-0.5, q_start=13, k_start=0, window=12)
    got = local_attention_metal(q, k, v, factory=metal_kernel, **args)
    assert got.dtype == dtype
    assert _err(got, dense_reference(q, k, v, d**-0.5, 13, 0, 12)) < TOL[dtype]
    # and the MLX-op path gives the same numbers
    assert _err(got, np.array(la.dense_attention(q, k, v, **args).astype(mx.float32))) < TOL[dtype]


@pytest.mark.parametrize("slack", [0, 3])
@pytest.mark.parametrize("offset", [1, 7, 16, 17, 19, 20, 35, 61])  # before and after wraps
@pytest.mark.parametrize("lq", [1, 3])
@pytest.mark.parametrize("heads", [(4, 4), (4, 2), (4, 1)])
def test_ring_decode_kernel_over_wraps(slack, offset, lq, heads):
    window = 16
    size = window + slack
    if lq > offset or lq - 1 > slack:  # the ring no longer holds those queries' windows
        pytest.skip("not a state the cache produces")
    rng = np.random.default_rng(offset * 10 + lq)
    q, k, v = _qkv(rng, *heads, lq, min(offset, size), 64, mx.float32)
    args = dict(scale=0.125, offset=offset, window=window, size=size)
    got = ring_decode_metal(q, k, v, factory=metal_kernel, simdgroups=4, **args)
    ref = ring_reference(q, k, v, 0.125, offset, window, size)
    assert _err(got, ref) < TOL[mx.float32]
    assert _err(got, np.array(ring_decode_reference(q, k, v, **args))) < TOL[mx.float32]


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
@pytest.mark.parametrize("d", [128, 256])
def test_ring_decode_kernel_dtypes_and_head_dims(dtype, d):
    rng = np.random.default_rng(d)
    q, k, v = _qkv(rng, 8, 2, 1, 24, d, dtype)  # a wrapped ring of 24 = window 20 + slack 4
    args = dict(scale=d**-0.5, offset=57, window=20, size=24)
    got = ring_decode_metal(q, k, v, factory=metal_kernel, **args)
    assert got.dtype == dtype
    assert _err(got, ring_reference(q, k, v, d**-0.5, 57, 20, 24)) < TOL[dtype]


def test_kernel_wrapping_matches_mlx_generated_source():
    """The emulator compiles exactly the text MLX would hand to the Metal compiler."""
    for name, names in [
        ("local_attention_prefill", ["q", "k", "v", "q_start", "k_start", "window", "scale"]),
        ("ring_decode_attention", ["q", "k", "v", "offset", "window", "ring_size", "scale"]),
    ]:
        q = mx.zeros((1, 4, 9, 128), mx.bfloat16)
        k = mx.zeros((1, 2, 9, 128), mx.bfloat16)
        inputs = [q, k, k, 3, 0, 8, 0.5]
        template = [("T", mx.bfloat16), ("D", 128), ("BQ" if "prefill" in name else "NSG", 8)]
        if "prefill" in name:
            template.append(("BK", 16))
        spec = dict(name=name, input_names=names, output_names=["out"],
                    source=loader.kernel_source(name), header="")
        ours = generated_source(**spec, inputs=inputs, output_dtypes=[mx.bfloat16],
                                template=template)
        theirs = mlx_generated_source(**spec, inputs=inputs, output_shapes=[q.shape],
                                      output_dtypes=[mx.bfloat16], template=template,
                                      grid=(32, 8, 4), threadgroup=(32, 8, 1))
        assert ours == theirs


@pytest.fixture
def emulated_metal(monkeypatch):
    """Make the dispatchers believe Metal is present and build kernels in the emulator."""
    monkeypatch.setattr(mx.metal, "is_available", lambda: True)
    monkeypatch.setattr(mx.fast, "metal_kernel", metal_kernel)
    monkeypatch.setattr(la, "DENSE_MAX_QUERIES", 0)


def test_model_through_kernel_dispatch_matches_transformers(emulated_metal):
    """Chunked prefill (our prefill kernel) then decode (our ring kernel), 5 window wraps."""
    model, _ = load(FIXTURES / "text" / "gqa")
    r = np.load(FIXTURES / "text" / "gqa" / "reference.npz")
    ids, cache, outs = r["input_ids"], model.make_cache(slack=2), []
    outs.append(np.array(model(mx.array(ids[:, :20]), cache=cache)))
    for t in range(20, ids.shape[1]):
        outs.append(np.array(model(mx.array(ids[:, t : t + 1]), cache=cache)))
    assert np.abs(np.concatenate(outs, axis=1) - r["logits"]).max() <= 1e-4


def test_kernel_forward_trains_through_the_reference_gradient(emulated_metal):
    """Custom kernels have no vjp: the dispatcher differentiates through the banded path."""
    rng = np.random.default_rng(0)
    q, k, v = _qkv(rng, 2, 1, 40, 40, 32, mx.float32)
    args = dict(scale=0.3, q_start=0, k_start=0, window=8)

    def loss(fn):
        return lambda q, k, v: (fn(q, k, v, **args) ** 2).sum()

    got = mx.grad(loss(la.local_attention), argnums=(0, 1, 2))(q, k, v)
    ref = mx.grad(loss(la.dense_attention), argnums=(0, 1, 2))(q, k, v)
    for a, b in zip(got, ref, strict=True):
        assert _err(a, np.array(b)) < 1e-4
