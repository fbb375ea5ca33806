"""The CPU quantized-matmul extension: kernel times, 270M 4-bit decode against mlx-lm (and
llama.cpp if llama-cpp-python is installed), batched decode, prefill, token parity.

    .venv/bin/python benchmarks/cpu_kernel.py [--gen-tokens 64] [--parity-tokens 256] [--repeats 5]

"MLX's op" is the same gemma-mlx code with the extension switched off. Weights: mlx-lm's
4-bit (groups of 64) conversion of the 270M, which every engine here loads, and gemma-mlx's
own import of the GGUF (Q8_0 head, Q5_0/Q4_K/Q8_0 layers kept exactly).
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import statistics
import sys
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn

sys.path.insert(0, str(Path(__file__).parent))
from generate_vs_mlx_lm import mlx_lm_4bit  # noqa: E402

from gemma_mlx.formats.default_model import cache_dir, default_gguf, ensure_default_model  # noqa: E402
from gemma_mlx.formats.heldout_text import HELDOUT_TEXT  # noqa: E402
from gemma_mlx.formats.loading import load  # noqa: E402
from gemma_mlx.generation.batch import BatchEngine, Request  # noqa: E402
from gemma_mlx.generation.generate import generate_step  # noqa: E402
from gemma_mlx.kernels import cpu_qmm  # noqa: E402


def use_kernel(on: bool, int8: bool = False) -> None:
    """Our kernel (with float or int8 activations) or MLX's op, for what runs next."""
    cpu_qmm._state.clear()
    cpu_qmm._state["int8"] = int8
    if not on:
        cpu_qmm._state.update(module=None, reason="off for the benchmark")


