"""Images to pixel_values as Gemma3Processor makes them: RGB, bilinear squash, x/127.5 - 1, P&S."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import GemmaError

ImageInput = str | Path | Image.Image
# Decompression-bomb cap: a 100 MP photo is 300 MB as RGB; PIL's own limit is 89 MP (warning)
# and 179 MP (error), and a crafted PNG can claim gigapixels in a few KB.
MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class PanAndScan:
    """Gemma3Processor's pan-and-scan defaults (null in the released preprocessor_config)."""

    min_crop_size: int = 256
    max_num_crops: int = 4
    min_ratio_to_activate: float = 1.2


def load_image(src: ImageInput) -> Image.Image:
    """An RGB PIL image, as transformers makes it.

    Files (transformers' load_image): size checked before decoding, turned upright by their
    EXIF orientation, then converted to RGB (transparency dropped). PIL images (the processor's
    convert_to_rgb): transparency composited onto white, orientation taken as given.
    """
    if isinstance(src, Image.Image):
        return to_rgb(src)
    path = Path(src).expanduser()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            if img.width * img.height > MAX_PIXELS:
                raise GemmaError(
                    f"{path}: {img.width}x{img.height} is {img.width * img.height / 1e6:.0f} "
                    f"megapixels, over the {MAX_PIXELS // 1_000_000} MP limit for one image")
            img.load()
    except FileNotFoundError:
        raise GemmaError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise GemmaError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise GemmaError(f"{path}: not an image format Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise GemmaError(f"{path}: refused as a possible decompression bomb ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data
        raise GemmaError(f"{path}: cannot decode the image ({e}); is the file complete?") from None
    return ImageOps.exif_transpose(img).convert("RGB")


def to_rgb(img: Image.Image) -> Image.Image:
    """transformers' convert_to_rgb: transparency is composited onto white."""
    if img.mode == "RGB":
        return img
    if "A" in img.getbands() or img.info.get("transparency") is not None:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def pan_and_scan(img: Image.Image, p: PanAndScan = PanAndScan()) -> list[Image.Image]:
    """Crops of a wide or tall image (none for one close to square), transformers' rule."""
    w, h = img.size
    if w >= h:
        if w / h < p.min_ratio_to_activate:
            return []
        n_w = min(math.floor(w / p.min_crop_size), math.floor(w / h + 0.5))
        n_w, n_h = min(p.max_num_crops, max(2, n_w)), 1
    else:
        if h / w < p.min_ratio_to_activate:
            return []
        n_h = min(math.floor(h / p.min_crop_size), math.floor(h / w + 0.5))
        n_w, n_h = 1, min(p.max_num_crops, max(2, n_h))
    cw, ch = math.ceil(w / n_w), math.ceil(h / n_h)
    if min(cw, ch) < p.min_crop_size:
        return []
    # Slicing semantics: the last crop is cut at the image edge, never padded.
    return [img.crop((x, y, min(x + cw, w), min(y + ch, h)))
            for y in range(0, ch * n_h, ch) for x in range(0, cw * n_w, cw)]


def to_pixels(img: Image.Image, size: int) -> np.ndarray:
    """[3, size, size] float32 in [-1, 1]: bilinear squash, then (x / 255 - 0.5) / 0.5."""
    resized = np.asarray(img.resize((size, size), Image.Resampling.BILINEAR))
    x = (resized.astype(np.float64) * (1 / 255)).astype(np.float32)  # rescale as in HF
    return ((x - np.float32(0.5)) / np.float32(0.5)).transpose(2, 0, 1)


def process_images(
    images: list[ImageInput], size: int = 896, pan_and_scan_options: PanAndScan | None = None,
) -> tuple[np.ndarray, list[int]]:
    """pixel_values [N, 3, size, size] and the crop count of each image.

    With pan-and-scan each image contributes itself, then its crops.
    """
    pixels, crops = [], []
    for src in images:
        img = load_image(src)
        extra = pan_and_scan(img, pan_and_scan_options) if pan_and_scan_options else []
        pixels.extend(to_pixels(im, size) for im in [img, *extra])
        crops.append(len(extra))
    if not pixels:
        return np.zeros((0, 3, size, size), np.float32), []
    return np.stack(pixels), crops
