"""`metal_kernel`, a drop-in for mx.fast.metal_kernel that runs the kernel in the CPU emulator."""

from __future__ import annotations

import ctypes
import mmap
import os
from collections.abc import Callable, Sequence

import mlx.core as mx
import numpy as np

from .compile import EmulatorError, build, parse_signature
from .signature import Template, as_array, generated_source, kernel_name, shape_infos

MAX_THREADS_PER_THREADGROUP = 1024
STACK_BYTES = 256 * 1024  # per GPU thread (fiber)
_STACK_SLOT = STACK_BYTES + mmap.PAGESIZE  # a PROT_NONE guard page below each stack
_stack_pool: int | None = None


def _stacks() -> int:
    """One pool of fiber stacks for the process, shared by every kernel library."""
    global _stack_pool
    if _stack_pool is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]  # fmt: skip
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)
        size = _STACK_SLOT * MAX_THREADS_PER_THREADGROUP
        base = libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, flags, -1, 0)
        if base in (None, ctypes.c_void_p(-1).value):
            raise EmulatorError(f"could not map fiber stacks: errno {ctypes.get_errno()}")
        for i in range(MAX_THREADS_PER_THREADGROUP):
            libc.mprotect(base + i * _STACK_SLOT, mmap.PAGESIZE, 0)  # PROT_NONE
        _stack_pool = base
    return _stack_pool


def poison_outputs_default() -> bool:
    """Outputs start as 0xFF bytes (NaN, -1) unless MSL_EMU_POISON_OUTPUTS=0 (then zeros)."""
    return os.environ.get("MSL_EMU_POISON_OUTPUTS", "1") != "0"


def _host(x: mx.array) -> np.ndarray:
    """A row-contiguous host copy; bfloat16 travels as its raw 16 bits."""
    if x.dtype == mx.bfloat16:
        x = x.view(mx.uint16)
    return np.ascontiguousarray(np.array(x, copy=True))


def _to_mx(a: np.ndarray, dtype: mx.Dtype) -> mx.array:
    out = mx.array(a)
    return out.view(dtype) if dtype == mx.bfloat16 else out


def _np_dtype(dtype: mx.Dtype) -> np.dtype:
    return (
        np.dtype(np.uint16)
        if dtype == mx.bfloat16
        else np.dtype(str(dtype).removeprefix("mlx.core.").replace("bool_", "bool"))
    )


def _output(
    shape: Sequence[int], dtype: mx.Dtype, init_value: float | None, poison: bool
) -> np.ndarray:
    if init_value is not None:
        return _host(mx.full(tuple(shape), init_value, dtype))
    out = np.zeros(tuple(shape), _np_dtype(dtype))
    if poison:
        out.view(np.uint8)[...] = 0xFF
    return out


def _row_strides(shape: Sequence[int]) -> list[int]:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    return strides[::-1]


def _input_buffers(inputs: list[mx.array], infos) -> list[np.ndarray]:
    bufs = []
    for arr, (shape, strides, ndim) in zip(inputs, infos, strict=True):
        bufs.append(_host(arr))
        if arr.ndim > 0:
            bufs += [
                b
                for b, used in [
                    (np.array(arr.shape, np.int32), shape),
                    (np.array(_row_strides(arr.shape), np.int64), strides),
                    (np.array(arr.ndim, np.int32), ndim),
                ]
                if used
            ]
    return bufs


def _run(lib: ctypes.CDLL, bufs: list[np.ndarray], names: list[str], grid, threadgroup) -> None:
    n = len(bufs)
    ptrs = (ctypes.c_void_p * n)(*[b.ctypes.data for b in bufs])
    sizes = (ctypes.c_size_t * n)(*[b.nbytes for b in bufs])
    aligns = (ctypes.c_size_t * n)(*[max(1, b.itemsize) for b in bufs])
    cnames = (ctypes.c_char_p * n)(*[s.encode() for s in names])
    err = ctypes.create_string_buffer(4096)
    rc = lib.msl_emu_run(
        ptrs,
        sizes,
        aligns,
        n,
        cnames,
        (ctypes.c_uint * 3)(*grid),
        (ctypes.c_uint * 3)(*threadgroup),
        ctypes.c_void_p(_stacks()),
        ctypes.c_size_t(_STACK_SLOT),
        err,
        len(err),
    )
    if rc != 0:
        raise EmulatorError(err.value.decode(errors="replace"))


