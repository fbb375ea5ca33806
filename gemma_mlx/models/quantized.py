"""Linear and embedding layers whose quantized forms use dense BLAS for long inputs on CPU."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ..kernels import cpu_qmm
from .cpu_streams import cpu_streams

# MLX's CPU quantized matmul is a plain loop: fine for one decode token, ~50x slower than
# dequantize-then-BLAS for a prefill chunk. On Metal the quantized kernels win, so this
# applies to the CPU backend only.
DENSE_MIN_ROWS = 16
KERNEL_MAX_ROWS = 32  # our CPU kernel (it reuses each weight across rows) beats that up to here


def _use_dense(x: mx.array) -> bool:
    limit = KERNEL_MAX_ROWS if x.dtype == mx.float32 and cpu_qmm.available() else DENSE_MIN_ROWS
    return x.size // x.shape[-1] >= limit and mx.default_device() == mx.cpu


def _dense_weight(layer: nn.Module, dtype: mx.Dtype) -> mx.array:
    w = mx.dequantize(layer["weight"], layer["scales"], layer.get("biases"),
                      group_size=layer.group_size, bits=layer.bits, mode=layer.mode)
    return w.astype(dtype)


def _use_kernel(layer: nn.Module, x: mx.array) -> bool:
    """Our CPU extension: affine, float32, fewer than KERNEL_MAX_ROWS rows (more go to BLAS
    on dequantized weights)."""
    return (layer.mode == "affine" and x.dtype == mx.float32 and "biases" in layer
            and mx.default_device() == mx.cpu and cpu_qmm.available())


def _as_8_bit(w: mx.array, group_size: int, bits: int) -> mx.array:
    """The same integer values as `bits`-bit words, repacked 4 per uint32 (8-bit layout)."""
    groups = w.shape[-1] * 32 // bits // group_size
    ones = mx.ones((w.shape[0], groups), mx.float32)
    q = mx.dequantize(w, ones, mx.zeros_like(ones), group_size=group_size, bits=bits)
    q = q.astype(mx.uint32).reshape(w.shape[0], -1, 4)
    return q[..., 0] | (q[..., 1] << 8) | (q[..., 2] << 16) | (q[..., 3] << 24)


def _kernel(layer: nn.Module, x: mx.array) -> mx.array:
    w, bits = layer["weight"], layer.bits
    if bits in (3, 5, 6):  # the 8-bit kernel is ~4x faster than reading a 5-bit stream
        cached = getattr(layer, "_as_8_bit", None)
        if cached is None or cached[0] is not w:
            cached = (w, _as_8_bit(w, layer.group_size, bits))
            mx.eval(cached[1])
            object.__setattr__(layer, "_as_8_bit", cached)  # not a parameter: never saved
        w, bits = cached[1], 8
    return cpu_qmm.quantized_matmul(x, w, layer["scales"], layer["biases"], layer.group_size,
                                    bits)


class QuantizedLinear(nn.QuantizedLinear):
    def __call__(self, x: mx.array) -> mx.array:
        if _use_dense(x):
            y = x @ _dense_weight(self, x.dtype).T
        elif _use_kernel(self, x):
            y = _kernel(self, x)
        else:
            return super().__call__(x)
        return y + self["bias"] if "bias" in self else y


HEAD_SPLIT = 2  # CPU streams sharing a decode step's output-head product


def _split_matvec(layer: nn.Module, x: mx.array) -> mx.array:
    """x @ W.T with W's rows split across CPU streams: MLX runs each stream on its own thread,
    and its CPU quantized matmul is single-threaded (262K-row head: 177 -> 104 ms on 2 cores)."""
    w = layer["weight"]
    cached = getattr(layer, "_split", None)
    if cached is None or cached[0] is not w:
        n = -(-w.shape[0] // HEAD_SPLIT)
        parts = [tuple(a[i : i + n] for a in (w, layer["scales"], layer.get("biases")))
                 for i in range(0, w.shape[0], n)]
        cached = (w, parts)
        object.__setattr__(layer, "_split", cached)  # not a parameter
    outs = [mx.quantized_matmul(x, wq, sc, b, transpose=True, group_size=layer.group_size,
                                bits=layer.bits, mode=layer.mode, stream=st)
            for (wq, sc, b), st in zip(cached[1], cpu_streams(len(cached[1])), strict=True)]
    return mx.concatenate(outs, axis=-1)


class QuantizedEmbedding(nn.QuantizedEmbedding):
    def as_linear(self, x: mx.array) -> mx.array:
        if _use_dense(x):
            return x @ _dense_weight(self, x.dtype).T
        if _use_kernel(self, x):  # its own threads: no split over streams
            return _kernel(self, x)
        if mx.default_device() == mx.cpu and self.mode == "affine":
            return _split_matvec(self, x)
        return super().as_linear(x)


class Linear(nn.Linear):
    def to_quantized(self, group_size=None, bits=None, mode="affine", quantize_input=False):
        return QuantizedLinear.from_linear(self, group_size, bits, mode)


class Embedding(nn.Embedding):
    def to_quantized(self, group_size=None, bits=None, mode="affine", quantize_input=False):
        return QuantizedEmbedding.from_embedding(self, group_size, bits, mode)
