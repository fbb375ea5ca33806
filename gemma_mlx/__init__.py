"""gemma-mlx: run, convert and fine-tune Gemma 3 on MLX."""

from .blas import preload_openblas

preload_openblas()  # before mlx.core loads, so its BLAS calls bind to OpenBLAS on Linux

from .formats.loading import load  # noqa: E402
from .generation.batch import BatchResult, batch_generate  # noqa: E402
from .generation.generate import GenerationResponse, generate, stream_generate  # noqa: E402

__all__ = ["BatchResult", "GenerationResponse", "batch_generate", "generate", "load",
           "stream_generate"]
__version__ = "0.1.0"
