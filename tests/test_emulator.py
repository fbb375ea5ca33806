"""The Metal emulator itself: MLX-identical wrapping, numerics, barriers, simd ops, poisoning."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from .emulator import EmulatorError, generated_source, metal_kernel, mlx_generated_source

F32, F16, BF16 = mx.float32, mx.float16, mx.bfloat16


def _np(x: mx.array) -> np.ndarray:
    return np.array(x.astype(F32)) if x.dtype in (F16, BF16) else np.array(x)


# fmt: off
def _run(source, inputs, out_shape, out_dtype=F32, grid=(64, 1, 1), tg=(64, 1, 1),
         template=None, names=None, **kw):
    """One-output kernel named `t`; inputs named in0, in1, ... unless `names`."""
    kernel = metal_kernel("t", names or [f"in{i}" for i in range(len(inputs))], ["out"], source)
    return kernel(inputs=inputs, output_shapes=[out_shape], output_dtypes=[out_dtype],
                  grid=grid, threadgroup=tg, template=template, **kw)[0]
# fmt: on


# --- 1. the wrapping is byte-identical to MLX's own generated source -------------------


def _spec(inputs, outputs, source, arrays, dtypes, header="", **kw):
    return dict(input_names=inputs, output_names=outputs, source=source, header=header,
                inputs=arrays, output_dtypes=dtypes, **kw)  # fmt: skip


SPECS = {
    "shapes_scalars_template_header": _spec(
        ["x", "s", "n", "flag"],
        ["out", "out2"],
        "uint i = thread_position_in_grid.x;\nif (i < threads_per_grid.x && flag) "
        "out[i] = x[i % x_shape[0] + x_strides[0] * x_ndim] * s + n;\nout2[0] = 0;",
        [mx.zeros((2, 3, 4)), 2.0, 5, True],
        [F16, F32],
        header="#include <metal_simdgroup>\n// a header helper\n",
        template=[("T", F16), ("N", 4), ("B", True)],
    ),  # fmt: skip
    "zero_d_small_bf16_atomic": _spec(
        ["a", "small", "eight", "mask"],
        ["hist", "total"],
        "uint l = thread_index_in_simdgroup + simdgroup_index_in_threadgroup;\n"
        "atomic_fetch_add_explicit(&hist[l], small[0], memory_order_relaxed);",
        [
            mx.array(3.0),
            mx.zeros((5,), mx.int32),
            mx.zeros((8,), mx.uint32),
            mx.zeros((3,), mx.bool_),
        ],
        [mx.int32, F32],
        template=[("T", BF16), ("N", -2), ("B", False)],
        atomic_outputs=True,
    ),  # fmt: skip
    "no_template_no_attributes": _spec(
        ["x"], ["out"], "out[0] = x[0];", [mx.zeros((16,), mx.int32)], [mx.int32]
    ),
    # MLX's separator logic counts shape buffers: here it closes the list after `out`.
    "shape_quirk_two_outputs": _spec(
        ["x"], ["out", "out2"], "out[0] = x_shape[0];", [mx.zeros((16,))], [F32, F32]
    ),
    # Substring detection: `max_shape` adds x_shape, the dispatch_ name adds both attributes.
    "substring_pitfalls": _spec(
        ["x"],
        ["out"],
        "// max_shape\nout[0] = dispatch_threads_per_threadgroup.x;",
        [mx.zeros((16,))],
        [F32],
        template=[("T", mx.uint32)],
    ),  # fmt: skip
}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_emulator_generated_source_is_mlx_identical(spec):
    spec = dict(spec, name="k")
    ours = generated_source(**spec)
    theirs = mlx_generated_source(
        **spec,
        output_shapes=[(4,)] * len(spec["output_names"]),
        grid=(32, 1, 1),
        threadgroup=(32, 1, 1),
    )
    assert ours == theirs


# --- 2. a reduction with threadgroup memory, barriers and two simd_sum levels ----------

REDUCE = """
const uint lane = thread_index_in_simdgroup;
const uint sg = simdgroup_index_in_threadgroup;
threadgroup float partial[32];
const uint i = thread_position_in_grid.x;
float s = simd_sum(static_cast<float>(x[i]));
if (lane == 0) {
  partial[sg] = s;
}
threadgroup_barrier(mem_flags::mem_threadgroup);
if (sg == 0) {
  float t = simd_sum(lane < simdgroups_per_threadgroup ? partial[lane] : 0.0f);
  if (lane == 0) {
    out[threadgroup_position_in_grid.x] = static_cast<T>(t);
  }
}
"""
REDUCE_TOL = {F32: 1e-5, F16: 1e-3, BF16: 8e-3}  # relative: the output's rounding


@pytest.mark.parametrize("dtype", [F32, F16, BF16])
def test_emulator_reduction_with_partial_threadgroup(dtype):
    x = mx.array(np.random.default_rng(0).normal(size=1000).astype(np.float32)).astype(dtype)
    got = _run(
        REDUCE,
        [x],
        (4,),
        dtype,
        grid=(1000, 1, 1),
        tg=(256, 1, 1),
        template=[("T", dtype)],
        names=["x"],
    )  # 1000 = 3 x 256 + 232
    assert got.dtype == dtype
    ref = _np(x).astype(np.float64).reshape(-1)
    ref = np.array([ref[g * 256 : (g + 1) * 256].sum() for g in range(4)])
    assert np.all(np.abs(_np(got) - ref) <= REDUCE_TOL[dtype] * np.maximum(1, np.abs(ref)))


# --- 3, 4. barriers: a missing one shows as NaN, divergent ones and deadlocks raise -------

SHIFT = """
const uint t = thread_index_in_threadgroup;
threadgroup float tile[64];
tile[t] = x[t];
BARRIER
out[t] = tile[(t + 1) % 64];
"""


def test_emulator_missing_barrier_reads_poisoned_threadgroup_memory():
    x = mx.arange(64).astype(F32)
    racy = _np(_run(SHIFT.replace("BARRIER", ""), [x], (64,), names=["x"]))
    assert np.isnan(racy).sum() >= 32
    fixed = SHIFT.replace("BARRIER", "threadgroup_barrier(mem_flags::mem_threadgroup);")
    assert np.array_equal(_np(_run(fixed, [x], (64,), names=["x"])), np.roll(_np(x), -1))


@pytest.mark.parametrize(
    "source, message",
    [
        ("if (t < 16) { threadgroup_barrier(mem_flags::mem_threadgroup); }", "non-uniform"),
        (
            "if (t < 16) { threadgroup_barrier(mem_flags::mem_threadgroup); }\n"
            "else { threadgroup_barrier(mem_flags::mem_threadgroup); }",
            r"line \d+ and line \d+",
        ),
        ("if (t % 32 < 8) { simdgroup_barrier(mem_flags::mem_none); }", "simdgroup_barrier"),
        (
            "float v = 1.0f;\nif (t % 32 < 16) { v = simd_sum(v); }\n"
            "threadgroup_barrier(mem_flags::mem_threadgroup);",
            "deadlock",
        ),
        ("float v = t < 16 ? simd_sum(1.0f) : simd_max(1.0f);", "divergent"),
    ],
)
def test_emulator_reports_divergent_barriers_and_deadlocks(source, message):
    source = "const uint t = thread_index_in_threadgroup;\n" + source + "\nout[t] = 0;"
    with pytest.raises(EmulatorError, match=message) as err:
        _run(source, [mx.zeros((8,))], (64,))
    assert "non-uniform" in str(err.value) or "deadlock" in str(err.value)


# --- 5. compile and run-time faults come back as exceptions ------------------------------


def test_emulator_compile_error_carries_the_compiler_message():
    # The input is x_in, so MLX generates x_in_shape, never x_shape.
    with pytest.raises(EmulatorError, match="x_shape.*not declared"):
        _run("out[0] = x_shape[0];", [mx.zeros((16,))], (1,), names=["x_in"])


@pytest.mark.parametrize(
    "source, message",
    [
        ("out[0] = x[thread_position_in_grid.x + 1000];", "past the end of buffer 'x'"),
        ("out[0] = float(1000 / int(x[10]));", "SIGFPE"),
        ("threadgroup float big[9000];\nbig[0] = 1.0f;\nout[0] = big[0];", "32 KiB"),
        ("volatile float big[100000];\nbig[0] = x[0];\nout[0] = big[0];", "stack overflow"),
    ],
)
def test_emulator_faults_raise_instead_of_crashing(source, message):
    x = mx.zeros((1000,)).astype(mx.int32) if "int(" in source else mx.zeros((1000,))
    with pytest.raises(EmulatorError, match=message):
        _run(source, [x], (1,), grid=(1, 1, 1), tg=(1, 1, 1), names=["x"])


# --- 6. simd operations against numpy, with exited lanes ---------------------------------

SIMD_OPS = """
const uint t = thread_index_in_threadgroup;
const uint lane = thread_index_in_simdgroup;
if (t >= 52) {
  return;  // simdgroup 1 keeps lanes 0..19 active
}
const T v = x[t];
T r[NOPS] = {simd_sum(v), simd_shuffle(v, (lane * 7) % 32), simd_shuffle_down(v, 3),
             simd_shuffle_up(v, 5), simd_shuffle_xor(v, 6), simd_broadcast(v, 9),
             simd_broadcast_first(v), simd_prefix_exclusive_sum(v),
             simd_prefix_inclusive_sum(v), simd_max(v), simd_min(v),
             T(simd_any(v > T(2))), T(simd_all(v < T(4)))};
