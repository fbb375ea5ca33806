"""Prompts with images and video frames: placeholders expanded as Gemma3Processor does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import GemmaError
from .media.image_processing import ImageInput, PanAndScan, process_images, to_pixels
from .media.video import Video, decode_video, load_video
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


VIDEO_PLACEHOLDER = "<video>"  # where a video's frames go in a text prompt (else: first)
VideoInput = str | Path | Video


def video_block(video: Video) -> str:
    """Each frame as an image placeholder after its timestamp: "Frame at 00:03:<img>..."."""
    return "".join(f"{label}{IMAGE_PLACEHOLDER}" for label in video.labels())


def with_video_markers(messages: list[dict]) -> list[dict]:
    """Chat messages with each {"type": "video"} part as the text marker any template keeps."""
    def part(p: Any) -> Any:
        if isinstance(p, dict) and p.get("type") == "video":
            return {"type": "text", "text": VIDEO_PLACEHOLDER}
        return p

    return [{**m, "content": [part(p) for p in m["content"]]}
            if isinstance(m.get("content"), list) else m for m in messages]


def place_videos(prompt: str, n_images: int, videos: list[Video]) -> tuple[str, list]:
    """The prompt with each video's frames at its marker (videos first when it has none), and
    where each image placeholder's pixels come from, in order: an image index, or
    (video index, frame index)."""
    prompt = with_image_placeholders(prompt, n_images)
    if prompt.count(IMAGE_PLACEHOLDER) != n_images:
        raise GemmaError(f"the prompt has {prompt.count(IMAGE_PLACEHOLDER)} {IMAGE_PLACEHOLDER} "
                         f"placeholder(s) for {n_images} image(s)")
    if videos and VIDEO_PLACEHOLDER not in prompt:
        bos = "<bos>" if prompt.startswith("<bos>") else ""
        prompt = bos + VIDEO_PLACEHOLDER * len(videos) + prompt[len(bos):]
    parts = prompt.split(VIDEO_PLACEHOLDER)
    if len(parts) - 1 != len(videos):
        raise GemmaError(f"the prompt has {len(parts) - 1} {VIDEO_PLACEHOLDER} marker(s) for "
                         f"{len(videos)} video(s)")
    out, order, image = [], [], 0
    for i, part in enumerate(parts):
        n = part.count(IMAGE_PLACEHOLDER)
        order.extend(range(image, image + n))
        image += n
        out.append(part)
        if i < len(videos):
            out.append(video_block(videos[i]))
            order.extend((i, k) for k in range(len(videos[i].times)))
    return "".join(out), order


def build_video_inputs(
    tokenizer: Any, prompt: str, images: list[ImageInput], videos: list[VideoInput], *,
    image_size: int, tokens_per_image: int, context: int, fps: float = 1.0,
    max_frames: int = 8, pan_and_scan: bool | PanAndScan = False,
) -> tuple[list[int], np.ndarray]:
    """build_inputs with videos: token ids and pixel_values [N, 3, S, S] in prompt order.

    Only the videos' timing is read before the prompt's length is checked against `context`
    (GemmaError with the numbers); frames are decoded after, never cropped.
    """
    plans = [v if isinstance(v, Video) else load_video(v, fps, max_frames, decode=False)
             for v in videos]
    text, order = place_videos(prompt, len(images), plans)
    options = PanAndScan() if pan_and_scan is True else (pan_and_scan or None)
    image_pixels, crops = process_images(images, image_size, options)
    text = expand_image_placeholders(
        text, [0 if isinstance(o, tuple) else crops[o] for o in order], tokens_per_image)
    ids = tokenizer.encode(text, add_special_tokens=not text.startswith("<bos>"))
    check_video_budget(tokenizer, ids, plans, tokens_per_image, context)
    decoded = [decode_video(v) for v in plans]
    starts = np.cumsum([0] + [1 + c for c in crops])
    rows = []
    for o in order:
        if isinstance(o, tuple):
            rows.append(to_pixels(decoded[o[0]].frames[o[1]], image_size)[None])
        else:
            rows.append(image_pixels[starts[o] : starts[o + 1]])
    return ids, np.concatenate(rows) if rows else np.zeros((0, 3, image_size, image_size),
                                                            np.float32)


def check_video_budget(tokenizer: Any, ids: list[int], videos: list[Video],
                       tokens_per_image: int, context: int) -> None:
    """GemmaError, before any frame is decoded or encoded, when the prompt leaves no room."""
    if len(ids) < context:
        return
    n = sum(len(v.times) for v in videos)
    frame_tokens = sum(len(tokenizer.encode(expand_image_placeholders(
        video_block(v), [0] * len(v.times), tokens_per_image), add_special_tokens=False))
        for v in videos)
    per, other = frame_tokens / max(n, 1), len(ids) - frame_tokens
    fit = max(0, int((context - 1 - other) // per)) if n else 0
    raise GemmaError(
        f"the prompt needs {len(ids):,} tokens ({n} video frame(s) x ~{per:.0f} tokens + "
        f"{other:,} other), over this model's context of {context:,}; at most {fit} frame(s) "
        "fit: lower --max-frames or --video-fps")
