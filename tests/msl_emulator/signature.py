"""The kernel text MLX generates around a body (mlx/backend/common/metal_kernel.cpp)."""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass

import mlx.core as mx

# Attribute parameters MLX adds when their name occurs in the source, in MLX's order.
ATTRIBUTES = {
    "dispatch_quadgroups_per_threadgroup": "uint",
    "dispatch_simdgroups_per_threadgroup": "uint",
    "dispatch_threads_per_threadgroup": "uint3",
    "grid_origin": "uint3",
    "grid_size": "uint3",
    "quadgroup_index_in_threadgroup": "uint",
    "quadgroups_per_threadgroup": "uint",
    "simdgroup_index_in_threadgroup": "uint",
    "simdgroups_per_threadgroup": "uint",
    "thread_execution_width": "uint",
    "thread_index_in_quadgroup": "uint",
    "thread_index_in_simdgroup": "uint",
    "thread_index_in_threadgroup": "uint",
    "thread_position_in_grid": "uint3",
    "thread_position_in_threadgroup": "uint3",
    "threadgroup_position_in_grid": "uint3",
    "threadgroups_per_grid": "uint3",
    "threads_per_grid": "uint3",
    "threads_per_simdgroup": "uint",
    "threads_per_threadgroup": "uint3",
}

TYPE_NAMES = {
    mx.float32: "float", mx.float16: "float16_t", mx.bfloat16: "bfloat16_t",
    mx.int32: "int32_t", mx.uint32: "uint32_t", mx.int64: "int64_t", mx.uint64: "uint64_t",
    mx.int16: "int16_t", mx.uint16: "uint16_t", mx.int8: "int8_t", mx.uint8: "uint8_t",
    mx.bool_: "bool",
}


@dataclass(frozen=True)
class Param:
    """One kernel parameter: a buffer (index >= 0) or a thread attribute (index -1)."""

    name: str
    ctype: str
    index: int
    by_value: bool = False  # `&`: a 0-d input, passed as a reference to one element


def as_array(x) -> mx.array:
    """Python scalars become arrays as in mx.fast.metal_kernel: int32, float32, bool."""
    if isinstance(x, mx.array):
        return x
    if isinstance(x, bool):
        return mx.array(x, mx.bool_)
    return mx.array(x, mx.int32 if isinstance(x, int) else mx.float32)


def _template_value(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, mx.Dtype):
        return TYPE_NAMES[v]
    return str(v)


def kernel_name(name, inputs, output_dtypes, template) -> str:
    out = f"custom_kernel_{name}"
    if template:
        out += "_" + "".join("_" + _template_value(v) for _, v in template)
    for a in inputs:
        out += "_" + TYPE_NAMES[a.dtype] + ("s" if a.ndim == 0 else "c" if a.size < 8 else "")
    for dt in output_dtypes:
        out += "_" + TYPE_NAMES[dt]
    return out


def parameters(input_names, output_names, source, inputs, output_dtypes, atomic_outputs):
    """The parameter list in MLX's order, with the declaration text of each."""
    params, decls, i = [], [], 0
    for n, a in zip(input_names, inputs, strict=True):
        space = "constant" if a.size < 8 else "device"
        ref = "&" if a.ndim == 0 else "*"
        decls.append(f"const {space} {TYPE_NAMES[a.dtype]}{ref} {n} [[buffer({i})]]")
        params.append(Param(n, TYPE_NAMES[a.dtype], i, a.ndim == 0))
        i += 1
        if a.ndim == 0:
            continue
        for suffix, ctype, ref in [("_shape", "int", "*"), ("_strides", "int64_t", "*"),
                                   ("_ndim", "int", "&")]:
            if n + suffix in source:
                decls.append(f"const constant {ctype}{ref} {n}{suffix} [[buffer({i})]]")
                params.append(Param(n + suffix, ctype, i, ref == "&"))
                i += 1
    for n, dt in zip(output_names, output_dtypes, strict=True):
        t = f"atomic<{TYPE_NAMES[dt]}>" if atomic_outputs else TYPE_NAMES[dt]
        decls.append(f"device {t}* {n} [[buffer({i})]]")
        params.append(Param(n, t, i))
        i += 1
    for attr, ctype in ATTRIBUTES.items():
        if attr in source:
            decls.append(f"{ctype} {attr} [[{attr}]]")
            params.append(Param(attr, ctype, -1))
    return params, decls


def generated_source(name, input_names, output_names, source, header, inputs, output_dtypes,
                     template=None, atomic_outputs=False) -> str:
    """MLX's generated Metal source for this kernel call, byte for byte."""
    inputs = [as_array(x) for x in inputs]
    kname = kernel_name(name, inputs, output_dtypes, template)
    _, decls = parameters(input_names, output_names, source, inputs, output_dtypes,
                          atomic_outputs)
    text = header
    if template:
        kinds = ["typename" if isinstance(v, mx.Dtype) else "bool" if isinstance(v, bool)
                 else "int" for _, v in template]
        pairs = zip(kinds, template, strict=True)
        text += "template <" + ", ".join(f"{k} {n}" for k, (n, _) in pairs) + ">\n"
    text += f"[[kernel]] void {kname}(\n" + ",\n".join("  " + d for d in decls) + ") {\n"
    text += source + "\n}\n\n"
    if template:
        args = ", ".join(_template_value(v) for _, v in template)
        text += (f'template [[host_name("{kname}")]] [[kernel]] decltype({kname}<{args}>) '
                 f"{kname}<{args}>;\n\n")
    return text


def mlx_generated_source(name, input_names, output_names, source, header="", *, inputs,
                         output_shapes, output_dtypes, grid, threadgroup, template=None,
                         atomic_outputs=False) -> str:
    """MLX's own text, captured on Linux: the kernel is traced for export with verbose=True
    on mx.gpu, which prints the source from C++ (so fd 1 is redirected, not sys.stdout)."""
    kernel = mx.fast.metal_kernel(name=name, input_names=input_names,
                                  output_names=output_names, source=source, header=header,
                                  atomic_outputs=atomic_outputs)
    arrays = [a for a in inputs if isinstance(a, mx.array)]

    def call(*arrs):
        it = iter(arrs)
        full = [next(it) if isinstance(a, mx.array) else a for a in inputs]
        return kernel(inputs=full, output_shapes=output_shapes, output_dtypes=output_dtypes,
                      grid=grid, threadgroup=threadgroup, template=template, verbose=True,
                      stream=mx.gpu)

    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as out:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(out.fileno(), 1)
        try:
            mx.export_function(os.path.join(tmp, "k.mlxfn"), call, *arrays)
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        out.seek(0)
        text = out.read().decode()
    start = text.index("```\n") + 4
    return text[start : text.rindex("```")]