for (int j = 0; j < NOPS; j++) {
  out[t * NOPS + j] = r[j];
}
"""


def _simd_reference(v: np.ndarray, poison: float) -> np.ndarray:
    ref = np.full((64, 13), poison)
    for s, n in [(0, 32), (1, 20)]:  # active lanes per simdgroup
        a = v[s * 32 : s * 32 + n]
        for lane in range(n):

            def src(i: int, a=a, n=n) -> float:  # a source lane that exited gives poison
                return a[i] if i < n else poison

            down = src(lane + 3) if lane + 3 < 32 else a[lane]
            up = src(lane - 5) if lane >= 5 else a[lane]
            ref[s * 32 + lane] = [
                a.sum(), src((lane * 7) % 32), down, up, src(lane ^ 6), a[9], a[0],
                a[:lane].sum(), a[: lane + 1].sum(), a.max(), a.min(), (a > 2).any(),
                (a < 4).all(),
            ]  # fmt: skip
    return ref


@pytest.mark.parametrize("dtype", [F32, F16, BF16, mx.int32, mx.uint32])
def test_emulator_simd_ops_match_numpy(dtype):
    # small integers: exact in every dtype, so the comparison is exact
    v = np.random.default_rng(1).integers(0 if dtype == mx.uint32 else -3, 4, size=64)
    got = _np(
        _run(
            SIMD_OPS,
            [mx.array(v).astype(dtype)],
            (64 * 13,),
            dtype,
            template=[("T", dtype), ("NOPS", 13)],
            names=["x"],
        )
    ).reshape(64, 13)
    poison = {mx.int32: -1, mx.uint32: 2**32 - 1}.get(dtype, np.nan)
    assert np.array_equal(got, _simd_reference(v, poison), equal_nan=True)


def test_emulator_output_poisoning_catches_reliance_on_zeroed_outputs():
    source = "uint i = thread_position_in_grid.x;\nif (i % 2 == 0) { out[i] = x[i]; }"
    x = mx.ones((64,))
    assert np.isnan(_np(_run(source, [x], (64,), names=["x"]))[1::2]).all()
    for kw in [dict(poison_outputs=False), dict(init_value=0)]:
        assert np.array_equal(
            _np(_run(source, [x], (64,), names=["x"], **kw)), np.arange(64) % 2 == 0
        )


def test_emulator_atomic_outputs_histogram():
    source = (
        "uint i = thread_position_in_grid.x;\n"
        "atomic_fetch_add_explicit(&out[x[i]], 1, memory_order_relaxed);"
    )
    x = np.random.default_rng(2).integers(0, 10, size=1000)
    kernel = metal_kernel("hist", ["x"], ["out"], source, atomic_outputs=True)
    got = kernel(
        inputs=[mx.array(x)],
        output_shapes=[(10,)],
        output_dtypes=[mx.int32],
        grid=(1000, 1, 1),
        threadgroup=(128, 1, 1),
        init_value=0,
    )[0]
    assert np.array_equal(np.array(got), np.bincount(x, minlength=10))


def test_emulator_threadgroup_scalars_atomics_and_half_literals():
    source = """
    threadgroup atomic<int> count[2];
    threadgroup float scale;
    const uint t = thread_index_in_threadgroup;
    if (t == 0) {
      atomic_store_explicit(&count[1], 0, memory_order_relaxed);
      scale = float(1.5h * 2h);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    atomic_fetch_add_explicit(&count[1], 1, memory_order_relaxed);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    out[thread_position_in_grid.x] = scale * atomic_load_explicit(&count[1], memory_order_relaxed);
    """
    got = _run(source, [mx.zeros((1,))], (100,), grid=(100, 1, 1), tg=(64, 1, 1))
    assert np.array_equal(np.array(got), np.repeat([3.0 * 64, 3.0 * 36], [64, 36]))


# --- the grid, the attributes and the numerics of the types ------------------------------

IDS = """
uint i = (thread_position_in_grid.z * threads_per_grid.y + thread_position_in_grid.y)
         * threads_per_grid.x + thread_position_in_grid.x;
uint vals[8] = {threads_per_threadgroup.x, threads_per_threadgroup.y, threads_per_threadgroup.z,
                dispatch_threads_per_threadgroup.y, threadgroup_position_in_grid.y,
                thread_index_in_threadgroup, simdgroups_per_threadgroup, threadgroups_per_grid.y};
for (int j = 0; j < 8; j++) {
  out[i * 8 + j] = vals[j];
}
"""


def test_emulator_non_uniform_threadgroups_follow_mlx_dispatch():
    got = np.array(
        _run(IDS, [mx.zeros((1,))], (3 * 7 * 10 * 8,), mx.uint32, grid=(10, 7, 3), tg=(4, 4, 2))
    ).reshape(3, 7, 10, 8)
    z, y, x = np.meshgrid(np.arange(3), np.arange(7), np.arange(10), indexing="ij")
    size = [
        np.minimum(4, 10 - x // 4 * 4),
        np.minimum(4, 7 - y // 4 * 4),
        np.minimum(2, 3 - z // 2 * 2),
    ]
    lin = x % 4 + size[0] * (y % 4 + size[1] * (z % 2))
    want = [
        *size,
        np.full_like(x, 4),
        y // 4,
        lin,
        (size[0] * size[1] * size[2] + 31) // 32,
        np.full_like(x, 2),
    ]
    assert np.array_equal(got, np.stack(want, axis=-1))
    with pytest.raises(ValueError, match="1024"):
        _run(IDS, [mx.zeros((1,))], (8,), grid=(64, 64, 1), tg=(64, 32, 1))


BUILTINS = """
uint i = thread_position_in_grid.x;
float a = x[i];
threadgroup float grid2[2][64];
grid2[i % 2][i] = a;
threadgroup_barrier(mem_flags::mem_threadgroup);
float4 f4 = float4(a, 1.0f, 2.0f, 3.0f);
uint3 u = uint3(i, 2, 3);
half h = static_cast<half>(a);
bfloat16_t b = static_cast<bfloat16_t>(h);
float r[NOUT] = {
  metal::exp(a), exp2(a), log(abs(a) + 1.0f), rsqrt(abs(a) + 1.0f), tanh(a),
  precise::exp(a), fast::exp(a), fma(a, 2.0f, 1.0f), clamp(a, -0.5f, 0.5f),
  select(a, 7.0f, a > 0.0f), metal::max(a, 0.0f), min(a, 0.0f), sqrt(abs(a)),
  static_cast<float>(h), static_cast<float>(b), float(h * h), float(b * b), f4.x + f4.w,
  float(u.y * u.z), grid2[i % 2][i], float(ceildiv(int(i), 8)),
  float(metal::numeric_limits<half>::max()), Limits<T>::finite_max,
  exp(-INFINITY), float(as_type<uint>(a) == as_type<uint>(x[i]))};
for (int j = 0; j < NOUT; j++) {
  out[i * NOUT + j] = r[j];
}
"""


def test_emulator_math_and_types_builtins():
    a = np.linspace(-2, 2, 64).astype(np.float32)
    got = np.array(
        _run(BUILTINS, [mx.array(a)], (64 * 25,), template=[("T", F32), ("NOUT", 25)], names=["x"])
    ).reshape(64, 25)
    h = a.astype(np.float16).astype(np.float32)
    b = _np(mx.array(h).astype(BF16))
    i = np.arange(64)
    # fmt: off
    want = [np.exp(a), np.exp2(a), np.log(abs(a) + 1), 1 / np.sqrt(abs(a) + 1), np.tanh(a),
            np.exp(a), np.exp(a), a * 2 + 1, np.clip(a, -0.5, 0.5), np.where(a > 0, 7, a),
            np.maximum(a, 0), np.minimum(a, 0), np.sqrt(abs(a)), h, b,
            (h * h).astype(np.float16), _np(mx.array(b * b).astype(BF16)), a + 3, 6 + 0 * a,
            a, -(-i // 8), 65504 + 0 * a, np.finfo(np.float32).max + 0 * a, 0 * a, 1 + 0 * a]
    # fmt: on
    np.testing.assert_allclose(got, np.stack(want, axis=-1), rtol=2e-6, atol=1e-7)


def test_emulator_bfloat16_rounds_to_nearest_even_like_mlx():
    bits = np.random.default_rng(3).integers(0, 2**32, size=4096, dtype=np.uint64)
    bits[:4] = [0x3F808000, 0x3F818000, 0x7F7FFFFF, 0x00008000]  # ties both ways, overflow
    x = mx.array(bits.astype(np.uint32)).view(F32)
    source = "uint i = thread_position_in_grid.x;\nout[i] = static_cast<bfloat16_t>(x[i]);"
    got = _run(source, [x], (4096,), BF16, grid=(4096, 1, 1), tg=(256, 1, 1), names=["x"])
    want, finite = x.astype(BF16), np.isfinite(np.array(x))
    assert np.array_equal(
        np.array(got.view(mx.uint16))[finite], np.array(want.view(mx.uint16))[finite]
    )
    assert np.isnan(_np(got)[~finite & np.isnan(np.array(x))]).all()
