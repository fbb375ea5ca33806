"""A strict GGUF container reader: every declared count, length and offset is checked against
the file's real size before anything is allocated; tensor data stays memory-mapped."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GemmaError

MAGIC = b"GGUF"
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_KEY = 1 << 16  # bytes of one metadata key
MAX_STRING = 1 << 26  # bytes of one string value (a chat template is ~10 KB)
MAX_ELEMENTS = 1 << 44  # elements of one tensor: far beyond any 27B matrix (2^30)
MAX_NESTING = 2  # arrays of arrays of scalars at most
MAX_ALIGNMENT = 1 << 16

# GGUF value types: id -> (name, struct code, numpy dtype); 8 = string, 9 = array.
_SCALARS = {
    0: ("uint8", "B", np.uint8), 1: ("int8", "b", np.int8), 2: ("uint16", "H", np.uint16),
    3: ("int16", "h", np.int16), 4: ("uint32", "I", np.uint32), 5: ("int32", "i", np.int32),
    6: ("float32", "f", np.float32), 7: ("bool", "B", np.uint8), 10: ("uint64", "Q", np.uint64),
    11: ("int64", "q", np.int64), 12: ("float64", "d", np.float64),
}  # fmt: skip
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry: `shape` is row-major (slowest axis first, the reverse of GGUF's
    dims); `offset` is absolute in the file."""

    name: str
    shape: tuple[int, ...]
    type: str
    offset: int
    nbytes: int


@dataclass
class GGUFFile:
    """A parsed GGUF header and its memory-mapped tensor data."""

    path: Path
    version: int
    fields: dict[str, Any]
    tensors: list[TensorInfo]
    _buffer: Any = field(default=None, repr=False)

    def raw(self, t: TensorInfo) -> np.ndarray:
        """The tensor's bytes as uint8 [rows, bytes per row], a view of the mapped file."""
        flat = np.frombuffer(self._buffer, np.uint8, t.nbytes, t.offset)
        rows = int(np.prod(t.shape[:-1])) if len(t.shape) > 1 else 1
        return flat.reshape(rows, -1)


class _Cursor:
    """Reads little-endian values from a buffer, refusing to go past its end."""

    def __init__(self, buf, path: Path):
        self.buf, self.pos, self.size, self.path = buf, 0, len(buf), path

    def fail(self, what: str) -> GemmaError:
        return GemmaError(f"{self.path}: not a valid GGUF file: {what} (at byte {self.pos})")

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or n > self.size - self.pos:
            raise self.fail(f"{what} needs {n:,} bytes but the file has "
                            f"{self.size - self.pos:,} left")
        view = memoryview(self.buf)[self.pos : self.pos + n]
        self.pos += n
        return view

    def scalar(self, code: str, what: str) -> Any:
        return struct.unpack("<" + code, self.take(struct.calcsize(code), what))[0]

    def string(self, what: str, cap: int = MAX_STRING) -> str:
        n = self.scalar("Q", f"{what} length")
        if n > cap:
            raise self.fail(f"{what} declares {n:,} bytes (limit {cap:,})")
        raw = self.take(n, what)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not UTF-8") from None


def _value(c: _Cursor, kind: int, key: str, depth: int = 0) -> Any:
    if kind in _SCALARS:
        name, code, _ = _SCALARS[kind]
        v = c.scalar(code, f"{key!r} ({name})")
        if kind == 7:
            if v not in (0, 1):
                raise c.fail(f"{key!r}: bool {v} is neither 0 nor 1")
            return bool(v)
        return v
    if kind == _STRING:
        return c.string(repr(key))
    if kind != _ARRAY:
        raise c.fail(f"{key!r} has unknown value type {kind}")
    if depth >= MAX_NESTING:
        raise c.fail(f"{key!r}: arrays nested deeper than {MAX_NESTING}")
    item = c.scalar("I", f"{key!r} array type")
    count = c.scalar("Q", f"{key!r} array count")
    # Every element takes at least one byte (a string at least its 8-byte length), so a
    # count beyond the bytes left is a lie: refuse it before building anything.
    least = 8 if item in (_STRING, _ARRAY) else struct.calcsize(_SCALARS.get(item, ("", "B"))[1])
    if count * least > c.size - c.pos:
        raise c.fail(f"{key!r} declares {count:,} elements, more than the file can hold")
    if item in _SCALARS:
        name, code, dtype = _SCALARS[item]
        raw = c.take(count * np.dtype(dtype).itemsize, f"{key!r} ({count:,} × {name})")
        arr = np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"))
        return arr.astype(bool) if item == 7 else arr
    if item == _STRING:
        return [c.string(f"{key!r}[{i}]") for i in range(count)]
    if item == _ARRAY:
        return [_value(c, _ARRAY, f"{key}[{i}]", depth + 1) for i in range(count)]
    raise c.fail(f"{key!r} has arrays of unknown value type {item}")


