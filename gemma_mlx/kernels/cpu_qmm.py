"""The CPU quantized matmul, GeGLU activation and quantization search: our AVX2 extension
where it is built and usable, else MLX's ops (the search: None, and the caller runs its MLX
version)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np

_state: dict[str, Any] = {}


def _load() -> Any:
    """The extension module, or None (and the reason, said once on stderr)."""
    if "module" in _state:
        return _state["module"]
    module, reason = None, None
    if os.environ.get("GEMMA_MLX_CPU_KERNEL", "on").lower() in ("0", "off", "false"):
        reason = "off (GEMMA_MLX_CPU_KERNEL)"
    else:
        try:  # by name: the compiled module sits beside the package's top level
            module = importlib.import_module("gemma_mlx._cpu_qmm")
        except ImportError as e:
            reason = f"not built ({e}); run scripts/build_cpu_kernels.sh"
        else:
            if module.mlx_version != mx.__version__:
                module, reason = None, (f"built for mlx {module.mlx_version}, but mlx "
                                        f"{mx.__version__} is installed: rebuild it")
            elif not module.avx2():
                _state["portable"] = module  # the search has portable lanes
                module, reason = None, "this CPU has no AVX2/FMA"
    _state["module"], _state["reason"] = module, reason
    if reason and "GEMMA_MLX_CPU_KERNEL" not in reason and sys.platform == "linux":
        print(f"gemma-mlx: the fast CPU quantized matmul is unavailable: {reason}; using "
              "MLX's (slower) op", file=sys.stderr)
    return module


def int8_activations() -> bool:
    """Whether activations are rounded to int8 per block of 32 before the 4- and 8-bit
    matmuls, as llama.cpp does (GEMMA_MLX_CPU_INT8=1; off by default: the float kernel is
    exact to float32 rounding and token-identical to MLX's op)."""
    if "int8" not in _state:
        _state["int8"] = os.environ.get("GEMMA_MLX_CPU_INT8", "0").lower() in ("1", "on", "true")
    return _state["int8"]


def set_int8_activations(on: bool) -> None:
    """Turn int8 activations on or off for the matmuls built from now on."""
    _state["int8"] = on


def available() -> bool:
    return _load() is not None


def status() -> str:
    """One line for reports: which kernel runs quantized matmuls on the CPU."""
    module = _load()
    if module is None:
        return f"MLX's op ({_state['reason']})"
    int8 = (f", int8 activations ({'VNNI' if module.vnni() else 'AVX2'})"
            if int8_activations() else "")
    isa = "AVX-512" if module.avx512() else "AVX2"
    return f"gemma-mlx {isa} extension, {module.threads()} threads{int8}"


def quantized_matmul(x: mx.array, w: mx.array, scales: mx.array, biases: mx.array,
                     group_size: int, bits: int) -> mx.array:
    """x [..., K] @ dequantize(w).T on the CPU with the extension (float32 x); MLX's op
    otherwise (other dtypes, devices, or without the extension)."""
    module = _load()
    if (module is None or x.dtype != mx.float32 or biases is None
            or mx.default_device() != mx.cpu):
        return mx.quantized_matmul(x, w, scales, biases, transpose=True,
                                   group_size=group_size, bits=bits)
    return module.quantized_matmul(x, w, scales, biases, group_size, bits, int8_activations())


def gelu_mul(g: mx.array, u: mx.array) -> mx.array:
    """gelu_tanh(g) * u: the extension's vectorised version for float32 on the CPU (MLX's
    calls libm's tanhf and powf per value: 1.5 ms of a 270M decode token), else MLX's."""
    module = _load()
    if (module is None or g.dtype != mx.float32 or u.dtype != mx.float32
            or mx.default_device() != mx.cpu or g.shape != u.shape):
        return nn.gelu_approx(g) * u
    return module.gelu_mul(g, u)


def quant_search(g: np.ndarray, bits: int, spans: int, portable: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """formats.quantize's least-error grid search on groups g [N, G] with the extension, on
    all cores, bit-identical to the MLX version: packed levels [N, G * bits / 32] (uint32)
    and float32 scales and biases [N]. None without the extension (or with one built before
    the search existed). `portable` runs the non-AVX2 lanes (tests)."""
    search = getattr(_load() or _state.get("portable"), "quant_search", None)
    if search is None:
        return None
    g = np.ascontiguousarray(g, dtype=np.float32)
    packed = np.empty((g.shape[0], g.shape[1] * bits // 32), np.uint32)
    scales, biases = np.empty(g.shape[0], np.float32), np.empty(g.shape[0], np.float32)
    search(g, bits, spans, packed, scales, biases, portable)
    return packed, scales, biases


def _check_search() -> str:
    """The search recovers groups that lie on a 4-bit grid exactly, on both kinds of lanes."""
    g = (np.arange(256, dtype=np.float32) % 16 * 0.25 - 1.0).reshape(8, 32)
    for portable in (False, True):
        packed, s, b = quant_search(g, 4, 8, portable)
        back = mx.dequantize(mx.array(packed.reshape(1, -1)), mx.array(s.reshape(1, -1)),
                             mx.array(b.reshape(1, -1)), group_size=32, bits=4)
        if not np.array_equal(np.array(back).reshape(8, 32), g):
            raise SystemExit(f"the CPU quantization search is wrong (portable={portable})")
    return "quantization search ok"


def check_extension() -> None:
    """Build check: the module loads, accepts this mlx's arrays, and agrees with MLX's op."""
    _state.clear()
    module = _load()
    if module is None and _state.get("portable") is not None:  # e.g. macOS arm64
        print(f"CPU kernel built: {_check_search()}; quantized matmuls use MLX's op "
              f"({_state['reason']})")
        return
    if module is None:
        raise SystemExit(f"the CPU kernel is unusable: {_state['reason']}")
    x = mx.random.normal((3, 256))
    w, s, b = mx.quantize(mx.random.normal((96, 256)), group_size=64, bits=4)
    got = module.quantized_matmul(x, w, s, b, 64, 4)
    ref = mx.quantized_matmul(x, w, s, b, transpose=True, group_size=64, bits=4)
    err = mx.abs(got - ref).max().item()
    if err > 1e-3:
        raise SystemExit(f"the CPU kernel disagrees with MLX's op (max error {err})")
    print(f"CPU kernel ready: {status()}, max error vs MLX {err:.1e}; {_check_search()}")
