"""Quantization policy: which tensors get how many bits, as named recipes."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from ..errors import GemmaError
from ..kernels import cpu_qmm
from .gguf_quants import pack_bits

# Module paths (HF names, without ".weight") of the text decoder's matrices.
_EMBED = re.compile(r"(^|\.)embed_tokens$")
_LINEAR = re.compile(r"(^|\.)layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)$")
_HEAD = re.compile(r"(^|\.)lm_head$")
_VISION = ("vision_tower", "multi_modal_projector")
_VISION_LINEAR = re.compile(
    r"^vision_tower\..*layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])$")


@dataclass(frozen=True)
class Spec:
    """How one matrix is stored: affine `bits` with one scale and bias per `group_size`."""

    bits: int
    group_size: int
    symmetric: bool = False  # llama.cpp Q4_0's grid: scale = -absmax / 8, zero at level 8

    @property
    def bpw(self) -> float:
        """Bits per weight, counting a 16-bit scale and bias per group."""
        return self.bits + 32 / self.group_size


def quantizable(path: str, shape: tuple[int, ...]) -> bool:
    """Text-decoder matrices; vision weights and norms stay in float."""
    if any(v in path for v in _VISION) or len(shape) != 2:
        return False
    return bool(_EMBED.search(path) or _LINEAR.search(path) or _HEAD.search(path))


def vision_quantizable(path: str, shape: tuple[int, ...], group_size: int) -> bool:
    """SigLIP's linear layers whose input width the groups divide (fc2's 4304 is a multiple
    of neither 64 nor 32, so it stays in float, as in mlx-vlm)."""
    return bool(_VISION_LINEAR.match(path)) and len(shape) == 2 and shape[1] % group_size == 0


def _kind(path: str) -> str:
    if _EMBED.search(path) or _HEAD.search(path):
        return "embed"
    return path.rsplit(".", 1)[-1]  # q_proj, ..., down_proj


def _uniform(bits: int, group_size: int) -> Callable[[str], Spec]:
    return lambda path: Spec(bits, group_size)


def _mixed(default: Spec | None, **by_kind: Spec | None) -> Callable[[str], Spec]:
    return lambda path: by_kind.get(_kind(path), default)


Policy = Callable[[str], "Spec | None"]


@dataclass(frozen=True)
class Recipe:
    """A named way to quantize: which Spec each matrix gets, and whether the decoder's
    matrices are rounded against calibration activations (GPTQ, formats/calibrate.py)."""

    description: str
    policy: Policy
    calibrated: bool = False


# Chosen by measurement on the real 270M (benchmarks/quant_recipes.py; README table): on
# held-out text in seven languages and scripts the tied embedding (63% of its weights) decides
# non-English quality, so within 5 bits it gets 5 and the layers 4, all rounded by GPTQ.
RECIPES: dict[str, Recipe] = {
    "default": Recipe("GPTQ-calibrated: embedding 5-bit groups of 128, layers 4-bit groups of "
                      "64 (~5.0 bpw)", _mixed(Spec(4, 64), embed=Spec(5, 128)), calibrated=True),
    "high": Recipe("GPTQ-calibrated: 6-bit groups of 32 (7.0 bpw)", _uniform(6, 32),
                   calibrated=True),
    # Gemma 3 QAT checkpoints (*-qat-q4_0-unquantized) were trained against Q4_0: keep its grid.
    "qat": Recipe("symmetric 4-bit groups of 32, Q4_0's grid (5.0 bpw)",
                  lambda path: Spec(4, 32, symmetric=True)),
}


def recipe(name: str | None, bits: int = 4, group_size: int = 64) -> Recipe:
    """A named recipe, or uniform `bits`/`group_size` (grid search, no calibration)."""
    if name is None:
        return Recipe(f"{bits}-bit groups of {group_size}", _uniform(bits, group_size))
    if name not in RECIPES:
        raise GemmaError(f"unknown --quant-recipe {name!r}; choose from {sorted(RECIPES)}")
    return RECIPES[name]


SEARCH_SPANS = {2: 2, 3: 4, 4: 8, 5: 16, 6: 8, 8: 4}  # grid spans tried, 2**bits - 1 down
CHUNK = 1 << 22  # elements searched at once, to bound temporaries


def _fit(g: mx.array, q: mx.array) -> tuple[mx.array, mx.array]:
    """Least-squares scale and bias of groups g [N, G] for fixed levels q."""
    n = g.shape[1]
    sq, sg, sqq, sqg = q.sum(1), g.sum(1), (q * q).sum(1), (q * g).sum(1)
    det = n * sqq - sq * sq
    ok = det > 0
    scale = mx.where(ok, (n * sqg - sq * sg) / mx.where(ok, det, 1), 0)
    bias = mx.where(ok, (sg - scale * sq) / n, sg / n)
    return scale[:, None], bias[:, None]


@mx.compile
def _grid_error(g: mx.array, s: mx.array, b: mx.array, levels: mx.array) -> mx.array:
    q = mx.clip(mx.round((g - b) / s), 0, levels)
    return ((q * s + b - g) ** 2).sum(1, keepdims=True)


def _symmetric(g: mx.array, bits: int) -> tuple[mx.array, mx.array, mx.array]:
    """Q4_0-style groups: d = (value of largest magnitude) / -2**(bits-1), q = round(w/d) + half."""
    half = 2 ** (bits - 1)
    idx = mx.argmax(mx.abs(g), axis=1, keepdims=True)
    d = mx.take_along_axis(g, idx, axis=1) / -half
    d = mx.where(d == 0, 1e-12, d)
    q = mx.clip(mx.round(g / d) + half, 0, 2 * half - 1)
    return q, d, -half * d


def _search(g: mx.array, bits: int) -> tuple[mx.array, mx.array, mx.array]:
    """Per group, the affine grid with the least squared error among: the widest spans
    (levels, levels-1, ...) anchored at the min or the max, then a least-squares refit.
    Recovers weights that already lie on a coarser or offset grid (e.g. dequantized GGUF).
    cpu_kernels/quant_search*.cpp computes the same, bit for bit: change both together."""
    levels = 2**bits - 1
    lo, hi = g.min(1, keepdims=True), g.max(1, keepdims=True)
    width = mx.maximum(hi - lo, 1e-12)
    best = best_s = best_b = None
    for span in range(levels, levels - SEARCH_SPANS.get(bits, 4), -1):
        s = width / span
        for b in (lo, hi - levels * s):
            err = _grid_error(g, s, b, mx.array(levels, mx.float32))
            if best is None:
                best, best_s, best_b = err, s, b
            else:
                better = err < best
                best = mx.where(better, err, best)
                best_s, best_b = mx.where(better, s, best_s), mx.where(better, b, best_b)
        mx.eval(best, best_s, best_b)
    q = mx.clip(mx.round((g - best_b) / best_s), 0, levels)
    s2, b2 = _fit(g, q)
    q2 = mx.clip(mx.round((g - b2) / mx.where(s2 == 0, 1, s2)), 0, levels)
    err2 = ((q2 * s2 + b2 - g) ** 2).sum(1, keepdims=True)
    better = (err2 < best) & (s2 > 0)
    return (mx.where(better, q2, q), mx.where(better, s2, best_s), mx.where(better, b2, best_b))


def _grid(part: mx.array, spec: Spec) -> tuple[np.ndarray, mx.array, mx.array]:
    """Rows part [n, cols] (float32) on their grids: packed levels [n, cols * bits / 32],
    float32 scales and biases [n, cols / group_size]. The search runs in the CPU extension
    where it is built (the same numbers, on every core), else in MLX."""
    n, gs = part.shape[0], spec.group_size
    if not spec.symmetric and mx.default_device() == mx.cpu:
        fast = cpu_qmm.quant_search(np.asarray(part).reshape(-1, gs), spec.bits,
                                    SEARCH_SPANS.get(spec.bits, 4))
        if fast is not None:
            packed, s, b = fast
            return packed.reshape(n, -1), mx.array(s).reshape(n, -1), mx.array(b).reshape(n, -1)
    q, s, b = (_symmetric if spec.symmetric else _search)(part.reshape(-1, gs), spec.bits)
    packed = pack_bits(np.array(q.astype(mx.uint8)).reshape(n, -1), spec.bits)
    return packed, s.reshape(n, -1), b.reshape(n, -1)


def quantize_tensor(path: str, w: mx.array, spec: Spec, search: bool = True) -> dict[str, mx.array]:
    """{path.weight, path.scales, path.biases} in MLX's affine format (scales in w's dtype).

    `search` picks each group's grid by least squared error instead of MLX's min/max.
    """
    gs = spec.group_size
    if w.shape[-1] % gs:
        raise GemmaError(f"{path}: last dimension {w.shape[-1]} is not a multiple of the "
                         f"group size {gs}")
    if not search and not spec.symmetric:
        wq, scales, biases = mx.quantize(w, gs, spec.bits)
        return {f"{path}.weight": wq, f"{path}.scales": scales, f"{path}.biases": biases}
    rows = w.shape[0]
    step = max(1, CHUNK // w.shape[-1])
    packed, scales, biases = [], [], []
    for r in range(0, rows, step):
        p, s, b = _grid(w[r : r + step].astype(mx.float32), spec)
        packed.append(p)
        scales.append(s.astype(w.dtype))
        biases.append(b.astype(w.dtype))
    return {f"{path}.weight": mx.array(np.concatenate(packed)),
            f"{path}.scales": mx.concatenate(scales), f"{path}.biases": mx.concatenate(biases)}


class Tally:
    """Bits per weight and mlx-lm's quantization entries of a stream of planned tensors."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, int]] = {}
        self.bits = self.count = 0

    def add(self, name: str, arr: mx.array, spec: Spec | None) -> None:
        if spec is None:
            self.bits += 16 * arr.size if mx.issubdtype(arr.dtype, mx.floating) else 0
            self.count += arr.size
        elif name.endswith(".weight"):  # the packed levels: 32 / bits weights per word
            n = arr.size * 32 // spec.bits
            self.entries[name[: -len(".weight")]] = {"group_size": spec.group_size,
                                                     "bits": spec.bits}
            self.bits += spec.bpw * n
            self.count += n

    @property
    def bpw(self) -> float | None:
        """Over all parameters, float ones at 16; None when nothing was quantized."""
        return self.bits / max(self.count, 1) if self.entries else None

    def quantization(self) -> dict:
        """mlx-lm's format: the most common spec as the default (what a loader that reads
        only the top level applies), plus one entry per module whose spec differs."""
        top = Counter((e["bits"], e["group_size"]) for e in self.entries.values()).most_common(1)
        bits, group_size = top[0][0] if top else (4, 64)
        default = {"group_size": group_size, "bits": bits}
        own = {p: e for p, e in self.entries.items() if e != default}
        return {**default, "mode": "affine", **own}


Planned = Iterator[tuple[str, mx.array, "Spec | None"]]


def quantize_planned(name: str, w: mx.array, policy: Policy, search: bool = True) -> Planned:
    """One tensor as `policy` says: (name, w, None) when it stays as it is, else the
    quantized triplet's (name, array, spec) entries."""
    path = name[: -len(".weight")]
    spec = policy(path) if name.endswith(".weight") and quantizable(path, w.shape) else None
    if spec is None:
        yield name, w, None
    else:
        for n, a in quantize_tensor(path, w, spec, search).items():
            yield n, a, spec
