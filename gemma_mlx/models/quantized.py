"""Linear and embedding layers whose quantized forms use dense BLAS for long inputs on CPU."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from .cpu_streams import cpu_streams

# MLX's CPU quantized matmul is a plain loop: fine for one decode token, ~50x slower than
# dequantize-then-BLAS for a prefill chunk. On Metal the quantized kernels win, so this
# applies to the CPU backend only.
DENSE_MIN_ROWS = 16


def _use_dense(x: mx.array) -> bool:
    return x.size // x.shape[-1] >= DENSE_MIN_ROWS and mx.default_device() == mx.cpu


def _dense_weight(layer: nn.Module, dtype: mx.Dtype) -> mx.array:
    w = mx.dequantize(layer["weight"], layer["scales"], layer.get("biases"),
                      group_size=layer.group_size, bits=layer.bits, mode=layer.mode)
    return w.astype(dtype)


class QuantizedLinear(nn.QuantizedLinear):
    def __call__(self, x: mx.array) -> mx.array:
        if not _use_dense(x):
            return super().__call__(x)
        y = x @ _dense_weight(self, x.dtype).T
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
        if mx.default_device() == mx.cpu and self.mode == "affine":
            return _split_matvec(self, x)
        return super().as_linear(x)


class Linear(nn.Linear):
    def to_quantized(self, group_size=None, bits=None, mode="affine", quantize_input=False):
        return QuantizedLinear.from_linear(self, group_size, bits, mode)


class Embedding(nn.Embedding):
    def to_quantized(self, group_size=None, bits=None, mode="affine", quantize_input=False):
        return QuantizedEmbedding.from_embedding(self, group_size, bits, mode)
