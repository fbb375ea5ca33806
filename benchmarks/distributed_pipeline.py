"""Pipeline-parallel generation: weights and peak memory per rank, 1 rank against 2 local ring
ranks, on a 27B-shaped checkpoint; bytes sent per decoded token; the latency of one small
all_sum and one hidden-state message; and what 2 Macs would give for 27B decode, PP against TP.

    .venv/bin/python benchmarks/distributed_pipeline.py [--layers 6] [--tokens 4]

The checkpoint has Gemma 3 27B's real widths (hidden 5376, 32 heads / 16 KV heads of 128,
MLP 21504, vocabulary 262208, window 1024, tied embedding) in bfloat16, with random weights
and only --layers decoder layers, written to a temporary directory as one safetensors shard
per layer (as a hub checkpoint is). Each rank runs gemma_mlx.generation.pipeline exactly as
`mlx.launch -n 2 ... gemma-mlx generate` does: it reads only its own layers' tensors, prefills
16 random tokens and decodes --tokens greedily. Both ranks share this machine's cores, so the
times mean nothing for Macs; the memory and the bytes do not depend on them.
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlx.core as mx
import numpy as np

from gemma_mlx.distributed import launch_local, waiting, world
from gemma_mlx.generation.pipeline import layer_of, split_layers

CONFIG_27B = {
    "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 5376,
    "intermediate_size": 21504, "num_attention_heads": 32, "num_key_value_heads": 16,
    "head_dim": 128, "query_pre_attn_scalar": 168, "sliding_window": 1024,
    "sliding_window_pattern": 6, "vocab_size": 262208, "max_position_embeddings": 131072,
    "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
    "rope_scaling": {"rope_type": "linear", "factor": 8.0}, "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True, "bos_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0,
    "torch_dtype": "bfloat16",
}  # fmt: skip
LAYERS_27B = 62
# Links for 27B decode on paper, as (name, seconds per message); the hidden state (10.75 KB)
# adds ~9 us at 1.2 GB/s. Ring over a Thunderbolt bridge is TCP; JACCL is RDMA over TB5
# (25.5 us at 4 KB: omar-karray/mlx-jaccl-cluster, research note §2.4). Assumptions to
# check on real Macs; the measured loopback numbers are printed beside them.
LINKS = [("ring, 10 GbE / TB bridge (TCP)", 100e-6), ("ring, 1 GbE (TCP)", 200e-6),
         ("JACCL, TB5 (RDMA)", 25e-6)]
MACS = [("M2/M3 Ultra, 800 GB/s", 800e9), ("M4 Max, 546 GB/s", 546e9),
        ("M4 Pro, 273 GB/s", 273e9)]


def write_checkpoint(path: Path, layers: int, seed: int = 0) -> None:
    """Random bf16 weights at 27B's widths, one shard per layer, an index, a config."""
    cfg = {**CONFIG_27B, "num_hidden_layers": layers}
    h, f, d = cfg["hidden_size"], cfg["intermediate_size"], cfg["head_dim"]
    q, kv = cfg["num_attention_heads"] * d, cfg["num_key_value_heads"] * d
    mx.random.seed(seed)

    def normal(rows: int, cols: int) -> mx.array:
        # a random block of 1021 rows (prime) tiled: MLX's CPU generator would take minutes
        block = mx.random.normal((min(rows, 1021), cols), dtype=mx.bfloat16, scale=0.02)
        return mx.tile(block, (-(-rows // block.shape[0]), 1))[:rows]

    def layer(i: int) -> dict[str, mx.array]:
        p = f"model.layers.{i}."
        w = {p + "self_attn.q_proj.weight": normal(q, h), p + "self_attn.k_proj.weight":
             normal(kv, h), p + "self_attn.v_proj.weight": normal(kv, h),
             p + "self_attn.o_proj.weight": normal(h, q), p + "mlp.gate_proj.weight":
             normal(f, h), p + "mlp.up_proj.weight": normal(f, h), p + "mlp.down_proj.weight":
             normal(h, f)}
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            w[p + n + ".weight"] = mx.zeros((h,), mx.bfloat16)
        for n in ("q_norm", "k_norm"):
            w[p + "self_attn." + n + ".weight"] = mx.zeros((d,), mx.bfloat16)
        return w

    shards = [("embed.safetensors", lambda: {
        "model.embed_tokens.weight": normal(cfg["vocab_size"], h),
        "model.norm.weight": mx.zeros((h,), mx.bfloat16)})]
    shards += [(f"layer-{i:02d}.safetensors", lambda i=i: layer(i)) for i in range(layers)]
    wmap = {}
    for name, make in shards:  # one shard in memory at a time
        w = make()
        mx.save_safetensors(str(path / name), w)
        wmap.update(dict.fromkeys(w, name))
        del w
    (path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wmap}))
    (path / "config.json").write_text(json.dumps(cfg))


def child(model_dir: str, tokens: int) -> None:
    """One rank: load its stage, prefill, decode; the latencies of small messages."""
    from gemma_mlx.generation.generate import stream_generate
    from gemma_mlx.generation.pipeline import load_pipeline

    group = world()
    t0 = time.perf_counter()
    model, _ = load_pipeline(model_dir, group)
    out = {"rank": group.rank(), "layers": [model.layers.start, model.layers.stop],
           "weights": model.nbytes(), "peak_load": mx.get_peak_memory(),
           "load_s": time.perf_counter() - t0}
    ids = np.random.default_rng(0).integers(3, 262000, 16).tolist()
    runs = []
    for n in (1, tokens):  # the prefill and a first token, then with tokens - 1 decode steps
        sent, t = model.sent, time.perf_counter()
        out_tokens = [r.token for r in stream_generate(model, None, ids, max_tokens=n,
                                                       temperature=0.0)]
        runs.append((model.sent - sent, time.perf_counter() - t))
    (s1, t1), (s2, t2) = runs
    out |= {"peak_run": mx.get_peak_memory(), "tokens": out_tokens,
            "sent_per_token": (s2 - s1) / (tokens - 1), "decode_s": (t2 - t1) / (tokens - 1)}
    if group.size() > 1:
        out |= _latencies(model.config.hidden_size, group)
    print(json.dumps(out), flush=True)


def _latencies(hidden: int, group, n: int = 200) -> dict:
    """Median seconds of one all_sum of a hidden state (what TP needs twice per layer) and of
    one one-way hidden-state message (what PP needs once per stage boundary)."""
    x = mx.ones((1, 1, hidden), mx.bfloat16)
    peer = 1 - group.rank()
    sums, trips = [], []
    with waiting("measuring latencies", group, extra=60):
        mx.eval(mx.distributed.all_sum(mx.array(1.0), group=group))  # barrier
        for _ in range(n):
            t = time.perf_counter()
            mx.eval(mx.distributed.all_sum(x, group=group))
            sums.append(time.perf_counter() - t)
        for _ in range(n):
            t = time.perf_counter()
            if group.rank() == 0:
                mx.eval(mx.distributed.send(x, peer, group=group))
                mx.eval(mx.distributed.recv_like(x, peer, group=group))
            else:
                y = mx.distributed.recv_like(x, peer, group=group)
                mx.eval(mx.distributed.send(y, peer, group=group))
            trips.append(time.perf_counter() - t)
    return {"all_sum_s": float(np.median(sums)), "message_s": float(np.median(trips)) / 2}


def _run(ranks: int, model_dir: Path, tokens: int) -> list[dict]:
    cmd = [sys.executable, __file__, "--child", str(model_dir), str(tokens)]
    if ranks == 1:
        r = subprocess.run(cmd, capture_output=True, text=True)
        results = [(r.returncode, r.stdout, r.stderr)]
    else:
        results = [(r.returncode, r.stdout, r.stderr) for r in
                   launch_local(ranks, cmd, str(model_dir / "hosts.json"),
                                {"GEMMA_MLX_DIST_TIMEOUT": "600"})]
    for rc, _, err in results:
        if rc:
            raise SystemExit(f"{ranks} rank(s) failed ({rc}): {err[-2000:]}")
    return [json.loads(out.strip().splitlines()[-1]) for _, out, _ in results]


def _table(runs: dict[int, list[dict]]) -> None:
    gb = 1e9
    print(f"{'ranks':>5} {'rank':>4} {'layers':>7} {'weights GB':>10} {'peak load GB':>12} "
          f"{'peak run GB':>11} {'sent/token B':>12} {'decode s/tok':>12}")
    for n, rows in runs.items():
        for r in rows:
            a, b = r["layers"]
            print(f"{n:>5} {r['rank']:>4} {f'{a}-{b - 1}':>7} {r['weights'] / gb:>10.3f} "
                  f"{r['peak_load'] / gb:>12.3f} {r['peak_run'] / gb:>11.3f} "
                  f"{r['sent_per_token']:>12.0f} {r['decode_s']:>12.2f}")
    one, two = runs[1][0], runs[2]
    most = max(r["weights"] for r in two) / one["weights"]
    peak = max(r["peak_run"] for r in two) / one["peak_run"]
    print(f"\nLargest rank / one process: weights {most:.2f}, peak {peak:.2f}; greedy tokens "
          f"{'identical' if all(r['tokens'] == one['tokens'] for r in two) else 'DIFFER'}")


def on_paper(model_dir: Path, runs: dict[int, list[dict]]) -> None:
    """The real 62-layer 27B: the split by the measured bytes, then decode on 2 Macs."""
    weights = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        weights.update(mx.load(str(f)))  # lazy: sizes only
    layer = sum(v.nbytes for k, v in weights.items() if layer_of(k) == 0)
    extra = sum(v.nbytes for k, v in weights.items() if layer_of(k) is None)
    split = split_layers([layer] * LAYERS_27B, extra, 2)
    per_rank = [extra * (i == 0) + layer * len(r) for i, r in enumerate(split)]
    total = extra + layer * LAYERS_27B
    print(f"\n27B bf16 (62 layers of {layer / 1e9:.3f} GB, embedding {extra / 1e9:.2f} GB): one "
          f"process {total / 1e9:.1f} GB; 2 ranks: " + ", ".join(
              f"rank {i} layers {r.start}-{r.stop - 1} {b / 1e9:.1f} GB"
              for i, (r, b) in enumerate(zip(split, per_rank, strict=True))))
    two = runs[2]
    print(f"Measured here (loopback, shared cores): one all_sum of a hidden state "
          f"{two[0]['all_sum_s'] * 1e6:.0f} us, one hidden-state message "
          f"{two[0]['message_s'] * 1e6:.0f} us; PP sends {two[0]['sent_per_token']:.0f} + "
          f"{two[1]['sent_per_token']:.0f} B per token.")
    # Decode is memory-bound: a token reads every weight once. PP: the stages run one after
    # the other (one sequence), so the time is the same read plus 2 messages and the token's
    # all_sum; TP: each rank reads half, plus 2 all-reduces per layer (an all_sum on a
    # 2-rank ring is 2 message steps) and the token.
    print("\nOn paper, 27B bf16 decode tokens/s (memory-bound: weights / bandwidth; one Mac "
          f"needs {total / 1e9:.0f} GB of memory, each of 2 Macs ~{max(per_rank) / 1e9:.0f} GB):")
    print(f"  {'Mac':<24} {'link':<32} {'1 Mac':>6} {'2 PP':>6} {'2 TP':>6} {'TP pays if <':>12}")
    for mac, bw in MACS:
        read = total / bw
        for link, lat in LINKS:
            pp = read + 3 * lat
            tp = read / 2 + (2 * LAYERS_27B * 2 + 1) * lat
            even = read / 2 / (2 * LAYERS_27B * 2 - 2)  # latency where TP = PP
            print(f"  {mac:<24} {link:<32} {1 / read:>6.1f} {1 / pp:>6.1f} {1 / tp:>6.1f} "
                  f"{even * 1e6:>9.0f} us")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2], int(sys.argv[3]))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=4, help="at least 2")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pp27b-") as d:
        model_dir = Path(d)
        t = time.perf_counter()
        write_checkpoint(model_dir, args.layers)
        print(f"27B-shaped checkpoint, {args.layers} layers, bf16: "
              f"{sum(f.stat().st_size for f in model_dir.glob('*.safetensors')) / 1e9:.2f} GB "
              f"written in {time.perf_counter() - t:.0f} s\n")
        runs = {n: _run(n, model_dir, args.tokens) for n in (1, 2)}
        _table(runs)
        on_paper(model_dir, runs)


if __name__ == "__main__":
    main()
