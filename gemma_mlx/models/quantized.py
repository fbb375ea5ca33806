"""Linear and embedding layers whose quantized forms use dense BLAS for long inputs on CPU."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

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


class QuantizedEmbedding(nn.QuantizedEmbedding):
    def as_linear(self, x: mx.array) -> mx.array:
        if not _use_dense(x):
            return super().as_linear(x)
        return x @ _dense_weight(self, x.dtype).T


class Linear(nn.Linear):
    def to_quantized(self, group_size=None, bits=None, mode="affine", quantize_input=False):
        return QuantizedLinear.from_linear(self, group_size, bits, mode)


class Embedding(nn.Embedding):
    def to_quantized(self, group_size=None, bits=None, mode="affine", quantize_input=False):
        return QuantizedEmbedding.from_embedding(self, group_size, bits, mode)
