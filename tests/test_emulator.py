"""The Metal emulator itself: MLX's exact wrapping, numerics, and the bugs it must catch."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from .msl_emulator import generated_source, metal_kernel, mlx_generated_source

REDUCE = """
uint tid = thread_index_in_threadgroup;
uint lane = thread_index_in_simdgroup;
uint sg = simdgroup_index_in_threadgroup;
threadgroup float partial[32];
float x = static_cast<float>(inp[thread_position_in_grid.x]);
float s = simd_sum(x);
if (lane == 0) { partial[sg] = s; }
BARRIER
if (sg == 0) {
  float p = lane < simdgroups_per_threadgroup ? partial[lane] : 0.0f;
  p = simd_sum(p);
  if (lane == 0) { out[threadgroup_position_in_grid.x] = static_cast<T>(p); }
}
"""


BARRIER = "threadgroup_barrier(mem_flags::mem_threadgroup);"


def _reduce(n: int, dtype: mx.Dtype, barrier: str = BARRIER):
    x = mx.array(np.random.default_rng(n).normal(size=n).astype(np.float32)).astype(dtype)
    k = metal_kernel("reduce", ["inp"], ["out"], REDUCE.replace("BARRIER", barrier))
    groups = -(-n // 256)
    (out,) = k(inputs=[x], output_shapes=[(groups,)], output_dtypes=[dtype], grid=(n, 1, 1),
               threadgroup=(256, 1, 1), template=[("T", dtype)])
    xs = np.array(x.astype(mx.float32), np.float64)
    ref = [xs[i * 256 : (i + 1) * 256].sum() for i in range(groups)]
    return np.array(out.astype(mx.float32)), np.array(ref)


@pytest.mark.parametrize("dtype, tol", [(mx.float32, 1e-4), (mx.float16, 0.05), (mx.bfloat16, 0.2)])
def test_emulated_reduction_with_partial_threadgroup(dtype, tol):
    """1000 threads = 3 x 256 + 232: the edge group is smaller, as MLX dispatches it."""
    got, ref = _reduce(1000, dtype)
    assert got.shape == (4,)
    assert np.abs(got - ref).max() < tol


def test_emulator_poisons_threadgroup_memory_so_a_missing_barrier_shows():
    got, _ = _reduce(1024, mx.float32, barrier="")
    assert np.isnan(got).all()
    exact, ref = _reduce(1024, mx.float32)
    assert np.abs(exact - ref).max() < 1e-4


def test_emulator_detects_a_divergent_barrier():
    src = """
    if (thread_index_in_threadgroup < 16) { threadgroup_barrier(mem_flags::mem_threadgroup); }
    out[thread_position_in_grid.x] = inp[thread_position_in_grid.x];
    """
    k = metal_kernel("diverge", ["inp"], ["out"], src)
    with pytest.raises(RuntimeError, match="non-uniform threadgroup_barrier"):
        k(inputs=[mx.zeros(64)], output_shapes=[(64,)], output_dtypes=[mx.float32],
          grid=(64, 1, 1), threadgroup=(64, 1, 1))


def test_emulator_reports_a_deadlock_instead_of_hanging():
    """Half a simdgroup at a simd op, the other half at a barrier: no schedule completes."""
    src = """
    float v = inp[thread_position_in_grid.x];
    if (thread_index_in_simdgroup < 16) { v = simd_sum(v); }
    else { threadgroup_barrier(mem_flags::mem_threadgroup); }
    out[thread_position_in_grid.x] = v;
    """
    k = metal_kernel("deadlock", ["inp"], ["out"], src)
    with pytest.raises(RuntimeError, match="deadlock"):
        k(inputs=[mx.zeros(32)], output_shapes=[(32,)], output_dtypes=[mx.float32],
          grid=(32, 1, 1), threadgroup=(32, 1, 1))


def test_emulator_surfaces_compile_errors():
    """`inp_shape` is generated only when the source names it; `q_shape` here is undefined."""
    k = metal_kernel("bad", ["inp"], ["out"], "out[0] = q_shape[0];")
    with pytest.raises(RuntimeError, match="q_shape"):
        k(inputs=[mx.zeros(8)], output_shapes=[(1,)], output_dtypes=[mx.float32],
          grid=(1, 1, 1), threadgroup=(1, 1, 1))


def test_emulated_simd_shuffles_and_prefix_sums():
    src = """
    uint i = thread_position_in_grid.x;
    uint lane = thread_index_in_simdgroup;
    float v = inp[i];
    out[i * 6 + 0] = simd_shuffle_down(v, 1u);
    out[i * 6 + 1] = simd_shuffle_xor(v, 5u);
    out[i * 6 + 2] = simd_broadcast(v, 3u);
    out[i * 6 + 3] = simd_prefix_exclusive_sum(v);
    out[i * 6 + 4] = simd_max(v);
    out[i * 6 + 5] = simd_shuffle_up(v, 2u);
    """
    x = np.arange(64, dtype=np.float32) * 0.5
    (out,) = metal_kernel("shuffles", ["inp"], ["out"], src)(
        inputs=[mx.array(x)], output_shapes=[(64 * 6,)], output_dtypes=[mx.float32],
        grid=(64, 1, 1), threadgroup=(64, 1, 1))
    out = np.array(out).reshape(64, 6)
    lane, base = np.arange(64) % 32, np.arange(64) // 32 * 32
    down = np.where(lane + 1 < 32, x[np.minimum(np.arange(64) + 1, 63)], x)
    up = np.where(lane >= 2, x[np.maximum(np.arange(64) - 2, 0)], x)
    cums = np.array([x[b : b + lane_i].sum() for b, lane_i in zip(base, lane, strict=True)])
    np.testing.assert_array_equal(out[:, 0], down)
    np.testing.assert_array_equal(out[:, 1], x[base + (lane ^ 5)])
    np.testing.assert_array_equal(out[:, 2], x[base + 3])
    np.testing.assert_allclose(out[:, 3], cums)
    np.testing.assert_array_equal(out[:, 4], x[base + 31])
    np.testing.assert_array_equal(out[:, 5], up)


def test_emulator_poisons_outputs_a_kernel_forgets_to_write():
    """Metal leaves outputs uninitialised unless init_value is given."""
    src = "if (thread_position_in_grid.x % 2 == 0) { out[thread_position_in_grid.x] = 1.0f; }"
    k = metal_kernel("partial", ["inp"], ["out"], src)
    call = dict(inputs=[mx.zeros(8)], output_shapes=[(8,)], output_dtypes=[mx.float32],
                grid=(8, 1, 1), threadgroup=(8, 1, 1))
    assert np.isnan(np.array(k(**call)[0])[1::2]).all()
    np.testing.assert_array_equal(np.array(k(**call, init_value=0)[0])[1::2], 0)


WRAP_CASES = [
    # name, inputs, source, template, header, atomic
    ("plain", [mx.zeros(16)], "out[0] = inp[0];", None, "", False),
    ("scalars_and_small", [mx.zeros((4, 4)), 3, 0.5, mx.zeros(3, mx.int32)],
     "out[0] = inp[inp_shape[0] + inp_strides[1] + inp_ndim] + a + b + c[0];"
     " uint3 t = threadgroup_position_in_grid; uint l = thread_index_in_simdgroup;",
     [("T", mx.float16), ("N", 4), ("B", True)], "#include <metal_simdgroup>\n", False),
    ("atomics", [mx.zeros(32, mx.bfloat16)],
     "atomic_fetch_add_explicit(&out[0], 1, memory_order_relaxed);"
     " uint n = threads_per_threadgroup.x + simdgroups_per_threadgroup;",
     [("T", mx.bfloat16)], "", True),
]


@pytest.mark.parametrize("case", WRAP_CASES, ids=[c[0] for c in WRAP_CASES])
def test_emulator_wraps_bodies_exactly_as_mlx(case):
    name, inputs, source, template, header, atomic = case
    names = ["inp", "a", "b", "c"][: len(inputs)]
    dtypes = [mx.int32] if atomic else [mx.float32, mx.float16][: 1 + (template is not None)]
    ours = generated_source(name, names, [f"out{i}" if i else "out" for i in range(len(dtypes))],
                            source, header, inputs, dtypes, template, atomic)
    theirs = mlx_generated_source(
        name, names, [f"out{i}" if i else "out" for i in range(len(dtypes))], source, header,
        inputs=inputs, output_shapes=[(4,)] * len(dtypes), output_dtypes=dtypes, grid=(32, 1, 1),
        threadgroup=(32, 1, 1), template=template, atomic_outputs=atomic)
    assert ours == theirs
