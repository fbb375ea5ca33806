"""Prompts with images: placeholders expanded as Gemma3Processor does, then tokenized."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import GemmaError
from .media.image_processing import ImageInput, PanAndScan, process_images
from .text.chat_template import IMAGE_PLACEHOLDER

IMAGE_TOKEN = "<image_soft_token>"
END_OF_IMAGE = "<end_of_image>"


def image_sequence(tokens_per_image: int) -> str:
    return f"\n\n{IMAGE_PLACEHOLDER}{IMAGE_TOKEN * tokens_per_image}{END_OF_IMAGE}\n\n"


def expand_image_placeholders(text: str, num_crops: list[int], tokens_per_image: int) -> str:
    """Each `<start_of_image>` becomes the image's token sequence; with pan-and-scan crops,
    transformers' wording: "Here is the original image ... and here are some crops ..."."""
    parts = text.split(IMAGE_PLACEHOLDER)
    if len(parts) - 1 != len(num_crops):
        raise GemmaError(f"the prompt has {len(parts) - 1} {IMAGE_PLACEHOLDER} placeholder(s) "
                         f"for {len(num_crops)} image(s)")
    seq = image_sequence(tokens_per_image)
    out = [parts[0]]
    for crops, part in zip(num_crops, parts[1:], strict=True):
        if crops:
            out.append(f"Here is the original image {seq} and here are some crops to help you "
                       "see better " + " ".join([seq] * crops))
        else:
            out.append(seq)
        out.append(part)
    return "".join(out)


def with_image_placeholders(prompt: str, n_images: int) -> str:
    """A raw prompt without placeholders gets the images first, as in Google's examples."""
    if n_images and IMAGE_PLACEHOLDER not in prompt:
        bos = "<bos>" if prompt.startswith("<bos>") else ""
        return bos + IMAGE_PLACEHOLDER * n_images + prompt[len(bos):]
    return prompt


def build_inputs(
    tokenizer: Any, prompt: str, images: list[ImageInput], *, image_size: int,
    tokens_per_image: int, pan_and_scan: bool | PanAndScan = False,
) -> tuple[list[int], np.ndarray]:
    """Token ids (with <bos>) and pixel_values [N, 3, S, S] for a text prompt and its images."""
    options = PanAndScan() if pan_and_scan is True else (pan_and_scan or None)
    pixels, crops = process_images(images, image_size, options)
    text = expand_image_placeholders(with_image_placeholders(prompt, len(images)), crops,
                                     tokens_per_image)
    ids = tokenizer.encode(text, add_special_tokens=not text.startswith("<bos>"))
    return ids, pixels
