"""ShieldGemma 2, ours vs transformers: one image, 3 policies, time and peak memory.

A random ShieldGemma 2 at the released widths (text 2560, SigLIP 1152 at 896 px, real vocab)
with few layers, built by transformers, saved, and loaded by both. transformers runs the tower
and the whole prompt once per policy; we run the tower once and the shared prefix once.
Needs torch and transformers (the fixtures' separate environment) and the real 270M tokenizer:

    /work/refenv/bin/pip install "mlx[cpu]" tqdm
    PYTHONPATH=. /work/refenv/bin/python benchmarks/shield_vs_transformers.py \\
        [--text-layers 2] [--vision-layers 2]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text-layers", type=int, default=2)
    ap.add_argument("--vision-layers", type=int, default=2)
    ap.add_argument("--tokenizer", default=str(
        Path.home() / ".cache/gemma-mlx/gemma-3-270m-q4_k_m/tokenizer.model"))
    args = ap.parse_args()
    import gemma_mlx  # noqa: F401  (first: binds MLX to OpenBLAS before mlx is imported)

    try:
        import torch
        from make_shieldgemma2_fixture import make_processor
        from transformers import (
            ShieldGemma2Config,
            ShieldGemma2ForImageClassification,
            SiglipVisionConfig,
        )
        from transformers.image_utils import load_image
    except ImportError as e:
        print(f"skipped: needs torch and transformers ({e})")
        return 0
    import mlx.core as mx
    from shield_inputs import TEMPLATE, shield_images

    from gemma_mlx.formats.loading import load
    from gemma_mlx.generation.shield import classify_images

    text = {"hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": args.text_layers,
            "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
            "query_pre_attn_scalar": 256, "sliding_window": 1024, "vocab_size": 262208,
            "rope_scaling": {"rope_type": "linear", "factor": 8.0}, "model_type": "gemma3_text"}
    vision = SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_attention_heads=16,
                                num_hidden_layers=args.vision_layers, image_size=896,
                                patch_size=14, vision_use_head=False)
    cfg = ShieldGemma2Config(text_config=text, vision_config=vision)
    torch.manual_seed(0)
    hf = ShieldGemma2ForImageClassification(cfg).eval()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hf.save_pretrained(tmp / "ckpt")
        shutil.copy(args.tokenizer, tmp / "ckpt" / "tokenizer.model")
        (tmp / "ckpt" / "chat_template.jinja").write_text(TEMPLATE)
        proc = make_processor(Path(args.tokenizer), tmp)
        proc.image_processor.size = {"height": 896, "width": 896}
        proc.image_seq_length = 256
        proc.full_image_sequence = ("\n\n<start_of_image>" + "<image_soft_token>" * 256
                                    + "<end_of_image>\n\n")
        image = shield_images(tmp / "img")["photo_640x480"]
        inputs = proc(images=[load_image(str(image))], return_tensors="pt")
        t = time.perf_counter()
        with torch.no_grad():
            theirs = hf(**inputs).probabilities[:, 0].numpy()
        t_hf = time.perf_counter() - t
        peak_hf = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        del hf
        model, tokenizer = load(tmp / "ckpt")
        mx.reset_peak_memory()
        t = time.perf_counter()
        ours = classify_images(model, tokenizer, [image])[0]
        t_ours = time.perf_counter() - t
    print(f"transformers: {t_hf:.1f} s, process peak RSS {peak_hf:.2f} GB, P {theirs.round(4)}")
    print(f"gemma-mlx:    {t_ours:.1f} s, MLX peak {mx.get_peak_memory() / 1e9:.2f} GB, "
          f"P {[round(p, 4) for p in ours.values()]}")
    print(f"speed-up {t_hf / t_ours:.2f}x; max |dP| "
          f"{max(abs(a - b) for a, b in zip(theirs, ours.values(), strict=True)):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
