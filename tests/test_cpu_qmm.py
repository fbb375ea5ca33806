"""The CPU quantized-matmul extension against a float64 reference and MLX's op."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from gemma_mlx.kernels import cpu_qmm

ext = pytest.importorskip("gemma_mlx._cpu_qmm", reason="the CPU kernel is not built "
                          "(scripts/build_cpu_kernels.sh)")
if not ext.avx2():
    pytest.skip("this CPU has no AVX2", allow_module_level=True)


@pytest.fixture(params=["avx512", "avx2"], autouse=True)
def isa(request):
    """Every test on both float kernels where the CPU has AVX-512 (once elsewhere)."""
    if request.param == "avx512" and not ext.avx512():
        pytest.skip("this CPU has no AVX-512")
    ext.set_avx512(request.param == "avx512")
    yield request.param
    ext.set_avx512(True)


def _case(m: int, n: int, k: int, bits: int, group: int, dtype=mx.float32, seed: int = 0):
    mx.random.seed(seed)
    x = mx.random.normal((m, k))
    w, s, b = mx.quantize(mx.random.normal((n, k)), group_size=group, bits=bits)
    return x, w, s.astype(dtype), b.astype(dtype)


def _reference(x, w, s, b, group: int, bits: int) -> np.ndarray:
    dense = mx.dequantize(w, s.astype(mx.float32), b.astype(mx.float32), group_size=group,
                          bits=bits)
    return np.array(x, dtype=np.float64) @ np.array(dense, dtype=np.float64).T


def _check(got: mx.array, ref: np.ndarray, k: int) -> None:
    # float32 sums of k products of O(1) terms: rounding grows like sqrt(k) * eps * |terms|
    tol = 2e-6 * np.sqrt(k) * np.abs(ref).max() + 1e-5
    assert np.abs(np.array(got, dtype=np.float64) - ref).max() < tol


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("group", [32, 64, 128])
@pytest.mark.parametrize("m", [3, 8])  # 8: the AVX-512 kernel's two-weight-row tile
def test_every_bits_and_group_size(bits, group, m):
    x, w, s, b = _case(m, 71, 384, bits, group)  # an odd row count: the pair's last row alone
    got = ext.quantized_matmul(x, w, s, b, group, bits)
    _check(got, _reference(x, w, s, b, group, bits), 384)
    ref = mx.quantized_matmul(x, w, s, b, transpose=True, group_size=group, bits=bits)
    assert mx.allclose(got, ref, atol=1e-3).item()


@pytest.mark.parametrize("m", [1, 2, 7, 8, 9, 16, 17, 33])
def test_row_counts_and_a_split_that_is_not_even(m):
    x, w, s, b = _case(m, 1237, 640, 4, 64, seed=m)  # 1237 rows over the thread pool
    _check(ext.quantized_matmul(x, w, s, b, 64, 4), _reference(x, w, s, b, 64, 4), 640)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_16_bit_scales(dtype):
    x, w, s, b = _case(2, 64, 256, 4, 64, dtype)
    _check(ext.quantized_matmul(x, w, s, b, 64, 4), _reference(x, w, s, b, 64, 4), 256)


def test_non_contiguous_inputs_and_lead_dimensions():
    x, w, s, b = _case(4, 96, 256, 8, 32)
    xt = mx.random.normal((256, 4)).T  # a transposed view
    _check(ext.quantized_matmul(xt, w, s, b, 32, 8), _reference(xt, w, s, b, 32, 8), 256)
    x3 = mx.random.normal((2, 3, 256))
    got = cpu_qmm.quantized_matmul(x3, w, s, b, 32, 8)
    ref = _reference(x3.reshape(6, 256), w, s, b, 32, 8).reshape(2, 3, 96)
    assert got.shape == (2, 3, 96)
    _check(got, ref, 256)


def test_gradient_through_the_input_for_qlora():
    x, w, s, b = _case(3, 40, 128, 4, 64)

    def f(fn, x):
        return (fn(x) ** 2).sum()

    ours = mx.grad(lambda x: f(lambda v: ext.quantized_matmul(v, w, s, b, 64, 4), x))(x)
    theirs = mx.grad(lambda x: f(lambda v: mx.quantized_matmul(
        v, w, s, b, transpose=True, group_size=64, bits=4), x))(x)
    assert mx.allclose(ours, theirs, atol=1e-3, rtol=1e-4).item()


def test_inside_compile_and_bad_arguments():
    x, w, s, b = _case(2, 32, 128, 4, 32)
    fn = mx.compile(lambda x: ext.quantized_matmul(x, w, s, b, 32, 4) * 2)
    _check(fn(x), 2 * _reference(x, w, s, b, 32, 4), 128)
    with pytest.raises(ValueError, match="float32"):
        ext.quantized_matmul(x.astype(mx.float16), w, s, b, 32, 4)
    with pytest.raises(ValueError, match="K"):
        ext.quantized_matmul(mx.zeros((2, 64)), w, s, b, 32, 4)


def test_the_fallback_when_turned_off(monkeypatch):
    x, w, s, b = _case(2, 32, 128, 4, 64)
    monkeypatch.setenv("GEMMA_MLX_CPU_KERNEL", "off")
    monkeypatch.setattr(cpu_qmm, "_state", {})
    assert not cpu_qmm.available() and "off" in cpu_qmm.status()
    got = cpu_qmm.quantized_matmul(x, w, s, b, 64, 4)
    _check(got, _reference(x, w, s, b, 64, 4), 128)


def _int8_x(x: mx.array) -> np.ndarray:
    """x rounded as the int8 kernels do, per block of 32 in float32: d = amax / 127, q =
    round-half-even(x * (1 / d)); returned as q * d in float64."""
    xb = np.array(x, dtype=np.float32).reshape(x.shape[0], -1, 32)
    d = np.abs(xb).max(-1, keepdims=True) / np.float32(127)
    inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d > 0)
    return (np.rint(xb * inv).astype(np.float64) * d).reshape(x.shape)


def _int8_reference(x, w, s, b, group: int, bits: int) -> np.ndarray:
    """float64 of what the int8 kernel computes: scales times the levels' dot products with
    the rounded x, plus the biases times the exact sums of x."""
    s32, b32 = s.astype(mx.float32), b.astype(mx.float32)
    levels = np.array(mx.dequantize(w, mx.ones_like(s32), mx.zeros_like(b32), group_size=group,
                                    bits=bits), dtype=np.float64)
    scales, biases = (np.repeat(np.array(a, dtype=np.float64), group, axis=1) for a in (s32, b32))
    return _int8_x(x) @ (scales * levels).T + np.array(x, dtype=np.float64) @ biases.T


@pytest.fixture(params=["vnni", "maddubs"])
def int8_bits(request):
    """The int8 tests on both dot products where the CPU has VNNI: the bit widths each takes
    (8-bit levels times int8 need VNNI's; maddubs's int16 sums would saturate)."""
    if request.param == "vnni" and not ext.vnni():
        pytest.skip("this CPU has no AVX-VNNI")
    ext.set_vnni(request.param == "vnni")
    yield [4, 8] if request.param == "vnni" else [4]
    ext.set_vnni(True)


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("group", [32, 64, 128])
def test_int8_activations_every_group_size(bits, group, int8_bits):
    if bits not in int8_bits:
        pytest.skip("8-bit int8 needs VNNI")
    x, w, s, b = _case(3, 70, 384, bits, group, mx.bfloat16)
    got = ext.quantized_matmul(x, w, s, b, group, bits, True)
    _check(got, _int8_reference(x, w, s, b, group, bits), 384)
    # Against the float product: within the proven bound sum_k |w_k| d_k / 2 (each x_k moves
    # by at most half its block's step d_k), plus float32 rounding.
    ref = _reference(x, w, s, b, group, bits)
    dense = np.abs(np.array(mx.dequantize(w, s.astype(mx.float32), b.astype(mx.float32),
                                          group_size=group, bits=bits), dtype=np.float64))
    steps = np.repeat(np.abs(np.array(x, np.float32)).reshape(3, -1, 32).max(-1) / 127, 32, 1)
    bound = steps @ dense.T / 2 + 2e-6 * np.sqrt(384) * np.abs(ref).max() + 1e-5
    err = np.abs(np.array(got, dtype=np.float64) - ref)
    assert (err <= bound).all() and err.max() > 0  # rounded: not the float path


@pytest.mark.parametrize("m", [1, 2, 8, 9, 17, 33])
def test_int8_activations_row_counts(m, int8_bits):
    for bits in int8_bits:
        x, w, s, b = _case(m, 1237, 640, bits, 64, seed=m)
        _check(ext.quantized_matmul(x, w, s, b, 64, bits, True),
               _int8_reference(x, w, s, b, 64, bits), 640)


def test_int8_activations_fall_back_to_float_where_unsupported(monkeypatch):
    x, w, s, b = _case(2, 40, 96, 4, 32)  # K = 96: not whole chunks of 64
    _check(ext.quantized_matmul(x, w, s, b, 32, 4, True), _reference(x, w, s, b, 32, 4), 96)
    x, w, s, b = _case(2, 40, 256, 5, 64)  # 5 bits: the float kernel
    _check(ext.quantized_matmul(x, w, s, b, 64, 5, True), _reference(x, w, s, b, 64, 5), 256)
    monkeypatch.setenv("GEMMA_MLX_CPU_INT8", "1")
    monkeypatch.setattr(cpu_qmm, "_state", {})
    x, w, s, b = _case(2, 40, 256, 4, 64)
    got = cpu_qmm.quantized_matmul(x, w, s, b, 64, 4)
    assert cpu_qmm.int8_activations() and "int8" in cpu_qmm.status()
    _check(got, _int8_reference(x, w, s, b, 64, 4), 256)


def test_the_cli_flag_turns_int8_activations_on(monkeypatch):
    from gemma_mlx.cli import main

    monkeypatch.setattr(cpu_qmm, "_state", {})
    monkeypatch.delenv("GEMMA_MLX_CPU_INT8", raising=False)
    assert not cpu_qmm.int8_activations()
    assert main(["generate", "--model", "/no/such/dir", "--int8-activations"]) == 1
    assert cpu_qmm.int8_activations()
