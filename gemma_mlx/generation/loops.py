"""Runaway repetition: an output whose tail repeats one block of tokens over and over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Gemma 3's sampling defaults: the generation_config.json of every released checkpoint
# (do_sample, top_k 64, top_p 0.95, temperature 1.0), which transformers and Ollama use.
GEMMA_SAMPLING = {"temperature": 1.0, "top_k": 64, "top_p": 0.95}
REPEATS = 3  # copies of a block that end the output
MIN_SPAN = 24  # tokens the copies must cover, so "a a a" or "1. 2. 3." are not loops
MAX_PERIOD = 64


def repeating(tokens: list[int], repeats: int = REPEATS, min_span: int = MIN_SPAN,
              max_period: int = MAX_PERIOD) -> int:
    """The block length p when the last max(repeats * p, min_span) tokens are one block of p
    tokens over and over; 0 when they are not."""
    n = len(tokens)
    for p in range(1, max_period + 1):
        span = max(repeats * p, min_span)
        if span > n:
            break
        if tokens[-1] == tokens[-1 - p] and tokens[n - span + p:] == tokens[n - span:n - p]:
            return p
    return 0


def sampling_defaults(path: str | Path | None) -> dict[str, Any]:
    """temperature, top_k and top_p from a checkpoint's generation_config.json, each falling
    back to Gemma 3's defaults; do_sample false means greedy."""
    import json

    config: dict[str, Any] = {}
    file = Path(path) / "generation_config.json" if path else None
    if file is not None and file.is_file():
        try:
            config = json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            config = {}
    if not isinstance(config, dict):
        config = {}
    if config.get("do_sample") is False:
        return {"temperature": 0.0, "top_k": 0, "top_p": 1.0}
    out = {}
    for key, default in GEMMA_SAMPLING.items():
        v = config.get(key)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
        out[key] = type(default)(v) if ok else default
    return out
