"""A CPU emulator of the Metal subset our mx.fast.metal_kernel bodies use (see README.md)."""

from __future__ import annotations

from .compile import EmulatorError
from .runtime import metal_kernel
from .signature import generated_source, mlx_generated_source

__all__ = ["EmulatorError", "generated_source", "metal_kernel", "mlx_generated_source"]
