"""Peak memory of a 4-bit conversion: gemma-mlx (streaming) vs mlx-lm, on a synthetic checkpoint.

    .venv/bin/python benchmarks/convert_memory.py [--gb 2.0]

Writes a random bfloat16 Gemma 3 checkpoint of about --gb gigabytes in 1 GB shards (a 270M-shaped
model made wider and deeper), then converts it with each tool in a child process and reports
the child's peak MLX memory (mx.get_peak_memory), peak resident memory (ru_maxrss) and time.
Both use min/max grids here (`search=False`): the comparison is reading, quantizing, writing.
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlx.core as mx

CHILD = {
    "gemma-mlx": "from gemma_mlx.formats.convert import convert; convert(SRC, DST, quantize=True, "
                 "q_bits=4, q_group_size=64, search=False)",
    "mlx-lm": "from mlx_lm import convert; convert(SRC, mlx_path=DST, quantize=True, q_bits=4, "
              "q_group_size=64)",
}


def synthetic(directory: Path, gb: float) -> Path:
    hidden, inter, vocab = 2048, 8192, 262144
    per_layer = 2 * (hidden * 2048 * 2 + hidden * 1024 * 2 + 3 * hidden * inter)
    layers = max(1, int((gb * 1e9 - 2 * vocab * hidden) / per_layer))
    config = {"model_type": "gemma3_text", "hidden_size": hidden, "intermediate_size": inter,
              "num_hidden_layers": layers, "num_attention_heads": 8, "num_key_value_heads": 4,
              "head_dim": 256, "vocab_size": vocab, "sliding_window": 512,
              "torch_dtype": "bfloat16"}
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config))
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update({p + "self_attn.q_proj.weight": (2048, hidden),
                       p + "self_attn.k_proj.weight": (1024, hidden),
                       p + "self_attn.v_proj.weight": (1024, hidden),
                       p + "self_attn.o_proj.weight": (hidden, 2048),
                       p + "self_attn.q_norm.weight": (256,), p + "self_attn.k_norm.weight": (256,),
                       p + "mlp.gate_proj.weight": (inter, hidden),
                       p + "mlp.up_proj.weight": (inter, hidden),
                       p + "mlp.down_proj.weight": (hidden, inter)})
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm"):
            shapes[p + n + ".weight"] = (hidden,)
    shard, size, weight_map, n = {}, 0, {}, 0
    for name, shape in list(shapes.items()) + [(None, None)]:
        if name is None or size > 1e9:
            fname = f"model-{n:05d}.safetensors"
            mx.save_safetensors(str(directory / fname), shard)
            weight_map.update({k: fname for k in shard})
            shard, size, n = {}, 0, n + 1
            if name is None:
                break
        shard[name] = (mx.random.normal(shape) * 0.02).astype(mx.bfloat16)
        mx.eval(shard[name])
        size += shard[name].nbytes
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}))
    return directory


def child(tool: str, src: Path, dst: Path) -> tuple[float, float]:
    code = (f"import gemma_mlx, resource, time; t=time.time(); SRC={str(src)!r}; "
            f"DST={str(dst)!r}; {CHILD[tool]}; "
            "import mlx.core as mx; "
            "print(time.time()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
            "mx.get_peak_memory())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    seconds, rss_kb, mlx_bytes = out.stdout.split()[-3:]
    return float(seconds), float(rss_kb) / 1e6, float(mlx_bytes) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        src = synthetic(Path(tmp) / "src", args.gb)
        total = sum(f.stat().st_size for f in src.glob("*.safetensors")) / 1e9
        print(f"synthetic checkpoint: {total:.2f} GB bf16 ({time.perf_counter() - t:.0f} s)")
        rows = {}
        for tool in CHILD:
            rows[tool] = child(tool, src, Path(tmp) / tool)
            shutil.rmtree(Path(tmp) / tool, ignore_errors=True)
            s, rss, peak = rows[tool]
            print(f"{tool:10} {s:7.1f} s   peak RSS {rss:.2f} GB   MLX peak {peak:.2f} GB",
                  flush=True)
        ours, theirs = rows["gemma-mlx"][2], rows["mlx-lm"][2]
        print(f"MLX peak ratio gemma-mlx / mlx-lm: {ours / theirs:.2f}; "
              f"gemma-mlx MLX peak / checkpoint size: {ours / total:.2f} (RSS also counts "
              "the memory-mapped input files)")


if __name__ == "__main__":
    main()
