"""mx.distributed for gemma-mlx: the process group, data-parallel helpers, local ranks, and a
watchdog that turns a dead or missing peer into a clear error within a bounded time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten

from .errors import GemmaError

TIMEOUT_ENV = "GEMMA_MLX_DIST_TIMEOUT"  # seconds a rank waits for the others (default 120)
DEFAULT_TIMEOUT = 120.0
# Set by mlx.launch (ring, JACCL) or mpirun: a process started so must join a group, not go solo.
_LAUNCHED = ("MLX_RANK", "MLX_HOSTFILE", "MLX_JACCL_COORDINATOR", "OMPI_COMM_WORLD_SIZE")

_group: mx.distributed.Group | None = None
_dog: Watchdog | None = None


def timeout() -> float:
    """How long one wait for the other ranks may last ($GEMMA_MLX_DIST_TIMEOUT)."""
    raw = os.environ.get(TIMEOUT_ENV)
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        raise GemmaError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds") from None
    if not value > 0:
        raise GemmaError(f"{TIMEOUT_ENV}={raw!r}: must be positive")
    return value


class Watchdog:
    """A tiny child process that ends this one when a wait passes its deadline.

    A thread cannot do it: the ring backend's connect holds the GIL while it waits for a peer
    that never comes. The child prints the message, sends SIGTERM (then SIGKILL), and exits by
    itself when this process ends (its stdin closes).
    """

    _CODE = r"""
import os, select, signal, sys, time
parent, deadline, what, buf = int(sys.argv[1]), None, "", b""
while True:
    wait = None if deadline is None else max(0.0, deadline - time.monotonic())
    if select.select([0], [], [], wait)[0]:
        chunk = os.read(0, 65536)
        if not chunk:
            sys.exit(0)
        *lines, buf = (buf + chunk).split(b"\n")
        for line in lines:
            secs, _, what = line.decode().partition(" ")
            deadline = None if secs == "-" else time.monotonic() + float(secs)
    elif deadline is not None:
        sys.stderr.write(what + "\n")
        sys.stderr.flush()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(parent, sig)
            except ProcessLookupError:
                sys.exit(0)
            time.sleep(3)
        sys.exit(0)
