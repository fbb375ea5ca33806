"""Swap MLX's reference CPU BLAS for an installed OpenBLAS on Linux, before MLX loads."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import warnings
from pathlib import Path

# Debian/Ubuntu (pthread and openmp variants), Fedora/Arch, then whatever ldconfig knows.
_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
)

loaded: str | None = None


def find_openblas() -> str | None:
    """Path of an OpenBLAS shared library on this machine, or None."""
    override = os.environ.get("GEMMA_MLX_BLAS")
    if override and override not in ("0", "off", "none"):
        return override if Path(override).exists() else None
    for path in _CANDIDATES:
        if Path(path).exists():
            return path
    return ctypes.util.find_library("openblas")


def preload_openblas() -> str | None:
    """Load OpenBLAS with global symbols so MLX's cblas/LAPACK calls bind to it.

    The Linux MLX wheel bundles a reference BLAS that is 10-30x slower for the matrix
    products of a forward pass. Symbols from a library loaded RTLD_GLOBAL before
    `mlx.core` take precedence over the wheel's own copy. Set GEMMA_MLX_BLAS=off to
    keep the bundled one, or to a path to choose the library.
    """
    global loaded
    if loaded or not sys.platform.startswith("linux"):
        return loaded
    if os.environ.get("GEMMA_MLX_BLAS", "").lower() in ("0", "off", "none"):
        return None
    path = find_openblas()
    if path is None:
        return None
    if "mlx.core" in sys.modules:  # its BLAS symbols are bound already
        warnings.warn(
            "gemma_mlx was imported after mlx: CPU matrix products use MLX's slow reference "
            "BLAS. Import gemma_mlx first to use OpenBLAS.",
            stacklevel=3,
        )
        return None
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return None
    loaded = path
    return path
