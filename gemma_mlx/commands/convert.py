"""gemma-mlx convert: checkpoint conversion, quantization and its quality report."""

from __future__ import annotations

import argparse


def add_convert_args(p: argparse.ArgumentParser) -> None:
    from ..formats.quantize import RECIPES

    p.add_argument("--hf-path", required=True, help="HF checkpoint dir, repo id or .gguf file")
    p.add_argument("--mlx-path", required=True, help="output directory")
    p.add_argument("-q", "--quantize", action="store_true",
                   help="quantize: alone, the default recipe; with --q-bits or --q-group-size, "
                   "uniform groups (4 bits, groups of 64 where one is not given)")
    p.add_argument("--q-bits", type=int, choices=[2, 3, 4, 5, 6, 8])
    p.add_argument("--q-group-size", type=int, choices=[32, 64, 128])
    p.add_argument("--quant-recipe", choices=sorted(RECIPES),
                   help="; ".join(f"{k}: {r.description}" for k, r in RECIPES.items()))
    p.add_argument("--dtype", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--dequantize", action="store_true", help="write float weights")
    p.add_argument("--vision-bits", type=int, choices=[8], default=None,
                   help="quantize the vision tower's linear layers (default: keep in float)")
    p.add_argument("--no-search", action="store_true",
                   help="MLX's min/max grids instead of the least-error search")
    p.add_argument("--no-calibrate", action="store_true",
                   help="no GPTQ on the calibration text for a calibrated recipe (faster, "
                   "lower quality)")
    p.add_argument("--no-report", action="store_true",
                   help="skip the quality report after a quantized conversion")
    p.add_argument("--force", action="store_true", help="overwrite --mlx-path")


def run_convert(args: argparse.Namespace) -> None:
    from ..formats.calibrate import calibration_summary
    from ..formats.convert import convert, quality_report

    quantized = args.quantize or args.quant_recipe is not None
    summary = convert(
        args.hf_path, args.mlx_path, quantize=args.quantize, q_bits=args.q_bits,
        q_group_size=args.q_group_size, dtype=args.dtype, quant_recipe=args.quant_recipe,
        dequantize=args.dequantize, force=args.force, search=not args.no_search,
        vision_bits=args.vision_bits, calibrate=not args.no_calibrate,
    )
    line = (f"Wrote {summary['path']}: {summary['bytes'] / 1e9:.3f} GB "
            f"in {summary['shards']} shard(s)")
    if summary["bpw"] is not None:
        line += (f", {summary['quantized']} matrices quantized ({summary['recipe']}), "
                 f"{summary['bpw']:.2f} bits per weight")
    print(line)
    if summary["calibrated"]:
        print(calibration_summary())
    if quantized and not args.no_report and _report_fits(args.hf_path, summary["path"]):
        report = quality_report(args.hf_path, args.mlx_path)
        if report is None:
            print("No tokenizer in the checkpoint: no quality report.")
            return
        print("Quality against the unquantized model on the built-in held-out texts "
              "(never used for calibration):")
        print(f"  {'text':<9} {'tokens':>6} {'top-1':>6} {'KL':>8} {'ppl':>8} {'ref ppl':>8}")
        for lang, r in report.items():
            print(f"  {lang:<9} {r['tokens']:>6} {r['top1']:>6.3f} {r['kl']:>8.4f} "
                  f"{r['ppl']:>8.2f} {r['ref_ppl']:>8.2f}")


def _report_fits(source: str, converted) -> bool:
    """The report holds the source in float32 beside the converted model: say so and skip
    it where that would not fit (a 27B needs ~108 GB for the former alone)."""
    import mlx.core as mx

    from ..formats.loading import resolve
    from ..formats.memory import available_memory, fmt_bytes
    from ..formats.memory_sizes import weights_bytes

    need = [weights_bytes(resolve(source), mx.float32), weights_bytes(converted)]
    have, _ = available_memory()
    if have is None or None in need or sum(need) <= 0.8 * have:
        return True
    print(f"No quality report: it needs the float32 source beside the converted model "
          f"({fmt_bytes(sum(need))}), more than the {fmt_bytes(have)} available.")
    return False
