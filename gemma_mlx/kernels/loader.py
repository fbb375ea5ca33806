"""Reads kernel bodies from metal_kernels/ and builds each kernel once per factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlx.core as mx

KERNEL_DIR = Path(__file__).resolve().parents[2] / "metal_kernels"

KERNEL_DTYPES = (mx.float32, mx.float16, mx.bfloat16)

_built: dict[tuple[str, Callable], Callable] = {}


def kernel_source(name: str) -> str:
    """The body of metal_kernels/<name>.metal without its leading contract comment.

    The contract is dropped because MLX adds a parameter for every attribute name that
    occurs anywhere in the source, comments included.
    """
    path = KERNEL_DIR / f"{name}.metal"
    if not path.is_file():
        raise FileNotFoundError(f"Metal kernel source {path} is missing (run from a checkout)")
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if not line.startswith("//"))
    return "\n".join(lines[start:]) + "\n"


def get_kernel(
    name: str, input_names: list[str], output_names: list[str],
    factory: Callable | None = None,
) -> Callable:
    """`factory(...)` (default mx.fast.metal_kernel) applied to the named body, cached."""
    factory = factory or mx.fast.metal_kernel
    key = (name, factory)
    if key not in _built:
        _built[key] = factory(
            name=name, input_names=input_names, output_names=output_names,
            source=kernel_source(name),
        )
    return _built[key]


def kernel_supports(q: mx.array) -> bool:
    """Whether our kernels take this head size and dtype."""
    d = q.shape[-1]
    return d % 32 == 0 and d <= 256 and q.dtype in KERNEL_DTYPES


def with_reference_vjp(kernel_fn: Callable, reference_fn: Callable) -> Callable:
    """kernel_fn(q, k, v) forward, differentiated through reference_fn (same numbers), since
    custom kernels have no vjp of their own: training on Metal works, at recompute cost."""

    @mx.custom_function
    def fn(q, k, v):
        return kernel_fn(q, k, v)

    @fn.vjp
    def fn_vjp(primals, cotangent, output):
        return mx.vjp(reference_fn, list(primals), [cotangent])[1]

    return fn