def ms(fn, n: int = 10) -> float:
    """Median milliseconds of n calls, each timed alone (a mean took this VM's stalls in)."""
    mx.eval(fn())
    times = []
    for _ in range(n):
        start = time.perf_counter()
        mx.eval(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def bandwidth() -> float:
    """GB/s of one thread reading 512 MB (numpy's max, a vectorised pass at the memory's
    speed: MLX's CPU sum and max run 4-6x below it), the floor's denominator."""
    import numpy as np

    a = np.ones(128 << 20, np.float32)
    a.max()
    start = time.perf_counter()
    for _ in range(3):
        a.max()
    return a.nbytes * 3 / (time.perf_counter() - start) / 1e9


def kernels(gbps: float) -> None:
    print("\n| matrix (4-bit, groups of 64) | rows | MLX op ms | ours ms | speed-up | "
          "ours, int8 x ms | floor ms |\n|---|---|---|---|---|---|---|")
    for n, k in [(262144, 640), (2048, 640), (640, 2048), (1024, 640)]:
        w, s, b = mx.quantize(mx.random.normal((n, k)), group_size=64, bits=4)
        floor = (w.nbytes + s.nbytes + b.nbytes) / gbps / 1e6
        for m in (1, 8, 16) if n > 100000 else (1, 8):
            x = mx.random.normal((m, k))
            args = (x, w, s, b)
            theirs = ms(lambda a=args: mx.quantized_matmul(*a, group_size=64, bits=4))
            ours = ms(lambda a=args: cpu_qmm._load().quantized_matmul(*a, 64, 4, False))
            int8 = ms(lambda a=args: cpu_qmm._load().quantized_matmul(*a, 64, 4, True))
            print(f"| {n}x{k} | {m} | {theirs:.2f} | {ours:.2f} | {theirs / ours:.1f}x | "
                  f"{int8:.2f} | {floor:.2f} |")


def decode_tps(model, prompt: list[int], n: int) -> tuple[float, float, list[int]]:
    """(prompt tok/s, decode tok/s, tokens) of one greedy run."""
    steps = generate_step(mx.array(prompt), model, max_tokens=n)
    start = time.perf_counter()
    out = [next(steps)]
    first = time.perf_counter()
    out += list(steps)
    end = time.perf_counter()
    return len(prompt) / (first - start), (n - 1) / (end - first), out


def mlx_lm_tps(path: Path, prompt: list[int], n: int) -> float:
    from mlx_lm.generate import generate_step as their_step
    from mlx_lm.utils import load_model

    model, _ = load_model(path)
    steps = their_step(mx.array(prompt), model, max_tokens=n)
    next(steps)
    start = time.perf_counter()
    for _ in steps:
        pass
    return (n - 1) / (time.perf_counter() - start)


def llama_cpp_decoder(prompt: list[int], n: int):
    """A function timing one warm greedy llama.cpp decode (tok/s), or None without
    llama-cpp-python."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    llm = Llama(str(default_gguf(cache_dir())), n_ctx=1024, n_threads=2, verbose=False)

    def run() -> float:
        llm.reset()
        llm.eval(prompt)
        start = time.perf_counter()
        for _ in range(n - 1):
            llm.eval([llm.sample(temp=0.0)])
        return (n - 1) / (time.perf_counter() - start)

    run()  # warm
    return run


def token_floor(model, gbps: float) -> str:
    """The bandwidth floor of one decode token: every weight read once (the quantized ones
    with their scales and biases), divided by the measured read bandwidth."""
    from mlx.utils import tree_flatten

    nbytes = sum(a.nbytes for _, a in tree_flatten(model.parameters()))
    return f"{nbytes / 1e6:.0f} MB of weights a token, floor {nbytes / gbps / 1e6:.1f} ms"


def head_to_head(model, prompt: list[int], n: int, repeats: int) -> None:
    """Decode tok/s, alternating the engines `repeats` times (this VM's speed drifts by
    +-20% within a minute, so one run each would compare drifts): medians."""
    from gemma_mlx.models import layers

    llama_name = "llama.cpp (Q4_K_M GGUF, 2 threads)"
    llama = llama_cpp_decoder(prompt, n)
    compiled = layers.COMPILED_MAX_ROWS
    engines = {"gemma-mlx + kernel": (compiled, False),
               "gemma-mlx + kernel, int8 activations": (compiled, True),
               "... float, without compiled norms/RoPE": (0, False)}
    runs: dict[str, list[float]] = {name: [] for name in [*engines, llama_name]}
    for _ in range(repeats):
        for name, (rows, int8) in engines.items():
            layers.COMPILED_MAX_ROWS = rows
            use_kernel(True, int8)
            runs[name].append(decode_tps(model, prompt, n)[1])
        if llama is not None:
            runs[llama_name].append(llama())
    layers.COMPILED_MAX_ROWS = compiled
    use_kernel(True)
    theirs = statistics.median(runs[llama_name]) if llama is not None else None
    print(f"\nDecode, mlx-lm 4-bit weights, {repeats} alternating runs of {n} tokens "
          "(median, min-max):")
    for name, times in runs.items():
        if times:
            med = statistics.median(times)
            vs = f"; vs llama.cpp {med / theirs:.2f}x" if theirs else ""
            print(f"  {name}: {med:.1f} tok/s ({min(times):.1f}-{max(times):.1f}){vs}")
    if llama is None:
        print("  llama-cpp-python is not installed: llama.cpp not measured here")


def batch_tps(model, prompts: list[list[int]], n: int) -> tuple[float, float]:
    """Decode tokens a second for the batch once every prompt has its first token: over all
    steps from there, and from the second on. The first decode step also moves each prefilled
    cache into its batch row (~0.1-0.3 s for 8 rows here, mostly MLX's CPU copies) and has no
    step ahead to overlap with: a cost per admission, not per token."""
    engine = BatchEngine(model, None, max_batch=len(prompts))
    for i, p in enumerate(prompts):
        engine.submit(Request(p, n, stops=set(), id=i))
    first = 0
    while first < len(prompts):
        first += len(engine.step())
    times, tokens = [], []
    while engine.has_work:
        start = time.perf_counter()
        tokens.append(len(engine.step()))
        times.append(time.perf_counter() - start)
    return sum(tokens) / sum(times), sum(tokens[1:]) / sum(times[1:])


def breakdown(model, prompt: list[int]) -> str:
    """Milliseconds of one decode step: all of it, without the head, without any quantized
    matmul (outputs faked with zeros), so the rest is what attention, norms and graph cost."""
    from gemma_mlx.models import quantized

    cache = model.make_cache()
    mx.eval(model.model(mx.array(prompt)[None], cache))
    token = mx.array([[prompt[-1]]])

    def step(head: bool):
        def run():
            h = model.model(token, cache)
            out = model.logits(h[:, -1]) if head else h
            for c in cache:
                c.trim(1)
            return out
        return run

    full, body = ms(step(True), 20), ms(step(False), 20)
    real = quantized.QuantizedLinear.__call__
    quantized.QuantizedLinear.__call__ = lambda self, x: mx.zeros(
        (*x.shape[:-1], self["weight"].shape[0]), x.dtype)
    try:
        rest = ms(step(False), 20)
    finally:
        quantized.QuantizedLinear.__call__ = real
    return (f"{full:.1f} ms a token: head {full - body:.1f}, layer matmuls {body - rest:.1f}, "
            f"the rest (attention, norms, RoPE, graph) {rest:.1f}")


def parity(model, prompt: list[int], n: int, int8: bool = False) -> str:
    use_kernel(True, int8)
    ours = decode_tps(model, prompt, n)[2]
    use_kernel(False)
    theirs = decode_tps(model, prompt, n)[2]
    use_kernel(True)
    same = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b), None)
    if same is None:
        return f"token-identical for {n} tokens"
    ids = prompt + theirs[:same]
    logits = model(mx.array(ids)[None])[0, -1]
    top = mx.sort(logits)[-2:].tolist()
    return f"first divergence at token {same}, MLX op's logit margin there {top[1] - top[0]:.4f}"


def int8_quality(model, ids: list[int], n: int = 512, chunk: int = 16) -> str:
    """Teacher-forced next-token distributions with int8 against float activations (both on
    our kernel: chunks of 16 rows stay below the dense-BLAS switch)."""
    logps = {}
    for int8 in (False, True):
        use_kernel(True, int8)
        cache, outs = model.make_cache(), []
        for i in range(0, n, chunk):
            h = model.model(mx.array(ids[i : i + chunk])[None], cache)
            outs.append(nn.log_softmax(model.logits(h[0]).astype(mx.float32), axis=-1))
        logps[int8] = mx.concatenate(outs)
    use_kernel(True)
    f, q = logps[False], logps[True]
    top1 = (f.argmax(-1) == q.argmax(-1)).mean().item()
    kl = (mx.exp(f) * (f - q)).sum(-1)
    return (f"{n} held-out tokens: top-1 agreement {top1:.4f}, KL(float || int8) mean "
            f"{kl.mean().item():.2e} nats, max {kl.max().item():.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--parity-tokens", type=int, default=256)
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5, help="alternating decode runs against "
                    "llama.cpp")
    args = ap.parse_args()
    print(f"kernel: {cpu_qmm.status()}")
    gbps = bandwidth()
    print(f"memory read bandwidth, one thread: {gbps:.1f} GB/s")
    kernels(gbps)
    weights = {"mlx-lm 4-bit": mlx_lm_4bit(), "gemma-mlx GGUF import": ensure_default_model()}
    model, tok = load(weights["mlx-lm 4-bit"])
    ids = tok.encode(HELDOUT_TEXT)
    if ids[0] != tok.bos_token_id:  # the tokenizer.json mlx-lm writes for the 270M omits it
        ids = [tok.bos_token_id, *ids]
    prompt, n = ids[:32], args.gen_tokens
    print("\n| weights | engine | prefill tok/s (256) | decode tok/s | vs mlx-lm |"
          "\n|---|---|---|---|---|")
    their = mlx_lm_tps(weights["mlx-lm 4-bit"], prompt, n)
    for name, path in weights.items():
        model, _ = load(path)
        for label, on, int8 in [("gemma-mlx + kernel", True, False), ("gemma-mlx + kernel, "
                                 "int8 activations", True, True), ("gemma-mlx, MLX op", False,
                                                                   False)]:
            use_kernel(on, int8)
            decode_tps(model, prompt, 4)  # warm: one-time repacking, compiled functions
            pre = decode_tps(model, ids[: args.prompt_tokens], 2)[0]
            dec = decode_tps(model, prompt, n)[1]
            print(f"| {name} | {label} | {pre:.0f} | {dec:.1f} | {dec / their:.2f}x |")
    print(f"| mlx-lm 4-bit | mlx-lm | - | {their:.1f} | 1.00x |")
    model, _ = load(weights["mlx-lm 4-bit"])
    use_kernel(True)
    print(f"\nmlx-lm 4-bit: {token_floor(model, gbps)}")
    head_to_head(model, prompt, n, args.repeats)
    for on, int8 in ((False, False), (True, False), (True, True)):
        use_kernel(on, int8)
        label = "MLX op" if not on else "kernel, int8 x" if int8 else "kernel"
        print(f"decode step, {label}: {breakdown(model, prompt)}")
    prompts = [ids[i * 40 : i * 40 + 32] for i in range(8)]
    for int8 in (False, True):
        use_kernel(True, int8)
        batch_tps(model, prompts, 4)  # warm: the batch-8 shapes' first graphs
        runs = [(batch_tps(model, prompts[:1], 32), batch_tps(model, prompts, 32))
                for _ in range(args.repeats)]  # alternating: this VM's speed drifts
        one, one_s, eight, eight_s = (statistics.median(r[size][part] for r in runs)
                                      for size in (0, 1) for part in (0, 1))
        print(f"\nbatched decode, mlx-lm 4-bit weights{', int8 x' if int8 else ''}: batch 1 "
              f"{one:.1f} tok/s, batch 8 {eight:.1f} tok/s ({eight / one:.1f}x); from the "
              f"second decode step: {one_s:.1f} and {eight_s:.1f} ({eight_s / one_s:.1f}x); "
              f"medians of {args.repeats} alternating runs")
    use_kernel(True)
    print(f"int8 against float activations, mlx-lm 4-bit: {int8_quality(model, ids)}")
    gguf_model = load(weights["gemma-mlx GGUF import"])[0]
    print(f"parity on the GGUF import: {parity(gguf_model, prompt, args.parity_tokens)}")
    print(f"int8 activations on the GGUF import against MLX's op: "
          f"{parity(gguf_model, prompt, args.parity_tokens, int8=True)}")
    print(f"int8 against float activations, GGUF import: {int8_quality(gguf_model, ids)}")
    print(f"peak memory {mx.get_peak_memory() / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
