"""Safetensors headers checked before MLX reads a byte of tensor data: dtypes, shapes and
offsets must describe exactly the bytes the file has."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import GemmaError

MAX_HEADER = 100 << 20  # the safetensors library's own limit
MAX_JSON = 64 << 20  # config, index and tokenizer JSON files
# Element sizes of the dtypes MLX can load (no float8).
ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2, "U32": 4,
            "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8}


def read_json(path: Path, what: str = "JSON") -> Any:
    """A JSON file, size-capped, with any decoding problem as a GemmaError naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON:
            raise GemmaError(f"{path}: {size:,} bytes, over the {MAX_JSON >> 20} MB limit for "
                             f"{what}")
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise GemmaError(f"{path}: no such file") from None
    except OSError as e:
        raise GemmaError(f"{path}: cannot be read ({e.strerror})") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError too
        raise GemmaError(f"{path}: not valid {what} ({str(e)[:200]})") from None


def check_header(path: Path) -> dict[str, dict[str, Any]]:
    """The tensor entries of a .safetensors file, after checking every one against the file."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 2 <= n <= min(MAX_HEADER, size - 8):
                raise GemmaError(f"{path}: not a safetensors file (header of {n:,} bytes in a "
                                 f"file of {size:,}); is it complete?")
            raw = f.read(n)
    except OSError as e:
        raise GemmaError(f"{path}: cannot be read ({e.strerror})") from None
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise GemmaError(f"{path}: safetensors header is not valid JSON ({str(e)[:200]})") from None
    if not isinstance(header, dict):
        raise GemmaError(f"{path}: safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}  # MLX writes null
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise GemmaError(f"{path}: safetensors __metadata__ must map strings to strings")
    data_size = size - 8 - n
    spans = []
    for name, e in header.items():
        spans.append((*_entry(path, name, e, data_size), name))
    spans.sort()
    for (_, end, a), (start, _, b) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise GemmaError(f"{path}: tensors {a!r} and {b!r} overlap")
    return header


def _entry(path: Path, name: str, e: Any, data_size: int) -> tuple[int, int]:
    where = f"{path}: tensor {name!r}"
    if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
        raise GemmaError(f"{where}: needs exactly dtype, shape and data_offsets")
    dtype, shape, offsets = e["dtype"], e["shape"], e["data_offsets"]
    if dtype not in ITEMSIZE:
        raise GemmaError(f"{where}: dtype {dtype!r} is not one MLX can load "
                         f"({', '.join(ITEMSIZE)})")
    if not isinstance(shape, list) or not all(_nat(d) for d in shape):
        raise GemmaError(f"{where}: shape {shape!r} is not a list of sizes")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_nat, offsets))
            or offsets[0] > offsets[1]):
        raise GemmaError(f"{where}: data_offsets {offsets!r} is not [begin, end]")
    begin, end = offsets
    want = math.prod(shape) * ITEMSIZE[dtype]
    if end - begin != want:
        raise GemmaError(f"{where}: {dtype} {shape} needs {want:,} bytes, data_offsets give "
                         f"{end - begin:,}")
    if end > data_size:
        raise GemmaError(f"{where}: data ends at byte {end:,} of a {data_size:,}-byte data "
                         "section; is the file complete?")
    return begin, end


def _nat(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def shard_names(index: Path) -> list[str]:
    """The shard file names a model.safetensors.index.json lists, each a plain file name."""
    data = read_json(index, "safetensors index")
    wmap = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(wmap, dict) or not wmap:
        raise GemmaError(f"{index}: weight_map must be a non-empty object")
    names = set()
    for key, file in wmap.items():
        if not isinstance(file, str) or Path(file).name != file or file in ("", ".", ".."):
            raise GemmaError(f"{index}: weight_map[{key!r}] = {file!r} is not a file name in "
                             "this directory")
        names.add(file)
    return sorted(names)
