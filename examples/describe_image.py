"""Ask about an image with the Python API.

    python examples/describe_image.py photo.jpg [google/gemma-3-4b-it]

Without a model, the offline vision demo (the 270M with a random-weight vision tower) runs
the whole image path; its answers ignore the picture.
"""

from __future__ import annotations

import sys

from gemma_mlx import load, stream_generate
from gemma_mlx.formats.default_model import ensure_vision_demo_model


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    image = sys.argv[1]
    model, tokenizer = load(sys.argv[2] if len(sys.argv) > 2 else ensure_vision_demo_model())
    messages = [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": "Describe this image in one sentence."}]}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False)
    for response in stream_generate(model, tokenizer, prompt, images=[image], max_tokens=48):
        print(response.text, end="", flush=True)
    print(f"\n{response.prompt_tokens} prompt tokens ({response.prompt_tps:.1f}/s, vision "
          f"included), {response.generation_tps:.1f} tok/s, peak {response.peak_memory:.2f} GB")


if __name__ == "__main__":
    main()
