"""Start the server: load the model once, warm the grammar tokenizer, run uvicorn."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

from ..errors import GemmaError
from ..generation.constraints import grammar_tokenizer
from .app import Settings, create_app


def model_name(path: str | Path | None) -> str:
    """The id /v1/models lists: the checkpoint's directory or file name."""
    if path is None:
        return "gemma-3-270m"
    p = Path(str(path))
    return (p.stem if p.suffix == ".gguf" else p.name) or str(path)


def serve(model: Any, tokenizer: Any, settings: Settings, port: int = 8080,
          log_level: str = "info") -> None:
    """Serve until interrupted."""
    import uvicorn

    try:
        with socket.create_server((settings.host, port)):
            pass
    except OSError as e:
        raise GemmaError(f"cannot listen on {settings.host}:{port}: {e.strerror}") from None
    grammar_tokenizer(tokenizer, model.config.vocab_size)  # 1-2 s once, not on a request
    app = create_app(model, tokenizer, settings)
    where = f"http://{settings.host}:{port}"
    print(f"gemma-mlx serving {settings.model_id!r} at {where}/v1 (chat page: {where}/)",
          file=sys.stderr, flush=True)
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        print("warning: listening beyond loopback without --api-key", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=port, log_level=log_level,
                timeout_graceful_shutdown=5)