"""

    def __init__(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", self._CODE, str(os.getpid())],
                                      stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)

    def arm(self, seconds: float, message: str) -> None:
        self._send(f"{seconds:.3f} {' '.join(message.split())}")

    def disarm(self) -> None:
        self._send("- ")

    def _send(self, line: str) -> None:
        self._proc.stdin.write(line.encode() + b"\n")
        self._proc.stdin.flush()


def _label(group: mx.distributed.Group | None) -> str:
    return (f"rank {group.rank()} of {group.size()}" if group
            else f"rank {os.environ.get('MLX_RANK', '?')}")


@contextmanager
def waiting(what: str, group: mx.distributed.Group | None, extra: float = 0.0) -> Iterator[None]:
    """Guard a wait on the other ranks: past timeout() + extra seconds the process ends with
    a message; a peer lost on the way becomes a GemmaError. A no-op on one rank."""
    if group is not None and group.size() == 1:
        yield
        return
    global _dog
    _dog = _dog or Watchdog()
    limit = timeout() + extra
    _dog.arm(limit, f"gemma-mlx: error: {_label(group)}: no word from the other ranks for "
             f"{limit:.0f} s while {what} (a rank failed, was never started, or cannot be "
             f"reached); stopping. {TIMEOUT_ENV} sets how long to wait.")
    try:
        yield
    except RuntimeError as e:  # the ring backend: "[ring] connection to a peer was lost"
        raise GemmaError(f"{_label(group)}: lost the other ranks while {what} ({e}); another "
                         "rank failed or was stopped: see its messages") from None
    finally:
        _dog.disarm()


def world() -> mx.distributed.Group:
    """The group of all ranks: size 1 unless started by mlx.launch, mpirun or MLX_RANK and
    MLX_HOSTFILE; a launched rank that cannot join fails instead of training alone."""
    global _group
    if _group is None:
        if not any(k in os.environ for k in _LAUNCHED):
            _group = mx.distributed.init()
        else:
            with waiting("connecting to the other ranks", None):
                try:
                    _group = mx.distributed.init(strict=True)
                except RuntimeError as e:
                    raise GemmaError(f"{_label(None)}: cannot join the other ranks ({e}); is "
                                     "every rank started, and are the hostfile's IPs "
                                     "reachable?") from None
    return _group


def is_main(group: mx.distributed.Group | None = None) -> bool:
    """Whether this is rank 0, the one that prints and writes files."""
    return (group or world()).rank() == 0


def token_weighted_mean(grads: dict, loss: mx.array, tokens: int,
                        group: mx.distributed.Group) -> tuple[dict, mx.array, int]:
    """Each rank's mean loss and its gradients, averaged over ranks weighted by their target
    tokens: the single-process values on the whole batch. One float32 all_sum."""
    items = tree_flatten(grads)
    w = float(tokens)
    flat = mx.concatenate([v.astype(mx.float32).reshape(-1) * w for _, v in items]
                          + [(loss.astype(mx.float32) * w).reshape(1), mx.array([w])])
    flat = mx.distributed.all_sum(flat, group=group)
    total = flat[-1]
    scale = 1.0 / mx.maximum(total, 1.0)
    out, at = [], 0
    for k, v in items:
        out.append((k, (flat[at : at + v.size] * scale).reshape(v.shape).astype(v.dtype)))
        at += v.size
    return tree_unflatten(out), flat[-2] * scale, total


def all_sum_floats(values: Sequence[float], group: mx.distributed.Group) -> list[float]:
    """Python floats summed over ranks (float64 precision is not needed: counts, sums)."""
    if group.size() == 1:
        return list(values)
    return mx.distributed.all_sum(mx.array(values, mx.float32), group=group).tolist()


def broadcast(arrays: dict[str, mx.array], group: mx.distributed.Group) -> dict[str, mx.array]:
    """Rank 0's arrays on every rank, bit for bit (an all_sum of rank 0's values and zeros).
    Every rank passes the same names, shapes and dtypes."""
    if group.size() == 1:
        return arrays
    keys = sorted(arrays)  # the same order on every rank, whatever order the dicts were built in
    out: dict[str, mx.array] = {}
    for dtype in sorted({arrays[k].dtype for k in keys}, key=str):
        ks = [k for k in keys if arrays[k].dtype == dtype]
        flat = mx.concatenate([arrays[k].reshape(-1) for k in ks])
        flat = mx.distributed.all_sum(flat if group.rank() == 0 else mx.zeros_like(flat),
                                      group=group)
        at = 0
        for k in ks:
            out[k] = flat[at : at + arrays[k].size].reshape(arrays[k].shape)
            at += arrays[k].size
    return out


@dataclass
class RankResult:
    rank: int
    returncode: int
    stdout: str
    stderr: str


def free_ports(n: int) -> list[int]:
    """n loopback ports that were free a moment ago."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def launch_local(n: int, argv: Sequence[str], hostfile: str, env: dict | None = None,
                 kill_after: float = 600.0, ranks: Sequence[int] | None = None
                 ) -> list[RankResult]:
    """Run argv as n ring ranks on this machine (what mlx.launch does, but each rank's real
    exit status comes back: the launcher returns 0 even when ranks fail). `ranks` starts only
    some of them; a rank still running after kill_after seconds is killed."""
    with open(hostfile, "w") as f:
        json.dump([[f"127.0.0.1:{p}"] for p in free_ports(n)], f)
    base = {**os.environ, **(env or {}), "MLX_HOSTFILE": hostfile}
    started = list(range(n) if ranks is None else ranks)
    # Files, not pipes: a rank blocked on a full pipe would stall the others in a collective.
    logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in started]
    procs = [subprocess.Popen(list(argv), env={**base, "MLX_RANK": str(r)},
                              stdout=out, stderr=err, text=True)
             for r, (out, err) in zip(started, logs, strict=True)]
    deadline = time.monotonic() + kill_after
    results = []
    for i, (r, p) in enumerate(zip(started, procs, strict=True)):
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:  # a hang is a result too, not a stuck caller
            p.kill()
            p.wait()
        out, err = (f.seek(0) or f.read() for f in logs[i])
        results.append(RankResult(r, p.returncode, out, err))
        for f in logs[i]:
            f.close()
    return results
