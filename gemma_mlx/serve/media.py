"""Images in requests: base64 data URLs, or files under a directory the operator allowed."""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image

from ..errors import GemmaError

MAX_PIXELS = 64_000_000  # a decompression bomb is refused before it is decoded


def _open(data: bytes, where: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise GemmaError(f"{where}: the image is {image.width}x{image.height}, more than "
                             f"{MAX_PIXELS:,} pixels")
        image.load()
    except GemmaError:
        raise
    except Exception as e:  # PIL raises many kinds for bad data
        raise GemmaError(f"{where}: not a readable image ({e})") from None
    return image.convert("RGB")


def decode_image(url: str, media_dir: str | None, where: str) -> Image.Image:
    """The image at a data URL, or at a file:// path inside `media_dir`; never fetched."""
    if url.startswith("data:"):
        head, _, payload = url.partition(",")
        if not head.endswith(";base64") or not head[5:].startswith("image/"):
            raise GemmaError(f"{where}: a data URL must be data:image/...;base64,...")
        try:
            return _open(base64.b64decode(payload, validate=True), where)
        except binascii.Error:
            raise GemmaError(f"{where}: the data URL is not valid base64") from None
    parsed = urlparse(url)
    if parsed.scheme == "file" and media_dir is not None:
        root = Path(media_dir).resolve()
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(root):
            raise GemmaError(f"{where}: {path} is outside the allowed --media-dir {root}")
        if not path.is_file():
            raise GemmaError(f"{where}: no file {path}")
        return _open(path.read_bytes(), where)
    if parsed.scheme == "file":
        raise GemmaError(f"{where}: local files are not read unless the server was started "
                         "with --media-dir DIR")
    raise GemmaError(f"{where}: the server does not fetch URLs; send the image as a base64 "
                     "data URL")