class EmulatedKernel:
    """The callable metal_kernel returns; same keywords as MLX's, plus `poison_outputs`."""

    def __init__(
        self,
        name: str,
        input_names: Sequence[str],
        output_names: Sequence[str],
        source: str,
        header: str,
        atomic_outputs: bool,
    ) -> None:
        self.name, self.source, self.header = name, source, header
        self.input_names, self.output_names = list(input_names), list(output_names)
        self.atomic_outputs = atomic_outputs

    def _check(self, inputs, output_shapes, output_dtypes, threadgroup) -> None:
        for what, got, want in [
            ("inputs", inputs, self.input_names),
            ("output_shapes", output_shapes, self.output_names),
            ("output_dtypes", output_dtypes, self.output_names),
        ]:
            if len(got) != len(want):
                raise ValueError(
                    f"[metal_kernel] Expected `{what}` to have size {len(want)} "
                    f"but got size {len(got)}."
                )
        tg_size = int(np.prod(threadgroup))
        if tg_size > MAX_THREADS_PER_THREADGROUP:
            raise ValueError(
                f"Thread group size ({tg_size}) is greater than  the maximum "
                f"allowed threads per threadgroup ({MAX_THREADS_PER_THREADGROUP})."
            )

    def __call__(
        self,
        *,
        inputs: Sequence[mx.array | bool | int | float],
        output_shapes: Sequence[Sequence[int]],
        output_dtypes: Sequence[mx.Dtype],
        grid: tuple[int, int, int],
        threadgroup: tuple[int, int, int],
        template: Template | None = None,
        init_value: float | None = None,
        verbose: bool = False,
        stream: object = None,
        poison_outputs: bool | None = None,
    ) -> list[mx.array]:
        self._check(inputs, output_shapes, output_dtypes, threadgroup)
        arrays = [as_array(x) for x in inputs]
        text = generated_source(
            self.name,
            self.input_names,
            self.output_names,
            self.source,
            self.header,
            arrays,
            output_dtypes,
            template,
            self.atomic_outputs,
        )
        if verbose:
            print(f"Generated source code for `{self.name}`:\n```\n{text}\n```")
        kname = kernel_name(self.name, arrays, output_dtypes, template)
        lib = build(text, kname)
        poison = poison_outputs_default() if poison_outputs is None else poison_outputs
        bufs = _input_buffers(arrays, shape_infos(self.source, self.input_names))
        outs = [
            _output(s, d, init_value, poison)
            for s, d in zip(output_shapes, output_dtypes, strict=True)
        ]
        names = [p.name for p in parse_signature(text, kname) if p.index >= 0]
        _run(lib, bufs + outs, names, tuple(grid), tuple(threadgroup))
        return [_to_mx(o, d) for o, d in zip(outs, output_dtypes, strict=True)]


def metal_kernel(
    name: str,
    input_names: Sequence[str],
    output_names: Sequence[str],
    source: str,
    header: str = "",
    ensure_row_contiguous: bool = True,
    atomic_outputs: bool = False,
    compile_options: dict | None = None,
) -> Callable[..., list[mx.array]]:
    """mx.fast.metal_kernel's signature; the kernel runs on the CPU emulator.

    Inputs always arrive row-contiguous (as with ensure_row_contiguous=True) and
    compile_options (math_mode) have no effect: the emulator's math is IEEE.
    """
    if not output_names:
        raise ValueError("[metal_kernel] Must specify at least one output.")
    if compile_options and set(compile_options) - {"math_mode"}:
        raise ValueError("[metal_kernel] compile_options only accepts math_mode.")
    del ensure_row_contiguous
    return EmulatedKernel(name, input_names, output_names, source, header, atomic_outputs)