@lru_cache(maxsize=1)
def _tensor_types() -> dict[int, tuple[str, int, int]]:
    """GGML type id -> (name, block size, bytes per block), from the gguf package."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    return {int(t): (t.name, *GGML_QUANT_SIZES[t]) for t in GGMLQuantizationType
            if t in GGML_QUANT_SIZES}


def read_header(path: str | Path) -> GGUFFile:
    """Parse a GGUF file's metadata and tensor table; the data stays mapped, unread."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            if size < 24:
                raise GemmaError(f"{path}: not a GGUF file ({size} bytes)")
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise GemmaError(f"{path}: cannot be read ({e.strerror})") from None
    c = _Cursor(buf, path)
    if bytes(c.take(4, "magic")) != MAGIC:
        raise GemmaError(f"{path}: not a GGUF file (no GGUF magic)")
    version = c.scalar("I", "version")
    if version not in (2, 3):
        swapped = struct.unpack(">I", struct.pack("<I", version))[0]
        hint = " (a big-endian file)" if swapped in (2, 3) else ""
        raise c.fail(f"version {version}{hint} is not supported (2 or 3)")
    n_tensors = c.scalar("Q", "tensor count")
    n_kv = c.scalar("Q", "metadata count")
    # The smallest metadata entry is 13 bytes, the smallest tensor entry 32.
    if n_kv * 13 + n_tensors * 32 > size - c.pos:
        raise c.fail(f"declares {n_kv:,} metadata entries and {n_tensors:,} tensors, more "
                     "than the file can hold")
    fields: dict[str, Any] = {}
    for _ in range(n_kv):
        key = c.string("metadata key", MAX_KEY)
        if key in fields:
            raise c.fail(f"metadata key {key!r} appears twice")
        fields[key] = _value(c, c.scalar("I", f"{key!r} type"), key)
    alignment = fields.get("general.alignment", 32)
    if (not isinstance(alignment, int) or not 0 < alignment <= MAX_ALIGNMENT
            or alignment & (alignment - 1)):
        raise c.fail(f"general.alignment {alignment!r} is not a power of two up to "
                     f"{MAX_ALIGNMENT}")
    types = _tensor_types()
    entries = []
    for _ in range(n_tensors):
        name = c.string("tensor name", MAX_KEY)
        n_dims = c.scalar("I", f"{name!r} dimension count")
        if not 1 <= n_dims <= MAX_DIMS:
            raise c.fail(f"tensor {name!r} has {n_dims} dimensions (1 to {MAX_DIMS})")
        dims = [c.scalar("Q", f"{name!r} dimension") for _ in range(n_dims)]
        kind = c.scalar("I", f"{name!r} type")
        offset = c.scalar("Q", f"{name!r} offset")
        entries.append((name, dims, kind, offset))
    data_start = -(-c.pos // alignment) * alignment
    tensors, seen = [], set()
    for name, dims, kind, offset in entries:
        tensors.append(_tensor(c, name, dims, kind, offset, types, alignment, data_start))
        if name in seen:
            raise c.fail(f"tensor {name!r} appears twice")
        seen.add(name)
    spans = sorted((t.offset, t.offset + t.nbytes, t.name) for t in tensors)
    for (_, end, a), (start, _, b) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise c.fail(f"tensors {a!r} and {b!r} overlap")
    return GGUFFile(path, version, fields, tensors, buf)


def _tensor(c: _Cursor, name: str, dims: list[int], kind: int, offset: int,
            types: dict, alignment: int, data_start: int) -> TensorInfo:
    if kind not in types:
        raise c.fail(f"tensor {name!r} has unknown type {kind}")
    type_name, block, block_bytes = types[kind]
    if any(d == 0 for d in dims) or int(np.prod(dims, dtype=object)) > MAX_ELEMENTS:
        raise c.fail(f"tensor {name!r} has dimensions {dims}: empty or over "
                     f"{MAX_ELEMENTS:,} elements")
    if dims[0] % block:
        raise c.fail(f"tensor {name!r}: rows of {dims[0]} are not whole {type_name} "
                     f"blocks of {block}")
    nbytes = int(np.prod(dims, dtype=object)) // block * block_bytes
    if offset % alignment:
        raise c.fail(f"tensor {name!r}: offset {offset} is not aligned to {alignment}")
    if data_start + offset + nbytes > c.size:
        raise c.fail(f"tensor {name!r} ({nbytes:,} bytes at {data_start + offset:,}) runs "
                     f"past the end of the file ({c.size:,} bytes); is it complete?")
    shape = tuple(int(d) for d in reversed(dims))
    return TensorInfo(name, shape, type_name, data_start + offset, nbytes)
