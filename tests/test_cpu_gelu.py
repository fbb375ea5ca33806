"""The extension's GeGLU activation against float64, MLX's gelu_approx and its gradient."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from gemma_mlx.kernels import cpu_qmm

ext = pytest.importorskip("gemma_mlx._cpu_qmm", reason="the CPU kernel is not built "
                          "(scripts/build_cpu_kernels.sh)")


def _exact(g: mx.array, u: mx.array) -> np.ndarray:
    g64, u64 = np.array(g, np.float64), np.array(u, np.float64)
    return 0.5 * g64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (g64 + 0.044715 * g64**3))) * u64


@pytest.mark.parametrize("shape", [(1, 2048), (8, 1, 2048), (3, 13), (5,)])
def test_values_as_close_to_float64_as_mlx(shape):
    mx.random.seed(0)
    g = mx.random.normal(shape) * 4
    g = mx.concatenate([mx.array([-40.0, 40.0, 0.0, 1e-4, -0.6, 0.63]), g.reshape(-1)])[
        : g.size].reshape(shape)  # both tanh branches, the clamps, zero
    u = mx.random.normal(shape)
    got, theirs, exact = np.array(ext.gelu_mul(g, u)), np.array(nn.gelu_approx(g) * u), _exact(g, u)
    scale = np.abs(exact).max()
    assert np.abs(got - exact).max() <= np.abs(theirs - exact).max() + 2e-7 * scale
    assert np.abs(got - theirs).max() <= 4e-7 * scale


def test_strided_inputs():
    g, u = mx.random.normal((2048, 8)).T * 3, mx.random.normal((8, 2048))
    assert mx.allclose(ext.gelu_mul(g, u), nn.gelu_approx(g) * u, atol=1e-6).item()


def test_gradient_matches_mlx():
    mx.random.seed(1)
    g, u, c = (mx.random.normal((4, 67)) * 3 for _ in range(3))
    _, ours = mx.vjp(lambda a, b: ext.gelu_mul(a, b), [g, u], [c])
    _, theirs = mx.vjp(lambda a, b: nn.gelu_approx(a) * b, [g, u], [c])
    for a, b in zip(ours, theirs, strict=True):
        assert mx.allclose(a, b, atol=1e-4, rtol=1e-5).item()  # gelu' underflows at -5


def test_routing_and_the_fallback(monkeypatch):
    g, u = mx.random.normal((2, 64)), mx.random.normal((2, 64))
    fast = cpu_qmm.gelu_mul(g, u)
    assert mx.allclose(cpu_qmm.gelu_mul(g.astype(mx.bfloat16), u.astype(mx.bfloat16)),
                       fast, atol=5e-2).item()  # other dtypes take MLX's path
    monkeypatch.setattr(cpu_qmm, "_state", {"module": None, "reason": "test"})
    assert mx.allclose(cpu_qmm.gelu_mul(g, u), fast, atol=1e-6).item()
