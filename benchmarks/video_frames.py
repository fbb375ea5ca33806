"""Video frames through the vision tower: decode, per-frame encode time, batched vs one by one.

    .venv/bin/python benchmarks/video_frames.py [--frames 8] [--runs 3]

On --model vision-demo (the 270M with a random 2-layer, 64-wide SigLIP at the real 896 px
geometry: 4096 patches, 256 tokens per frame). Writes a --frames-second 640x360 mp4 at 30 fps
in a temporary folder, then reports:
  1. load_video (PyAV demux, then decode of the sampled frames) and pixel processing per frame;
  2. the tower + projector per frame, N single calls (what encode_images does: peak memory of
     one frame) vs one batch of N, with the peak memory of each and the largest difference
     between their features (batching must not change the numbers).
Fastest of --runs. The real SigLIP (27 layers, 1152 wide) costs far more per frame; the ratio
of batch to singles is what carries over.
"""

from __future__ import annotations

import gemma_mlx  # noqa: F401  (first: OpenBLAS for MLX on Linux)

# isort: split
import argparse
import tempfile
import time
from pathlib import Path

import av
import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from gemma_mlx.formats.default_model import ensure_vision_demo_model
from gemma_mlx.formats.loading import load
from gemma_mlx.media.image_processing import to_pixels
from gemma_mlx.media.video import load_video


def write_clip(path: Path, seconds: int, fps: int = 30, size=(640, 360)) -> Path:
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        for _ in range(seconds * fps):
            a = rng.integers(0, 256, (size[1], size[0], 3), np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def fastest(fn, runs: int) -> tuple[float, float, object]:
    """(seconds, peak GB, result) of the fastest run."""
    best = (float("inf"), 0.0, None)
    for _ in range(runs):
        mx.clear_cache()
        mx.reset_peak_memory()
        t = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t
        if dt < best[0]:
            best = (dt, mx.get_peak_memory() / 1e9, out)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    model, _ = load(ensure_vision_demo_model())
    size = model.vision_config.image_size
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "clip.mp4", args.frames)
        t_load, _, video = fastest(lambda: load_video(clip, 1.0, args.frames), args.runs)
        t_px, _, pixels = fastest(
            lambda: mx.array(np.stack([to_pixels(f, size) for f in video.frames])), args.runs)
    n = len(video.frames)
    weights = sum(v.nbytes for _, v in tree_flatten(model.parameters())) / 1e9

    def singles():
        feats = []
        for i in range(n):
            feats.append(model.get_image_features(pixels[i : i + 1]))
            mx.eval(feats[-1])
        return mx.concatenate(feats)

    def batch():
        out = model.get_image_features(pixels)
        mx.eval(out)
        return out

    t_one, peak_one, f_one = fastest(singles, args.runs)
    t_all, peak_all, f_all = fastest(batch, args.runs)
    diff = float(mx.abs(f_one - f_all).max())
    print(f"clip: {args.frames} s of 640x360 at 30 fps ({video.total_frames} frames), "
          f"{n} sampled at 1 fps; weights {weights:.3f} GB")
    print(f"load_video (demux + decode {n} frames): {t_load * 1e3:.1f} ms "
          f"({t_load / n * 1e3:.1f} ms/frame); pixels {t_px / n * 1e3:.1f} ms/frame")
    print(f"tower+projector, {n} single calls: {t_one:.3f} s ({t_one / n * 1e3:.1f} ms/frame), "
          f"peak {peak_one:.3f} GB")
    print(f"tower+projector, one batch of {n}:  {t_all:.3f} s ({t_all / n * 1e3:.1f} ms/frame), "
          f"peak {peak_all:.3f} GB")
    print(f"batch / singles: time {t_all / t_one:.2f}x, peak memory {peak_all / peak_one:.2f}x "
          f"(above weights: {max(peak_all - weights, 0) / max(peak_one - weights, 1e-9):.2f}x); "
          f"max |features diff| {diff:.2e}")


if __name__ == "__main__":
    main()
