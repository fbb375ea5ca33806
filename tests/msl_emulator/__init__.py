"""A CPU emulator for mx.fast.metal_kernel bodies: the same call, run through g++ and fibers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import mlx.core as mx
import numpy as np

from . import build
from .signature import (
    TYPE_NAMES,
    as_array,
    generated_source,
    kernel_name,
    mlx_generated_source,
    parameters,
)

__all__ = ["generated_source", "metal_kernel", "mlx_generated_source"]


def _to_numpy(a: mx.array) -> np.ndarray:
    if a.dtype == mx.bfloat16:
        return np.ascontiguousarray(np.array(a.view(mx.uint16)))
    return np.ascontiguousarray(np.array(a))


def _from_numpy(a: np.ndarray, dtype: mx.Dtype) -> mx.array:
    if dtype == mx.bfloat16:
        return mx.array(a).view(mx.bfloat16)
    return mx.array(a)


def _empty(shape, dtype: mx.Dtype, init_value) -> np.ndarray:
    np_dtype = np.uint16 if dtype == mx.bfloat16 else np.array(mx.zeros(1, dtype)).dtype
    if init_value is not None:
        return np.array(_to_numpy(mx.full(shape, init_value, dtype)))
    # Metal leaves outputs uninitialised: poison them so reliance on zeros shows up.
    out = np.empty(shape, np_dtype)
    out.view(np.uint8).fill(0xFF)
    return out


def metal_kernel(name: str, input_names: Sequence[str], output_names: Sequence[str],
                 source: str, header: str = "", ensure_row_contiguous: bool = True,
                 atomic_outputs: bool = False, compile_options=None) -> Callable:
    """Same signature and call as mx.fast.metal_kernel; runs on the CPU."""

    def kernel(*, inputs, output_shapes, output_dtypes, grid, threadgroup, template=None,
               init_value=None, verbose=False, stream=None) -> list[mx.array]:
        arrays = [as_array(x) for x in inputs]
        text = generated_source(name, input_names, output_names, source, header, arrays,
                                output_dtypes, template, atomic_outputs)
        if verbose:
            print(text)
        params, _ = parameters(input_names, output_names, source, arrays, output_dtypes,
                               atomic_outputs)
        targs = ", ".join(TYPE_NAMES[v] if isinstance(v, mx.Dtype) else str(int(v))
                          for _, v in (template or []))
        kname = kernel_name(name, arrays, output_dtypes, template)
        lib = build.compile_library(build.translate(text) + build.launcher(kname, params, targs))
        buffers: list[np.ndarray] = []
        for n, a in zip(input_names, arrays, strict=True):
            buffers.append(_to_numpy(a))
            if a.ndim:
                extras = {"_shape": np.array(a.shape, np.int32),
                          "_strides": np.cumprod((a.shape[1:] + (1,))[::-1])[::-1].astype(np.int64),
                          "_ndim": np.array(a.ndim, np.int32)}
                buffers += [v for k, v in extras.items() if n + k in source]
        outs = [_empty(s, dt, init_value) for s, dt in zip(output_shapes, output_dtypes,
                                                           strict=True)]
        build.run(lib, buffers + outs, grid, threadgroup)
        return [_from_numpy(o, dt) for o, dt in zip(outs, output_dtypes, strict=True)]

    return kernel
