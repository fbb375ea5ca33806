"""MLX's Metal code generation for custom kernels, re-implemented, and captured from MLX itself."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Sequence

import mlx.core as mx

# mx.fast.metal_kernel as imported, before any test monkeypatches it with the emulator.
MLX_METAL_KERNEL = mx.fast.metal_kernel

MAX_CONSTANT_ARRAY_SIZE = 8  # inputs with fewer elements live in the `constant` address space

TYPE_STRINGS = {
    mx.bool_: "bool",
    mx.uint8: "uint8_t",
    mx.uint16: "uint16_t",
    mx.uint32: "uint32_t",
    mx.uint64: "uint64_t",
    mx.int8: "int8_t",
    mx.int16: "int16_t",
    mx.int32: "int32_t",
    mx.int64: "int64_t",
    mx.float16: "float16_t",
    mx.bfloat16: "bfloat16_t",
    mx.float32: "float",
    mx.float64: "double",
    mx.complex64: "complex64_t",
}

# The attributes MLX detects by substring, in its order, with their parameter types.
ATTRIBUTES = [
    ("dispatch_quadgroups_per_threadgroup", "uint"),
    ("dispatch_simdgroups_per_threadgroup", "uint"),
    ("dispatch_threads_per_threadgroup", "uint3"),
    ("grid_origin", "uint3"),
    ("grid_size", "uint3"),
    ("quadgroup_index_in_threadgroup", "uint"),
    ("quadgroups_per_threadgroup", "uint"),
    ("simdgroup_index_in_threadgroup", "uint"),
    ("simdgroups_per_threadgroup", "uint"),
    ("thread_execution_width", "uint"),
    ("thread_index_in_quadgroup", "uint"),
    ("thread_index_in_simdgroup", "uint"),
    ("thread_index_in_threadgroup", "uint"),
    ("thread_position_in_grid", "uint3"),
    ("thread_position_in_threadgroup", "uint3"),
    ("threadgroup_position_in_grid", "uint3"),
    ("threadgroups_per_grid", "uint3"),
    ("threads_per_grid", "uint3"),
    ("threads_per_simdgroup", "uint"),
    ("threads_per_threadgroup", "uint3"),
]

Template = Sequence[tuple[str, "bool | int | mx.Dtype"]]


def type_string(dtype: mx.Dtype) -> str:
    """The Metal type MLX writes for a dtype."""
    return TYPE_STRINGS[dtype]


def as_array(x: mx.array | bool | int | float) -> mx.array:
    """Python scalars become arrays as in MLX (int -> int32, float -> float32, bool -> bool)."""
    return x if isinstance(x, mx.array) else mx.array(x)


def shape_infos(source: str, input_names: Sequence[str]) -> list[tuple[bool, bool, bool]]:
    """Whether `<name>_shape`, `_strides`, `_ndim` occur in the source (plain substring test)."""
    return [
        (f"{n}_shape" in source, f"{n}_strides" in source, f"{n}_ndim" in source)
        for n in input_names
    ]


def _template_value(value: bool | int | mx.Dtype) -> str:
    if isinstance(value, bool):  # bool before int, as MLX checks it
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return type_string(value)


def _template_param(value: bool | int | mx.Dtype) -> str:
    return "bool" if isinstance(value, bool) else "int" if isinstance(value, int) else "typename"


def template_def(template: Template | None) -> str:
    """`<float, 4, 1>`, or "" without template arguments."""
    if not template:
        return ""
    return "<" + ", ".join(_template_value(v) for _, v in template) + ">"


def kernel_name(
    name: str,
    inputs: Sequence[mx.array],
    output_dtypes: Sequence[mx.Dtype],
    template: Template | None,
) -> str:
    """custom_kernel_<name>[_<template hash>]_<in dtype>[s|c]..._<out dtype>..."""
    out = f"custom_kernel_{name}"
    if template:
        # MLX 0.32.4 maps `<`, `>`, `, ` and `-` to `_` (its source shows a regex without `-`)
        out += "_" + re.sub(r"<|>|(, )|-", "_", template_def(template))[:-1]
    for arr in inputs:
        out += "_" + type_string(arr.dtype)
        if arr.ndim == 0:
            out += "s"
        elif arr.size < MAX_CONSTANT_ARRAY_SIZE:
            out += "c"
    return out + "".join("_" + type_string(d) for d in output_dtypes)


def _input_params(input_names, inputs, infos) -> list[str]:
    params = []
    for name, arr, (shape, strides, ndim) in zip(input_names, inputs, infos, strict=True):
        space = "constant" if arr.size < MAX_CONSTANT_ARRAY_SIZE else "device"
        ref = "&" if arr.ndim == 0 else "*"
        params.append(f"  const {space} {type_string(arr.dtype)}{ref} {name}")
        if arr.ndim > 0:
            params += [
                f"  const constant {t} {name}_{what}"
                for t, what, used in [
                    ("int*", "shape", shape),
                    ("int64_t*", "strides", strides),
                    ("int&", "ndim", ndim),
                ]
                if used
            ]
    return params


def generated_source(
    name: str,
    input_names: Sequence[str],
    output_names: Sequence[str],
    source: str,
    header: str,
    inputs: Sequence[mx.array | bool | int | float],
    output_dtypes: Sequence[mx.Dtype],
    template: Template | None = None,
    atomic_outputs: bool = False,
) -> str:
    """The exact text MLX's Metal back end compiles for this call (MLX's write_signature)."""
    inputs = [as_array(x) for x in inputs]
    kname = kernel_name(name, inputs, output_dtypes, template)
    params = _input_params(input_names, inputs, shape_infos(source, input_names))
    text = header
    if template:
        text += "template <" + ", ".join(f"{_template_param(v)} {n}" for n, v in template) + ">\n"
    text += f"[[kernel]] void {kname}(\n"
    text += "".join(f"{p} [[buffer({i})]],\n" for i, p in enumerate(params))
    attributes = [f"  {t} {a} [[{a}]]" for a, t in ATTRIBUTES if a in source]
    index = len(params)
    for out_name, dtype in zip(output_names, output_dtypes, strict=True):
        t = type_string(dtype)
        t = f"atomic<{t}>" if atomic_outputs else t
        text += f"  device {t}* {out_name} [[buffer({index})]]"
        # MLX compares the buffer index (shape buffers included) with the array count.
        last = index >= len(inputs) + len(output_names) - 1 and not attributes
        text += ") {\n" if last else ",\n"
        index += 1
    text += "".join(
        a + (",\n" if i < len(attributes) - 1 else ") {\n") for i, a in enumerate(attributes)
    )
    text += source + "\n}\n"
    if template:
        inst = kname + template_def(template)
        text += f'\ntemplate [[host_name("{kname}")]] [[kernel]] decltype({inst}) {inst};\n'
    return text


def mlx_generated_source(
    name: str,
    input_names: Sequence[str],
    output_names: Sequence[str],
    source: str,
    header: str = "",
    inputs: Sequence[mx.array | bool | int | float] = (),
    output_shapes: Sequence[Sequence[int]] = (),
    output_dtypes: Sequence[mx.Dtype] = (),
    template: Template | None = None,
    grid: tuple[int, int, int] = (1, 1, 1),
    threadgroup: tuple[int, int, int] = (1, 1, 1),
    atomic_outputs: bool = False,
) -> str:
    """MLX's own generated text, printed (verbose) while the kernel is export-traced on Linux."""
    kernel = MLX_METAL_KERNEL(
        name=name,
        input_names=list(input_names),
        output_names=list(output_names),
        source=source,
        header=header,
        atomic_outputs=atomic_outputs,
    )
    arrays = [x for x in inputs if isinstance(x, mx.array)]

    def traced(*args: mx.array) -> list[mx.array]:
        it = iter(args)
        ins = [next(it) if isinstance(x, mx.array) else x for x in inputs]
        return kernel(
            inputs=ins,
            output_shapes=list(output_shapes),
            output_dtypes=list(output_dtypes),
            grid=grid,
            threadgroup=threadgroup,
            template=list(template) if template else None,
            verbose=True,
            stream=mx.gpu,
        )

    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as captured:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(captured.fileno(), 1)  # MLX prints with std::cout: capture the file descriptor
        try:
            mx.export_function(os.path.join(tmp, "kernel.mlxfn"), traced, *arrays)
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        captured.seek(0)
        printed = captured.read().decode()
    start = printed.index("```\n") + 4
    return printed[start : printed.rindex("\n```\n")]
