"""Extra CPU streams: MLX runs each on its own thread, and its CPU softmax, GELU and quantized
matmul are single-threaded, so independent slices of work can share the cores."""

from __future__ import annotations

import os
import threading

import mlx.core as mx

MAX_STREAMS = 8
_local = threading.local()  # MLX streams belong to the thread that made them (a server's
# generation thread is not the one that loaded the model)


def cpu_streams(n: int | None = None) -> list:
    """`n` CPU streams (default: one per core, at most MAX_STREAMS), created once per thread."""
    n = n or max(1, min(os.cpu_count() or 1, MAX_STREAMS))
    streams = _local.__dict__.setdefault("streams", [])
    while len(streams) < n:
        streams.append(mx.new_stream(mx.cpu))
    return streams[:n]


def on_cpu() -> bool:
    return mx.default_device() == mx.cpu


def map_slices(fn, x: mx.array, axis: int, size: int) -> mx.array:
    """fn over slices of x along `axis` of at most `size`, concatenated; on the CPU the slices
    go round-robin to the CPU streams and run in parallel."""
    n = x.shape[axis]
    streams = cpu_streams() if on_cpu() else [None]
    size = min(size, -(-n // len(streams)))
    outs = []
    for i, start in enumerate(range(0, n, size)):
        part = x[(slice(None),) * axis + (slice(start, start + size),)]
        if i >= len(streams):  # after the slice before it on this stream: bounds memory
            part = part + (0 * outs[i - len(streams)].flatten()[0]).astype(part.dtype)
        stream = streams[i % len(streams)]
        if stream is None:
            outs.append(fn(part))
        else:
            with mx.stream(stream):
                outs.append(fn(part))
    return outs[0] if len(outs) == 1 else mx.concatenate(outs, axis=axis)
