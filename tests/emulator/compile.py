"""Turns MLX's generated Metal source into a C++ shared library: preprocessing, launcher, g++."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CXX = os.environ.get("CXX", "g++")
FLAGS = [
    "-std=c++17",
    "-O1",
    "-shared",
    "-fPIC",
    "-fvisibility=hidden",
    "-fno-gnu-unique",
    "-fno-threadsafe-statics",
    "-fstack-clash-protection",
    "-pipe",
    *shlex.split(os.environ.get("MSL_EMU_CXXFLAGS", "")),  # e.g. -DMSL_EMU_UCONTEXT
]

_METAL_INCLUDE = re.compile(r"^[ \t]*#include\s*<metal_\w+>[ \t]*$", re.M)
_INSTANTIATION = re.compile(
    r"^template \[\[host_name\(\"(\w+)\"\)\]\] \[\[kernel\]\] "
    r"decltype\((\w+)(<.*>)\) \w+<.*>;$",
    re.M,
)
# A statement-level `threadgroup T x;`, `threadgroup T x[N];` or `threadgroup T x[N][M];`.
_TG_DECL = re.compile(
    r"(?:^|(?<=[;{}]))(?P<ws>[ \t]*)threadgroup\s+(?P<type>[A-Za-z_][\w:<>, ]*?)"
    r"\s+(?P<name>[A-Za-z_]\w*)\s*(?P<dims>(?:\[[^\[\];]+\]\s*)*);",
    re.M,
)
_ATTRIBUTE = re.compile(r"\[\[\s*\w+(?:\s*\([^()]*\))?\s*\]\]")
_BUFFER_PARAM = re.compile(
    r"^\s*(?P<type>.+?)\s*(?P<ref>[*&])\s*(?P<name>\w+)\s*"
    r"\[\[buffer\((?P<index>\d+)\)\]\]"
)
_ATTR_PARAM = re.compile(r"^\s*(?P<type>\w+)\s+(?P<name>\w+)\s*\[\[(?P<attr>\w+)\]\]")


class EmulatorError(RuntimeError):
    """A kernel failed to compile or run in the emulator (the message says why)."""


@dataclass(frozen=True)
class Param:
    """One kernel parameter: a buffer (`index` >= 0) or a thread attribute."""

    type: str
    name: str
    ref: str = ""
    index: int = -1


def parse_signature(generated: str, kname: str) -> list[Param]:
    """The parameters of `[[kernel]] void <kname>(...)` in MLX's generated text."""
    start = generated.index(f"[[kernel]] void {kname}(\n") + len(f"[[kernel]] void {kname}(\n")
    end = generated.index(") {\n", start)
    params = []
    for line in generated[start : end + 1].split("\n"):
        if m := _BUFFER_PARAM.match(line):
            params.append(Param(m["type"], m["name"], m["ref"], int(m["index"])))
        elif m := _ATTR_PARAM.match(line):
            params.append(Param(m["type"], m["attr"]))
    return params


def _rewrite_tg(text: str) -> str:
    counter = iter(range(1 << 30))

    def repl(m: re.Match) -> str:
        dims = "".join(m["dims"].split())
        decl = (
            f"{m['ws']}auto& {m['name']} = "
            f"::msl_emu::tg_var<{m['type'].strip()}{dims}, {next(counter)}>();"
        )
        return decl + "\n" * m.group(0).count("\n")  # keep line numbers

    return _TG_DECL.sub(repl, text)


def preprocess(generated: str) -> str:
    """Generated Metal text -> C++ with the same line numbers (see msl_emu.h for the macros)."""
    text = _METAL_INCLUDE.sub("", generated)
    text = _INSTANTIATION.sub("", text)
    text = _rewrite_tg(text)
    return _ATTRIBUTE.sub("", text)


def launcher(generated: str, kname: str) -> str:
    """C++ that calls the kernel for the current fiber: buffers cast, attributes from its ids."""
    inst = _INSTANTIATION.search(generated)
    call = kname + (inst.group(3) if inst else "")
    args = []
    for p in parse_signature(generated, kname):
        if p.index < 0:
            args.append(f"ids.{p.name}")
        elif p.ref == "&":
            args.append(f"*({p.type}*)bufs[{p.index}]")
        else:
            args.append(f"({p.type}*)bufs[{p.index}]")
    sep = ",\n      "
    return f"""
static void msl_emu_body(void** bufs) {{
  const ::msl_emu::Ids& ids = ::msl_emu::ids();
  (void)ids;
  {call}(
      {sep.join(args)});
}}
extern "C" __attribute__((visibility("default"))) int msl_emu_run(
    void** bufs, const size_t* sizes, const size_t* aligns, int nbuf, const char* const* names,
    const unsigned* grid, const unsigned* tg, char* stacks, size_t stack_slot, char* err,
    int errlen) {{
  return ::msl_emu::launch(msl_emu_body, bufs, sizes, aligns, nbuf, names, grid, tg, stacks,
                           stack_slot, err, errlen);
}}
"""


def translation_unit(generated: str, kname: str) -> str:
    """The whole C++ file; `#line` makes compiler messages and barrier lines match `generated`."""
    return (
        f'#include "msl_emu.h"\n#line 1 "{kname}.metal"\n{preprocess(generated)}\n'
        f'#line 1 "{kname}.launcher"\n{launcher(generated, kname)}'
    )


def cache_dir() -> Path:
    """$MSL_EMU_CACHE, else $XDG_CACHE_HOME (or ~/.cache)/gemma-mlx/emulator."""
    if env := os.environ.get("MSL_EMU_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gemma-mlx" / "emulator"


@functools.cache
def _headers_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(HERE.glob("*.h")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


_by_key: dict[str, ctypes.CDLL] = {}
_by_text: dict[str, ctypes.CDLL] = {}  # skips preprocessing and hashing on repeated launches


def build(generated: str, kname: str) -> ctypes.CDLL:
    """Compile (or reuse, cached by hash of everything that goes in) and load the kernel."""
    if generated in _by_text:
        return _by_text[generated]
    tu = translation_unit(generated, kname)
    key = hashlib.sha256("\0".join([tu, _headers_digest(), CXX, *FLAGS]).encode()).hexdigest()
    if key in _by_key:
        return _by_key[key]
    out_dir = cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    so = out_dir / f"{key[:32]}.so"
    if not so.exists():
        with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
            cpp = Path(tmp) / f"{kname[:100]}.cpp"
            cpp.write_text(tu)
            tmp_so = Path(tmp) / "kernel.so"
            res = subprocess.run(
                [CXX, *FLAGS, f"-I{HERE}", str(cpp), "-o", str(tmp_so)],
                capture_output=True,
                text=True,
            )
            if res.returncode != 0:
                raise EmulatorError(f"g++ failed to compile {kname}:\n{res.stderr}")
            os.replace(tmp_so, so)  # atomic: parallel test workers may race
    lib = ctypes.CDLL(str(so))
    lib.msl_emu_run.restype = ctypes.c_int
    _by_key[key] = _by_text[generated] = lib
    return lib
