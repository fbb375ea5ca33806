"""Generate text with the Python API: the embedded default model, or any path or repo given."""

from __future__ import annotations

import sys

from gemma_mlx import load, stream_generate
from gemma_mlx.formats.default_model import ensure_default_model


def main() -> None:
    model_path = sys.argv[1] if len(sys.argv) > 1 else ensure_default_model()
    model, tokenizer = load(model_path)
    for response in stream_generate(
        model, tokenizer, "The three primary colours are", max_tokens=24, temperature=0.0
    ):
        print(response.text, end="", flush=True)
    print(
        f"\n{response.prompt_tps:.1f} prompt tok/s, {response.generation_tps:.1f} tok/s, "
        f"peak {response.peak_memory:.2f} GB"
    )


if __name__ == "__main__":
    main()
