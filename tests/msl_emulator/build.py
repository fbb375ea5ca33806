"""Turns MLX's generated kernel text into a C++ shared library with a launcher, and runs it."""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess
from pathlib import Path

import numpy as np

from .signature import Param

HEADER = Path(__file__).with_name("msl_emu.h")
CXX = os.environ.get("CXX", "g++")
ERR_LEN = 4096

_THREADGROUP = re.compile(r"^(\s*)threadgroup\s+([\w:<>, ]+?)\s+(\w+)\s*((?:\[[^\]]+\])+)\s*;",
                          re.M)
_ATTRIBUTE = re.compile(r"\[\[[^\]]*\]\]")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    path = Path(base) / "gemma-mlx" / "msl-emulator"
    path.mkdir(parents=True, exist_ok=True)
    return path


def translate(text: str) -> str:
    """Metal -> C++: threadgroup arrays become shared, poisoned storage; attributes go."""
    lines = [ln for ln in text.splitlines() if not re.match(r"\s*#include\s*<metal_", ln)]
    lines = [ln for ln in lines if not ln.startswith("template [[host_name(")]
    text = "\n".join(lines)
    counter = iter(range(1 << 30))
    text = _THREADGROUP.sub(
        lambda m: f"{m[1]}auto& {m[3]} = ::msl::tg_var<{m[2]}{m[4]}, {next(counter)}>();", text
    )
    return _ATTRIBUTE.sub("", text)


def _argument(p: Param) -> str:
    if p.index < 0:
        return f"t.{p.name}"
    if p.by_value:
        return f"*({p.ctype}*)bufs[{p.index}]"
    return f"({p.ctype}*)bufs[{p.index}]"


def launcher(kname: str, params: list[Param], template_args: str) -> str:
    call = f"{kname}<{template_args}>" if template_args else kname
    args = ",\n      ".join(_argument(p) for p in params)
    return f"""
extern "C" int launch(void** bufs, const int* grid, const int* tg, char* err, int errlen) {{
  return ::msl::launch(grid, tg, [bufs](const ::msl::Ids& t) {{
    {call}(
      {args});
  }}, err, errlen);
}}
"""


def compile_library(cpp: str) -> ctypes.CDLL:
    """Compile (cached by content) and load; a compile error raises with g++'s message."""
    digest = hashlib.sha256((cpp + HEADER.read_text()).encode()).hexdigest()[:20]
    lib = cache_dir() / f"k_{digest}.so"
    if not lib.exists():
        src = lib.with_suffix(".cpp")
        src.write_text(f'#include "{HEADER}"\n{cpp}')
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        cmd = [CXX, "-std=c++17", "-O1", "-shared", "-fPIC", "-w", str(src), "-o", str(tmp)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"kernel does not compile:\n{proc.stderr[-4000:]}")
        os.replace(tmp, lib)
    return ctypes.CDLL(str(lib))


def run(lib: ctypes.CDLL, buffers: list[np.ndarray], grid, threadgroup) -> None:
    """Launch over the grid; buffers are written in place. Errors raise RuntimeError."""
    ptrs = (ctypes.c_void_p * len(buffers))(*[b.ctypes.data for b in buffers])
    err = ctypes.create_string_buffer(ERR_LEN)
    rc = lib.launch(ptrs, (ctypes.c_int * 3)(*grid), (ctypes.c_int * 3)(*threadgroup), err,
                    ERR_LEN)
    if rc:
        raise RuntimeError(f"[msl emulator] {err.value.decode()}")
