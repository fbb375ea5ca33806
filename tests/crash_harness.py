"""Runs a gemma-mlx command that stops inside one chosen write, for a test to SIGKILL it."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

import gemma_mlx  # noqa: F401  (first: binds MLX to OpenBLAS)

# isort: split
import mlx.core as mx

MARKER = "CRASH-HARNESS: stopped"
# CRASH_AT="kind:n:fraction": the n-th call (from 1) of that kind does `fraction` of its work
# (0.5: half the bytes; 1: all of it), prints MARKER and waits to be killed.
# CRASH_TRACE=path: write the kind of every call, in order, to that JSON file at exit.
_AT = os.environ.get("CRASH_AT")
_TRACE = os.environ.get("CRASH_TRACE")
_calls: list[str] = []
real_save_safetensors = mx.save_safetensors
real_write_bytes = pathlib.Path.write_bytes
real_os_write = os.write


def _stop() -> None:
    print(MARKER, flush=True)
    time.sleep(120)
    os._exit(99)  # the test never killed us: exit rather than linger


def _hook(kind: str, real, partial):
    """`real` wrapped: counted, and at the chosen call `partial(fraction, *args)` then stop."""

    def wrapper(*args, **kwargs):
        _calls.append(kind)
        if _AT:
            want, n, fraction = _AT.split(":")
            if want == kind and int(n) == _calls.count(kind):
                if float(fraction) >= 1:
                    real(*args, **kwargs)
                else:
                    partial(float(fraction), *args, **kwargs)
                _stop()
        return real(*args, **kwargs)

    return wrapper


def _cut(data, fraction: float):
    return data[: int(len(data) * fraction)]


def _partial_safetensors(fraction, file, arrays, metadata=None):
    """The first part of the bytes the real call would write, at the same path."""
    fd, full = tempfile.mkstemp(suffix=".safetensors")
    os.close(fd)
    real_save_safetensors(full, arrays, metadata=metadata)
    data = pathlib.Path(full).read_bytes()
    os.unlink(full)
    path = str(file) if str(file).endswith(".safetensors") else f"{file}.safetensors"
    pathlib.Path(path).write_bytes(_cut(data, fraction))


def _partial_text(fraction, self, data, *args, **kwargs):
    real_write_bytes(self, _cut(data.encode(kwargs.get("encoding") or "utf-8"), fraction))


def _partial_bytes(fraction, self, data):
    real_write_bytes(self, _cut(data, fraction))


def _partial_write(fraction, fd, data):
    real_os_write(fd, _cut(data, fraction))


def _partial_copy(fraction, src, dst, **kwargs):
    real_write_bytes(pathlib.Path(dst), _cut(pathlib.Path(src).read_bytes(), fraction))


def _partial_rmtree(fraction, path, *args, **kwargs):
    files = sorted(p for p in pathlib.Path(path).rglob("*") if p.is_file())
    for p in _cut(files, fraction):
        p.unlink()


def _before_replace(fraction, src, dst):
    """A rename is all or nothing: any fraction below 1 stops just before it."""


def _install() -> None:
    """Wrap the low-level writes the product code uses (only ever in the harness process)."""
    hooked_write = _hook("write", real_os_write, _partial_write)
    os.write = lambda fd, data: (hooked_write if fd > 2 else real_os_write)(fd, data)  # not stdio
    mx.save_safetensors = _hook("save_safetensors", mx.save_safetensors, _partial_safetensors)
    pathlib.Path.write_text = _hook("write_text", pathlib.Path.write_text, _partial_text)
    pathlib.Path.write_bytes = _hook("write_bytes", pathlib.Path.write_bytes, _partial_bytes)
    os.replace = _hook("replace", os.replace, _before_replace)
    shutil.copy2 = _hook("copy2", shutil.copy2, _partial_copy)
    shutil.rmtree = _hook("rmtree", shutil.rmtree, _partial_rmtree)


def _save_prompt_cache(model_dir: str, out: str, n_tokens: str) -> int:
    """Prefill n tokens of a fixed prompt and save the caches as a prompt cache."""
    from gemma_mlx.cache import save_prompt_cache
    from gemma_mlx.formats.loading import load

    model, _ = load(model_dir)
    cache = model.make_cache()
    ids = [2] + [(7 * i + 3) % 500 + 4 for i in range(int(n_tokens) - 1)]
    mx.eval(model(mx.array([ids]), cache=cache))
    save_prompt_cache(out, cache, {"tokens": ids})
    return 0


def main(argv: list[str]) -> int:
    """`prompt-cache MODEL OUT N`, or the arguments of `gemma-mlx`."""
    from gemma_mlx.formats import convert

    # The CLI has no shard-size flag, and a tiny fixture needs tiny shards to have several.
    shard_bytes = os.environ.get("CRASH_SHARD_BYTES")
    if shard_bytes:
        convert.convert.__kwdefaults__["max_shard_bytes"] = int(shard_bytes)
    try:
        if argv[0] == "prompt-cache":
            return _save_prompt_cache(*argv[1:])
        from gemma_mlx.cli import main as cli

        return cli(argv)
    finally:
        if _TRACE:
            with open(_TRACE, "w") as f:  # not through a hooked call
                json.dump(_calls, f)


if __name__ == "__main__":
    _install()
    sys.exit(main(sys.argv[1:]))
